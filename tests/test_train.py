"""Trainer: parameter groups, schedule, checkpoints, resume, 2-process DDP, skipped videos, CLI.

Heavy imports (the model, open_clip) happen inside tests so that the forked DDP workers start fast.
"""
import json
import math
import os
import socket
import warnings
from dataclasses import replace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from stanlib.engine.presets import MODEL_FIELDS, Config, ConfigError, apply_overrides, get_preset
from stanlib.engine.trainer import (CheckpointError, Trainer, capture_rng, load_checkpoint, param_groups, restore_rng,
                           save_checkpoint, warmup_cosine)

T, SIZE = 2, 64  # tiny clips: 2 frames of 64 px (stan-tiny's resolution)


# ----------------------------------------------------------------------------- toy data and model
class PairSet(torch.utils.data.Dataset):
    """Retrieval training pairs following the VideoTextDataset item contract (deterministic per index)."""

    def __init__(self, n=8, frames=T, size=SIZE, context=16, skip=()):
        self.n, self.frames, self.size, self.context, self.skip = n, frames, size, context, set(skip)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(1000 + i)
        tokens = torch.zeros(self.context, dtype=torch.long)
        tokens[:4] = torch.tensor([1, 3 + i % 50, 60 + i % 40, 127])  # <sot> w w <eot> for stan-tiny
        item = {"frames": torch.randn(self.frames, 3, self.size, self.size, generator=g), "tokens": tokens,
                "video_idx": i, "caption_idx": i}
        return ("bad", f"/videos/broken{i}.mp4") if i in self.skip else item


class VideoSet(PairSet):
    """Retrieval evaluation set: mode "videos" items + tokens() + caption_video."""

    def __getitem__(self, i):
        item = super().__getitem__(i)
        return {"frames": item["frames"], "video_idx": i}

    def tokens(self):
        return torch.stack([PairSet.__getitem__(self, i)["tokens"] for i in range(self.n)])

    @property
    def caption_video(self):
        return list(range(self.n))


def collate(items):
    """Like stanlib.data.collate: drop skipped items and report their paths."""
    skipped = [x[1] for x in items if isinstance(x, tuple)]
    items = [x for x in items if not isinstance(x, tuple)]
    out = torch.utils.data.default_collate(items)
    out["skipped"] = skipped
    return out


class ToyVideoText(nn.Module):
    """A small model with STANModel's interface (encode_video/encode_text/logit_scale, ``branch.``)."""

    def __init__(self, dim=8, size=4, vocab=128):
        super().__init__()
        self.frame_proj = nn.Linear(3 * size * size, dim)
        self.branch = nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim))
        self.token_embedding = nn.Embedding(vocab, dim)
        self.text_proj = nn.Linear(dim, dim)
        self.register_buffer("log_logit_scale", torch.tensor(math.log(20.0)))

    @property
    def logit_scale(self):
        return self.log_logit_scale.exp()

    def encode_video(self, frames):
        x = self.frame_proj(frames.flatten(2))                    # (B, T, D)
        order = torch.linspace(-1, 1, x.shape[1])[None, :, None]
        return x.mean(1) + self.branch((x * order).mean(1))

    def encode_text(self, tokens):
        return self.text_proj(self.token_embedding(tokens).mean(1))


def tiny_config(**kw):
    base = dict(name="test", task="retrieval", clip="stan-tiny", pretrained=None, depth=2, num_frames=T,
                context_length=16, batch_size=2, recipe_batch=2, lr=1e-3, lr_mult=10.0, epochs=2,
                warmup_steps=2, num_workers=0, log_every=1, seed=0, amp="off")
    base.update(kw)
    return Config.from_dict(base)


def tiny_model(seed=0, depth=2):
    from stanlib.model import create_model

    torch.manual_seed(seed)
    return create_model(clip="stan-tiny", temporal="attn", depth=depth, drop_path=0.1, num_frames=T,
                        context_length=16)


