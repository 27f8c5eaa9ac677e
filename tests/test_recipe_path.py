"""One recipe path: the training engine shared by every loop, the tiny presets = the experiments' recipes,
twin batches and the orthogonal head in `stanlib train`, and `stanlib experiments run --preset` on any dataset."""
import csv
import json
import math

import pytest
import torch
import torch.nn as nn

from stanlib.engine.distributed import DistInfo
from stanlib.engine.optim import Stepper, build_optimizer, warmup_cosine
from stanlib.engine.presets import MODEL_FIELDS, ConfigError, apply_overrides, get_preset


# ----------------------------------------------------------------------------- the engine
def test_stepper_equals_the_written_out_step_bit_for_bit():
    def make():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Linear(8, 3))

    x, y = torch.randn(10, 6), torch.randint(0, 3, (10,))
    a, b = make(), make()
    opt_a = build_optimizer(a, lr=1e-2, weight_decay=0.1, lr_mult=1.0)
    stepper = Stepper(opt_a, warmup_cosine(2, 5), grad_clip=0.5)
    opt_b = build_optimizer(b, lr=1e-2, weight_decay=0.1, lr_mult=1.0)
    sched_b = torch.optim.lr_scheduler.LambdaLR(opt_b, warmup_cosine(2, 5))
    for _ in range(5):
        stepper.step(nn.functional.cross_entropy(a(x), y))
        loss = nn.functional.cross_entropy(b(x), y)
        opt_b.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt_b.param_groups for p in g["params"]], 0.5)
        opt_b.step()
        sched_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert stepper.lr == pytest.approx(1e-2 * warmup_cosine(2, 5)(5))


def test_every_training_loop_uses_the_engine():
    import inspect
    from pathlib import Path

    from stanlib.engine import trainer as train
    from stanlib.teaching import experiments, tiny

    sources = {module.__name__: inspect.getsource(module) for module in (train, experiments, tiny)}
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"  # a script of the repository
    sources["benchmarks/bench.py"] = bench.read_text()
    for name, source in sources.items():
        assert "Stepper(" in source, name
        assert "clip_grad_norm_" not in source and "LambdaLR(" not in source, name


# ----------------------------------------------------------------------------- presets = recipes
@pytest.mark.parametrize("task", ["motion", "appearance"])
def test_tiny_presets_are_the_experiments_recipes(task):
    from stanlib.teaching.experiments import resolve_head, task_recipe

    cfg, recipe = get_preset(f"tiny-{task}"), task_recipe(task)     # the default: the paper's method
    assert cfg.model.clip == recipe.clip == "stan-tiny-v2"
    for field in ("lr", "lr_mult", "weight_decay", "batch_size", "depth", "num_frames", "grad_clip", "logit_scale"):
        assert getattr(cfg.model if field in MODEL_FIELDS else cfg, field) == getattr(recipe, field), field
    assert cfg.warmup_steps == recipe.warmup
    assert cfg.head == resolve_head(recipe, task) == "text"
    assert cfg.twin_batches == (task == "motion") and recipe.twin_batches
    assert cfg.crop_scale == (1.0, 1.0)          # the experiments train on whole frames
    assert cfg.model.pretrained == recipe.pretrained == "bundled"