# ----------------------------------------------------------------------------- optimiser and schedule
def test_param_groups_branch_lr_and_no_decay():
    model = tiny_model()
    groups = param_groups(model, lr=1e-4, weight_decay=0.05, lr_mult=10.0)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"clip_decay", "clip_no_decay", "branch_decay", "branch_no_decay"}
    for g in groups:
        is_branch = g["name"].startswith("branch")
        assert g["lr"] == pytest.approx(1e-3 if is_branch else 1e-4)
        assert all(n.startswith("branch.") == is_branch for n in g["param_names"])
        no_decay = g["name"].endswith("no_decay")
        assert g["weight_decay"] == (0.0 if no_decay else 0.05)
        for n, p in zip(g["param_names"], g["params"]):
            if no_decay:
                assert p.ndim < 2 or "embed" in n
            else:
                assert p.ndim >= 2 and "embed" not in n
    names = {n: g["name"] for g in groups for n in g["param_names"]}
    assert names["branch.time_embed.weight"] == "branch_no_decay"          # an embedding table
    assert names["clip.visual.class_embedding"] == "clip_no_decay"         # shared CLIP embedding, CLIP lr
    assert names["clip.positional_embedding"] == "clip_no_decay"
    assert names["clip.token_embedding.weight"] == "clip_no_decay"
    assert any(n.startswith("branch.") and n.endswith("ln_1.weight") and g == "branch_no_decay"
               for n, g in names.items())                                  # norms
    assert any(n.endswith(".bias") and g == "clip_no_decay" for n, g in names.items())
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for g in groups for p in g["params"]) == total   # nothing lost or doubled


def test_trainer_optimizer_settings():
    model = tiny_model()
    trainer = Trainer(model, PairSet(4), None, tiny_config(weight_decay=0.02), collate_fn=collate, quiet=True)
    opt = trainer.optimizer
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.defaults["betas"] == (0.9, 0.98) and opt.defaults["eps"] == 1e-8
    mults = {g["name"]: g["lr_mult"] for g in opt.param_groups}
    assert mults == {"clip_decay": 1.0, "clip_no_decay": 1.0, "branch_decay": 10.0, "branch_no_decay": 10.0}
    # CLIP's own logit scale is unused by STAN (fixed 1/tau), so it is frozen and not optimised
    trained = {id(p) for g in opt.param_groups for p in g["params"]}
    assert id(model.clip.logit_scale) not in trained


def test_warmup_cosine_schedule():
    f = warmup_cosine(warmup_steps=4, total_steps=14, min_ratio=0.1)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == pytest.approx(1.0) and f(9) == pytest.approx(0.55) and f(14) == pytest.approx(0.1)
    values = [f(s) for s in range(4, 15)]
    assert all(a >= b for a, b in zip(values, values[1:]))