def test_tiny_motion_trains_the_experiments_number_of_steps_on_the_bundled_data():
    from stanlib.assets import repo_root
    from stanlib.teaching.experiments import task_recipe

    root = repo_root()
    if root is None:
        pytest.skip("needs the repository's data_samples")
    meta = json.loads((root / "data_samples/synth/motion/synth_meta.json").read_text())
    train = [it for it in meta["items"] if it["split"] == "train"]
    assert all(it["twin"] is not None for it in train)           # twin batches can be drawn
    cfg = get_preset("tiny-motion")
    assert cfg.epochs * (len(train) // cfg.batch_size) == task_recipe("motion").steps


def test_orthogonal_head_is_recognition_only_and_crop_scale_is_checked():
    with pytest.raises(ConfigError, match="head"):
        apply_overrides(get_preset("tiny-captions"), ["head=orthogonal"])
    with pytest.raises(ConfigError, match="crop_scale"):
        apply_overrides(get_preset("tiny-motion"), ["crop_scale=[0.5, 1.5]"])
    with pytest.raises(ConfigError, match="batch_size"):
        apply_overrides(get_preset("tiny-motion"), ["batch_size=5"])
    assert apply_overrides(get_preset("tiny-motion"), ["crop_scale=[0.5, 1.0]"]).crop_scale == (0.5, 1.0)


# ----------------------------------------------------------------------------- twin batches
def test_twin_sampler_keeps_pairs_together_and_splits_them_between_processes():
    from stanlib.engine.trainer import TwinSampler

    twins = [1, 0, 3, 2, -1, 6, 5, 8, 7, 10, 9]          # clip 4 has no twin: never drawn
    one = TwinSampler(twins, DistInfo(rank=0, world_size=1, local_rank=0), seed=3)
    one.set_epoch(0)
    order = list(one)
    assert sorted(order) == [i for i in range(11) if i != 4] and len(one) == 10
    assert all(twins[order[k]] == order[k + 1] for k in range(0, len(order), 2))
    one.set_epoch(1)
    assert list(one) != order                              # reshuffled per epoch ...
    one.set_epoch(0)
    assert list(one) == order                              # ... and reproducible
    one.set_epoch(0, skip=4)
    assert list(one) == order[4:]                          # resumable mid-epoch
    ranks = [TwinSampler(twins, DistInfo(rank=r, world_size=2, local_rank=r), seed=3) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(0)
    a, b = (list(s) for s in ranks)
    assert len(a) == len(b) == 4 and not set(a) & set(b)
    assert all(twins[a[k]] == a[k + 1] for k in range(0, 4, 2))


def _write_generic_world(tmp_path, n_train=8, n_test=4, twin_train=True):
    """A tiny synthetic motion world in the generic_label format, twins declared in a column."""
    from stanlib.teaching.synth import motion_task, write_task

    task = motion_task(n_train=n_train, n_test=n_test, size=32, num_frames=4, twin_train=twin_train)
    write_task(task, tmp_path / "synth", progress=False)
    root = tmp_path / "world"
    root.mkdir()
    for split, items in (("train", task.train), ("test", task.test)):
        with open(root / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(("video", "label", "twin"))
            w.writerows((f"../synth/videos/{it.id}.mp4", task.classes[it.label],
                         f"../synth/videos/{it.twin}.mp4" if it.twin else "") for it in items)
    (root / "classes.txt").write_text("\n".join(task.classes) + "\n")
    return root


TINY = ["pretrained=none", "num_frames=2", "depth=1", "amp=off", "eval_every=1000"]


def test_trainer_draws_twin_batches_and_uses_the_orthogonal_head(tmp_path):
    from stanlib.engine.trainer import TwinSampler, build_trainer

    root = _write_generic_world(tmp_path)
    cfg = apply_overrides(get_preset("tiny-motion"), [f"data_root={root}", "dataset=generic_label",
                                                      "val_split=test", "batch_size=4", "max_steps=2",
                                                      f"out_dir={tmp_path / 'run'}", "head=orthogonal", *TINY])
    trainer = build_trainer(cfg)
    assert isinstance(trainer.sampler, TwinSampler)
    twins = trainer.train_set.twins
    batch = next(iter(trainer.loader))
    idx = batch["video_idx"].tolist() if torch.is_tensor(batch["video_idx"]) else list(batch["video_idx"])
    assert twins[idx[0]] == idx[1] and twins[idx[2]] == idx[3]
    emb = trainer.head.class_embeddings.float()
    assert torch.allclose(emb @ emb.t(), torch.eye(len(emb)), atol=1e-5)   # orthonormal class vectors
    trainer.quiet = True
    trainer.fit()
    assert trainer.state.global_step == 2


def test_twin_batches_without_declared_twins_name_the_fix(tmp_path):
    from stanlib.engine.trainer import build_trainer

    root = _write_generic_world(tmp_path, twin_train=False)
    cfg = apply_overrides(get_preset("tiny-motion"), [f"data_root={root}", "dataset=generic_label",
                                                      "val_split=test", "batch_size=4", *TINY])
    with pytest.raises(ValueError, match="twin_batches=false"):
        build_trainer(cfg)


def test_crop_scale_reaches_the_training_transform(tmp_path):
    from stanlib.engine.trainer import build_datasets, build_model

    root = _write_generic_world(tmp_path)
    cfg = apply_overrides(get_preset("tiny-motion"), [f"data_root={root}", "dataset=generic_label",
                                                      "val_split=test", "crop_scale=[0.5, 0.9]", *TINY])
    ds = build_datasets(cfg, build_model(cfg))
    assert ds["train"].options.crop_scale == (0.5, 0.9)


# ----------------------------------------------------------------------------- experiments on any dataset
def test_experiments_run_a_preset_on_a_generic_dataset(tmp_path, capsys):
    from stanlib.teaching.experiments import cli_main

    root = _write_generic_world(tmp_path)
    out = tmp_path / "out"
    argv = ["run", "--preset", "tiny-motion", "--data", f"generic_label:{root}", "--rows", "meanpool",
            "--seeds", "0", "--quick", "--out", str(out)] + [a for item in TINY for a in ("--config", item)]
    assert cli_main(argv) == 0
    files = list((out / "preset-results").glob("*.json"))
    assert len(files) == 1 and files[0].name.startswith("tiny-motion@world__meanpool__seed0__")
    res = json.loads(files[0].read_text())
    assert res["config"]["dataset"] == "generic_label" and res["config"]["model"]["arch"] == "meanpool"
    # mean pooling on exact reversal twins: direction exactly 50 %, per declared pair
    assert res["metrics"]["direction"] == 50.0 and res["metrics"]["per_pair"]
    assert all(p["direction"] == 50.0 for p in res["metrics"]["per_pair"].values())
    assert "| tiny-motion@world | CLIP mean pooling" in capsys.readouterr().out
    mtime = files[0].stat().st_mtime
    assert cli_main(argv) == 0 and files[0].stat().st_mtime == mtime       # cached: not trained again
    assert cli_main(["run", "--data", f"generic_label:{root}"]) == 2        # --data needs --preset
    assert cli_main(["run", "--preset", "tiny-motion", "--data", "nocolon", "--quick", "--out", str(out)]) == 2


def test_predict_and_attention_read_a_training_checkpoint(tmp_path, capsys):
    from stanlib.inference.predict import Predictor
    from stanlib.inference.predict import cli_main as predict_main
    from stanlib.engine.trainer import build_trainer
    from stanlib.weights import load_model

    root = _write_generic_world(tmp_path)
    cfg = apply_overrides(get_preset("tiny-motion"), [f"data_root={root}", "dataset=generic_label",
                                                      "val_split=test", "batch_size=4", "max_steps=1",
                                                      f"out_dir={tmp_path / 'run'}", "head=orthogonal", *TINY])
    trainer = build_trainer(cfg)
    trainer.quiet = True
    trainer.fit()
    model = load_model(tmp_path / "run" / "last.pt")
    extra = model.config.extra
    assert extra["head"] == "orthogonal" and extra["classes"] == trainer.class_names
    frames = torch.randn(1, 2, 3, model.image_size, model.image_size)
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(model.encode_video(frames), trainer.model.encode_video(frames))
    video = next(iter(sorted((tmp_path / "synth" / "videos").glob("*.mp4"))))
    top = Predictor(model).classify(video, topk=3)       # the run's own classes, fixed class vectors
    assert len(top) == 3 and {name for name, _ in top} <= set(trainer.class_names)
    assert predict_main(["--video", str(video), "--checkpoint", str(tmp_path / "run" / "last.pt"), "--topk", "2"]) == 0
    printed = capsys.readouterr().out
    assert "top-2 classes" in printed and any(name in printed for name in trainer.class_names)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_model(tmp_path / "bad.pt")


def test_bundled_motion_twins_decode_to_exact_reversals():
    import numpy as np

    from stanlib.assets import repo_root
    from stanlib.data.video import open_video

    root = repo_root()
    if root is None:
        pytest.skip("needs the repository's data_samples")
    folder = root / "data_samples/synth/motion"
    meta = json.loads((folder / "synth_meta.json").read_text())
    item = next(it for it in meta["items"] if it["split"] == "test")

    def frames(video_id):
        with open_video(folder / "videos" / f"{video_id}.mp4") as reader:
            return reader.get_batch(list(range(len(reader))))

    a, b = frames(item["id"]), frames(item["twin"])
    assert len(a) == 8 and np.array_equal(a, b[::-1])   # lossless: an order-blind model scores exactly 50 %