# ----------------------------------------------------------------------------- checkpoints
def test_rng_roundtrip_through_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(3)
    state = capture_rng()
    save_checkpoint({"rng": state}, tmp_path / "r.pt")
    expected = (torch.rand(3), np.random.rand(2), random.random())
    restore_rng(torch.load(tmp_path / "r.pt", weights_only=True)["rng"])
    again = (torch.rand(3), np.random.rand(2), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_corrupt_checkpoint_clear_error_and_previous_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"format": "stanlib-checkpoint-v1", "value": torch.arange(5)}, path)
    before = path.read_bytes()

    # a save that dies half-way (disk full, Ctrl-C) leaves the previous checkpoint untouched
    def dying_save(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint({"format": "stanlib-checkpoint-v1", "value": torch.arange(9)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert not (tmp_path / "last.pt.tmp").exists()
    assert torch.equal(load_checkpoint(path)["value"], torch.arange(5))

    # a truncated file gives an error that names it
    broken = tmp_path / "broken.pt"
    broken.write_bytes(before[: len(before) // 2])
    with pytest.raises(CheckpointError, match="broken.pt.*corrupt or truncated"):
        load_checkpoint(broken)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    # arbitrary pickled objects are refused (weights_only)
    torch.save({"format": "stanlib-checkpoint-v1", "obj": Config()}, tmp_path / "pickle.pt")
    with pytest.raises(CheckpointError, match="pickle.pt"):
        load_checkpoint(tmp_path / "pickle.pt")


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_equals_uninterrupted_run(tmp_path):
    cfg = tiny_config(epochs=2, eval_every=2)                    # 5 pairs / batch 2 = 2 steps per epoch
    train, val = PairSet(5), VideoSet(4)

    full = Trainer(tiny_model(), train, val, cfg, out_dir=tmp_path / "a", collate_fn=collate, quiet=True)
    full.fit()
    expected = _weights(full.model)

    def interrupt(event, state):
        if event == "step_end" and state.global_step == 3:      # mid-way through epoch 2
            raise KeyboardInterrupt

    first = Trainer(tiny_model(), train, val, cfg, out_dir=tmp_path / "b", callbacks=[interrupt],
                    collate_fn=collate, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    ckpt = load_checkpoint(tmp_path / "b" / "last.pt")
    assert (ckpt["state"]["epoch"], ckpt["state"]["step_in_epoch"], ckpt["state"]["global_step"]) == (1, 1, 3)

    torch.manual_seed(123)                                       # different init: everything must come from the file
    second = Trainer(tiny_model(seed=7), train, val, cfg, out_dir=tmp_path / "b", collate_fn=collate, quiet=True)
    second.fit(resume=tmp_path / "b" / "last.pt")
    got = _weights(second.model)
    assert second.state.global_step == full.state.global_step == 4
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=0, atol=0, msg=k)
    assert second.state.history[-1]["t2v/R@1"] == full.state.history[-1]["t2v/R@1"]
    assert [r["train_loss"] for r in second.state.history] == [r["train_loss"] for r in full.state.history]
    # the untouched model would differ: the test can fail
    assert not torch.equal(tiny_model(seed=7).state_dict()["branch.time_embed.weight"],
                           expected["branch.time_embed.weight"])


class Uint8PairSet(PairSet):
    """PairSet with uint8 frames, as a dataset built with ``normalise=False`` gives them."""

    def __getitem__(self, i):
        item = super().__getitem__(i)
        item["frames"] = (item["frames"].abs() * 60).clamp(0, 255).to(torch.uint8)
        return item


class NormalisedPairSet(Uint8PairSet):
    """The same frames, normalised in the worker (``normalise=True``)."""

    def __getitem__(self, i):
        from stanlib.data import normalise

        item = super().__getitem__(i)
        item["frames"] = normalise(item["frames"])
        return item


def test_uint8_frames_train_exactly_like_worker_normalised_frames(tmp_path):
    from stanlib.engine.trainer import normalise_on_device

    cfg = tiny_config(epochs=1)
    runs = {}
    for name, dataset in (("workers", NormalisedPairSet), ("device", Uint8PairSet)):
        trainer = Trainer(tiny_model(), dataset(4), VideoSet(4), cfg, out_dir=tmp_path / name, collate_fn=collate,
                          quiet=True)
        trainer.fit()
        runs[name] = (_weights(trainer.model), [r["train_loss"] for r in trainer.state.history])
    assert runs["workers"][1] == runs["device"][1]
    for k, v in runs["workers"][0].items():
        assert torch.equal(v, runs["device"][0][k]), k
    assert not torch.equal(runs["device"][0]["branch.time_embed.weight"],
                           tiny_model().state_dict()["branch.time_embed.weight"])  # it trained: can differ
    # where the Trainer's datasets normalise: auto = on the device only when it is a GPU
    assert not normalise_on_device(tiny_config(device="cpu"))
    assert normalise_on_device(tiny_config(device="cuda:0"))
    assert normalise_on_device(tiny_config(normalise_on="device", device="cpu"))
    assert not normalise_on_device(tiny_config(normalise_on="workers", device="cuda"))
    assert normalise_on_device(tiny_config()) == torch.cuda.is_available()
    with pytest.raises(ConfigError, match="normalise_on"):
        tiny_config(normalise_on="gpu")


def test_outputs_callbacks_skipped_and_accumulation(tmp_path):
    events = []
    cfg = tiny_config(epochs=1, batch_size=4, grad_accum=2, recipe_batch=128, max_steps=None)
    train = PairSet(9, skip={3})
    trainer = Trainer(ToyVideoText(size=SIZE), train, VideoSet(4), cfg, out_dir=tmp_path, collate_fn=collate,
                      callbacks=[lambda e, s: events.append((e, s.global_step))], quiet=True)
    assert "far below the recipe's 128" in trainer.describe()
    assert "2 clips per process x 1 process x 2 accumulation = 4 clips per step" in trainer.describe()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit()
    assert trainer.state.steps_per_epoch == 2                    # 8 usable clips / 4 per step
    assert [e for e, _ in events].count("step_end") == 2
    assert events[0][0] == "train_start" and events[-1][0] == "train_end"
    assert ("eval_end", 2) in events and ("epoch_end", 2) in events
    # 8 of the 9 clips are drawn per epoch (drop_last); the seeded sampler (seed 0) draws index 3
    skipped = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(skipped) == 1 and "skipped 1 clip" in skipped[0] and "broken3.mp4" in skipped[0], skipped
    for name in ("last.pt", "best.pt", "config.json", "metrics.json", "metrics.csv", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs"][0]["t2v/R@1"] == trainer.state.metrics["t2v/R@1"]
    assert len(metrics["steps"]) == 2
    assert Config.load(tmp_path / "config.json") == cfg
    assert "optimizer" not in load_checkpoint(tmp_path / "best.pt")  # best.pt: weights only


def test_skipped_videos_warn_at_epoch_end(tmp_path):
    cfg = tiny_config(epochs=1, batch_size=8)
    trainer = Trainer(ToyVideoText(size=SIZE), PairSet(8, skip={1, 5}), None, cfg, out_dir=tmp_path,
                      collate_fn=collate, quiet=True)
    with pytest.warns(UserWarning, match=r"skipped 2 clip loads.*broken1.mp4"):
        trainer.fit()


def test_recognition_with_frozen_class_embeddings(tmp_path):
    from stanlib.model import create_model

    class LabelSet(torch.utils.data.Dataset):
        classes = ["red circle moves left", "red circle moves right", "blue square grows"]

        def __init__(self, n, views=1):
            self.n, self.views = n, views
            self.labels = [i % 3 for i in range(n)]

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            shape = (T, 3, SIZE, SIZE) if self.views == 1 else (self.views, T, 3, SIZE, SIZE)
            return {"frames": torch.randn(*shape, generator=g), "label": self.labels[i], "video_idx": i}

    torch.manual_seed(0)
    model = create_model(clip="stan-tiny", temporal="attn", depth=1, num_frames=T, context_length=16)
    cfg = tiny_config(task="recognition", freeze_text=True, epochs=1, batch_size=3, test_views=3)
    text_before = model.clip.token_embedding.weight.clone()
    trainer = Trainer(model, LabelSet(6), LabelSet(4, views=3), cfg, out_dir=tmp_path, collate_fn=collate,
                      quiet=True)
    emb_before = trainer.head.class_embeddings.clone()
    trainer.fit()
    assert set(trainer.state.metrics) == {"top1", "top5"}
    assert trainer.last_logits.shape == (4, 3, 3)               # (clips, views, classes)
    assert torch.equal(model.clip.token_embedding.weight, text_before)  # text tower frozen
    assert torch.equal(trainer.head.class_embeddings, emb_before)
    trained = {n for g in trainer.optimizer.param_groups for n in g["param_names"]}
    assert not any(n.startswith("clip.transformer.") for n in trained)
    assert any(n.startswith("clip.visual.") for n in trained)


# ----------------------------------------------------------------------------- two processes (gloo)
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = ToyVideoText(size=SIZE)
        cfg = tiny_config(batch_size=8)
        trainer = Trainer(model, PairSet(8), None, cfg, out_dir=out_dir, collate_fn=collate, quiet=True)
        # this process's share of the global batch: clips rank*4 .. rank*4+3
        batch = collate([PairSet(8)[i] for i in range(rank * 4, rank * 4 + 4)])
        trainer.optimizer.zero_grad()
        loss = trainer._loss(batch)
        loss.backward()                                          # DDP averages gradients over processes
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        if rank == 0:
            torch.save({"loss": mean_loss / world,
                        "grads": {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}},
                       os.path.join(out_dir, "ddp.pt"))
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_matches_single_process_on_global_batch(tmp_path):
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)

    torch.manual_seed(0)
    model = ToyVideoText(size=SIZE)
    trainer = Trainer(model, PairSet(8), None, tiny_config(batch_size=8), out_dir=tmp_path, collate_fn=collate,
                      quiet=True)
    batch = collate([PairSet(8)[i] for i in range(8)])          # the concatenated global batch
    loss = trainer._loss(batch)
    loss.backward()
    assert ddp["loss"].item() == pytest.approx(loss.item(), abs=1e-5)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert set(grads) == set(ddp["grads"]) and len(grads) >= 6
    for n, g in grads.items():
        torch.testing.assert_close(ddp["grads"][n], g, rtol=0, atol=1e-5, msg=n)
    # sanity: one process's half of the batch alone gives a different loss (negatives matter)
    half = trainer._loss(collate([PairSet(8)[i] for i in range(4)]))
    assert abs(half.item() - loss.item()) > 1e-3


# ----------------------------------------------------------------------------- presets and CLI
def test_presets_cover_the_paper_table():
    rows = {
        "msrvtt-b32": dict(num_frames=12, context_length=32, depth=4, logit_scale=100.0, epochs=20),
        "msrvtt-b16": dict(num_frames=12, context_length=32, depth=4, logit_scale=50.0, epochs=20),
        "didemo-b32": dict(num_frames=64, context_length=64, depth=4, logit_scale=20.0, epochs=20,
                           grad_checkpointing=True),
        "lsmdc-b32": dict(num_frames=12, context_length=32, depth=4, logit_scale=100.0, epochs=20),
        "k400-b16": dict(num_frames=8, depth=4, epochs=50, test_views=3, task="recognition"),
        "ssv2-b16": dict(num_frames=8, depth=6, epochs=50, test_views=3, task="recognition"),
    }
    for name, expected in rows.items():
        cfg = get_preset(name)
        assert cfg.batch_size == 128 and cfg.lr == 2e-6 and cfg.lr_mult == 10.0, name
        for key, value in expected.items():
            assert getattr(cfg.model if key in MODEL_FIELDS else cfg, key) == value, (name, key)
    for name in ("tiny-motion", "tiny-appearance", "tiny-captions"):
        cfg = get_preset(name)
        branch_lr = 1.5e-3 if name == "tiny-captions" else 5e-3     # captions: branch lr x3 (the experiments')
        assert cfg.model.clip == "stan-tiny-v2" and cfg.lr == 5e-4 and cfg.lr * cfg.lr_mult == pytest.approx(branch_lr)
        assert cfg.data_root.endswith(name.split("-")[1])


def test_overrides_are_typed_and_checked():
    cfg = apply_overrides(get_preset("msrvtt-b32"), ["batch_size=32", "temporal=conv", "lr=1e-5",
                                                     "model_kwargs.drop_path=0", "pretrained=none"])
    assert (cfg.batch_size, cfg.model.temporal, cfg.lr, cfg.model.drop_path, cfg.model.pretrained) == \
        (32, "conv", 1e-5, 0, None)
    nested = apply_overrides(get_preset("msrvtt-b32"), ["model.depth=2", "model.drop_path=0.2"])
    assert (nested.model.depth, nested.model.drop_path) == (2, 0.2)
    with pytest.raises(ConfigError, match=r"--set 'model.depth=99'.*depth"):
        apply_overrides(get_preset("msrvtt-b32"), ["model.depth=99"])
    with pytest.raises(KeyError, match="unknown key 'batchsize'"):
        apply_overrides(cfg, ["batchsize=3"])
    with pytest.raises(ValueError, match="expected true/false"):
        apply_overrides(cfg, ["grad_checkpointing=maybe"])
    with pytest.raises(ValueError, match="task"):
        apply_overrides(cfg, ["task=detection"])


def test_presets_command(capsys):
    from stanlib.engine.presets import cli_main

    assert cli_main([]) == 0
    out = capsys.readouterr().out
    for name in ("msrvtt-b32", "msrvtt-b16", "didemo-b32", "lsmdc-b32", "k400-b16", "ssv2-b16",
                 "tiny-motion", "tiny-appearance", "tiny-captions"):
        assert name in out
    assert cli_main(["ssv2-b16"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["depth"] == 6


def test_cli_train_then_eval_reproduces_metrics(tmp_path, capsys):
    from stanlib.teaching.synth import captions_task, write_task
    from stanlib.inference.evaluate import cli_main as eval_main
    from stanlib.engine.trainer import cli_main as train_main

    data = tmp_path / "captions"
    write_task(captions_task(n_train=8, n_test=4, seed=0), data)
    out = tmp_path / "run"
    code = train_main(["--preset", "tiny-captions", "--data-root", str(data), "--out", str(out),
                       "--set", "pretrained=none", "--set", "epochs=1", "--set", "num_frames=2",
                       "--set", "batch_size=4", "--set", "depth=1", "--set", "recipe_batch=128"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "4 clips per process" in printed and "WARNING" in printed
    for name in ("last.pt", "best.pt", "config.json", "metrics.json", "metrics.csv", "curves.png"):
        assert (out / name).is_file(), name
    final = json.loads((out / "metrics.json").read_text())["epochs"][-1]
    assert json.loads((out / "config.json").read_text())["model"]["depth"] == 1

    report = tmp_path / "eval.json"
    assert eval_main(["--checkpoint", str(out / "last.pt"), "--json", str(report), "--dsl"]) == 0
    printed = capsys.readouterr().out
    assert "reproduced exactly" in printed and "t2v* DSL" in printed
    metrics = json.loads(report.read_text())["metrics"]
    for key in ("t2v/R@1", "t2v/R@5", "t2v/MdR", "v2t/R@1", "v2t/MnR"):
        assert metrics[key] == pytest.approx(final[key], abs=1e-9), key

    # a corrupt checkpoint: clear error naming the file, exit code 1
    (out / "bad.pt").write_bytes(b"not a checkpoint")
    assert eval_main(["--checkpoint", str(out / "bad.pt")]) == 1
    assert "bad.pt" in capsys.readouterr().err


def test_gradients_are_clipped_and_amp_is_off_on_cpu(tmp_path):
    from stanlib.engine.trainer import amp_settings

    assert amp_settings(torch.device("cpu"), "auto") == (None, False)
    cfg = tiny_config(epochs=1, batch_size=4, grad_clip=1e-3)
    trainer = Trainer(ToyVideoText(size=SIZE), PairSet(4), None, cfg, out_dir=tmp_path, collate_fn=collate,
                      quiet=True)
    trainer.fit()
    grads = [p.grad for g in trainer.optimizer.param_groups for p in g["params"] if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    assert norm.item() == pytest.approx(1e-3, rel=1e-3)        # clipped to max_norm (it was larger)


def test_live_curves_callback_draws(capsys):
    from stanlib.engine.trainer import TrainState, live_curves, plot_curves

    state = TrainState(global_step=10, metrics={"top1": 50.0},
                       steps=[{"step": i, "loss": 1.0 / i, "lr": 1e-3} for i in range(1, 11)],
                       history=[{"epoch": 1, "top1": 50.0}])
    fig = plot_curves(state, "top1")
    assert len(fig.axes) == 3 and len(fig.axes[2].lines[0].get_xdata()) == 1
    live_curves(every=5)("step_end", state)                   # outside a notebook display() prints a repr
    assert "Figure" in capsys.readouterr().out


def test_a_flat_config_json_of_earlier_runs_loads_into_the_nested_config(tmp_path):
    """Runs written before the model config was nested (model fields at the top, ``model_kwargs``) still load."""
    flat = get_preset("tiny-motion").to_dict()
    model = flat.pop("model")
    kept = ("clip", "pretrained", "arch", "temporal", "depth", "num_frames", "context_length", "logit_scale",
            "learnable_logit_scale")
    flat.update({k: model[k] for k in kept}, model_kwargs={"drop_path": 0.0})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(flat))
    cfg = Config.load(path)
    assert cfg.model == replace(get_preset("tiny-motion").model, drop_path=0.0)
    assert cfg.to_dict()["model"]["drop_path"] == 0.0 and "depth" not in cfg.to_dict()
    with pytest.raises(KeyError, match="unknown config keys \\['dpeth'\\]"):
        Config.from_dict({**flat, "dpeth": 2})
