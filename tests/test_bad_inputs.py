"""The bad-input and fault matrix: each test makes one bad input, runs the entry point a user runs and
checks the exit code (or exception), that the message names the file or field, and that nothing
outside the output folder changed.

Most commands run in-process through their ``cli_main``; a few run as ``python -m stanlib ...`` in a
subprocess, as a user types them (each costs a few seconds of imports).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from stanlib.data import AnnotationError, VideoTextDataset, build_dataset, decord_available, read_annotations
from stanlib.data.tools import cli_main as data_main
from stanlib.data.datasets import VideoRecord
from stanlib.data.video import open_video, test_pattern, write_video

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def _video(path: Path, width: int = 32, height: int = 32, frames: int = 6) -> Path:
    return write_video(path, test_pattern(frames, height, width))


def _garbage(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path


def _gif(path: Path, frames: int = 6) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("gif", rate=5)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "rgb8"
        for frame in test_pattern(frames, 32, 32):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def _snapshot(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every file and link under ``root`` (not following links) -> content hash or link target."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if (Path(folder) / d).is_symlink()]:
            path = Path(folder) / name
            if skip is not None and (path == skip or skip in path.parents):
                continue
            out[str(path.relative_to(root))] = (f"link:{os.readlink(path)}" if path.is_symlink()
                                                else hashlib.sha1(path.read_bytes()).hexdigest())
    return out


def _stanlib(*args: str) -> subprocess.CompletedProcess:
    """``python -m stanlib ARGS`` as a user runs it (offline, one thread)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "stanlib", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


def _label_dataset(root: Path, labels=("jump", "run"), extra_rows: str = "") -> Path:
    """A generic_label dataset: two good videos, train.csv, classes.txt."""
    for name in ("a", "b"):
        _video(root / "videos" / f"{name}.mp4")
    (root / "train.csv").write_text("video,label\nvideos/a.mp4,jump\nvideos/b.mp4,run\n" + extra_rows)
    (root / "classes.txt").write_text("\n".join(labels) + "\n")
    return root


# --------------------------------------------------------------------------------------------------
# 1. --write-clean never overwrites its input, never writes through a link; nor does the trainer
# --------------------------------------------------------------------------------------------------
def test_write_clean_refuses_to_overwrite_the_annotation_file_it_reads(tmp_path):
    root = _label_dataset(tmp_path / "ds")
    before = _snapshot(tmp_path)
    res = _stanlib("data", "check", "generic_label", "--root", str(root), "--write-clean", str(root / "train.csv"))
    assert res.returncode == 2, res.stderr
    assert "train.csv" in res.stderr and "--force" in res.stderr and "Traceback" not in res.stderr
    assert _snapshot(tmp_path) == before  # the dataset can still be read
    assert len(read_annotations("generic_label", root).videos) == 2


def test_write_clean_replaces_a_link_instead_of_writing_through_it(tmp_path, capsys):
    root = _label_dataset(tmp_path / "ds")
    victim = tmp_path / "elsewhere" / "important.txt"
    victim.parent.mkdir()
    victim.write_text("keep me\n")
    out = tmp_path / "clean" / "clean.csv"
    out.parent.mkdir()
    out.symlink_to(victim)
    before = _snapshot(tmp_path, skip=out.parent)
    assert data_main(["check", "generic_label", "--root", str(root), "--write-clean", str(out)]) == 0
    assert _snapshot(tmp_path, skip=out.parent) == before
    assert not out.is_symlink() and out.read_text().startswith("video,label\n")
    assert len(build_dataset("generic_label", out, num_frames=2, image_size=32)) == 2
    capsys.readouterr()
    # an input written on purpose: --force replaces the file (the link to it is not followed either)
    assert data_main(["check", "generic_label", "--root", str(root), "--write-clean", str(root / "train.csv"),
                      "--force"]) == 0
    assert victim.read_text() == "keep me\n"


def test_checkpoint_writer_replaces_a_planted_tmp_link(tmp_path):
    from stanlib.engine.trainer import load_checkpoint, save_checkpoint

    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious")
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt.tmp").symlink_to(victim)
    save_checkpoint({"format": "stanlib-checkpoint-v1", "x": torch.ones(2)}, out / "last.pt")
    assert victim.read_bytes() == b"precious"
    assert not (out / "last.pt.tmp").exists() and not (out / "last.pt.tmp").is_symlink()
    assert torch.equal(load_checkpoint(out / "last.pt")["x"], torch.ones(2))


# --------------------------------------------------------------------------------------------------
# 2. synth --overwrite deletes only what it wrote
# --------------------------------------------------------------------------------------------------
def test_synth_overwrite_keeps_files_it_did_not_write(tmp_path):
    from stanlib.teaching.synth import motion_task, write_task

    out = tmp_path / "motion"
    small = dict(n_train=2, n_test=2, size=32, num_frames=4)
    write_task(motion_task(**small), out, progress=False)
    mine = _video(out / "videos" / "my_holiday.mp4")
    before = _snapshot(tmp_path)
    res = _stanlib("synth", "motion", "--out", str(out), "--overwrite", "--n-train", "2", "--n-test", "2",
                   "--size", "32", "--frames", "4")
    assert res.returncode == 2, res.stderr
    assert "my_holiday.mp4" in res.stderr and "Traceback" not in res.stderr
    assert _snapshot(tmp_path) == before
    mine.rename(tmp_path / "my_holiday.mp4")
    write_task(motion_task(seed=1, **small), out, overwrite=True, progress=False)  # its own files: replaced
    assert len(read_annotations("ssv2", out, "train").videos) == 2


# --------------------------------------------------------------------------------------------------
# 3. one label per video; labels must be classes; inferred classes are shown, near-duplicates flagged
# --------------------------------------------------------------------------------------------------
def _layout(root: Path, kind: str) -> tuple[str, dict, str]:
    """A dataset that lists video x twice with two labels: (dataset name, reader kwargs, expected places)."""
    root.mkdir()
    if kind == "ssv2":
        (root / "labels.json").write_text(json.dumps({"moving left": "0", "moving right": "1"}))
        (root / "train.json").write_text(json.dumps([
            {"id": "7", "label": "l", "template": "moving left", "placeholders": []},
            {"id": "7", "label": "r", "template": "moving [right]", "placeholders": []}]))
        return "ssv2", {}, r"\[0\] and \[1\] both list video '7'"
    if kind == "k400-csv":
        (root / "label_map_k400.txt").write_text("abseiling\nair drumming\n")
        (root / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                        "abseiling,x,1,11,train\nair drumming,x,1,11,train\n")
        return "k400", {}, "line 2 and line 3 both list video 'x_000001_000011'"
    if kind == "k400-list":
        (root / "label_map_k400.txt").write_text("abseiling\nair drumming\n")
        (root / "train_list.txt").write_text("videos/x.mp4 0\nvideos/x.mp4 1\n")
        return "k400", {"format": "list"}, "line 1 and line 2 both list video 'videos/x.mp4'"
    (root / "classes.txt").write_text("jump\nrun\n")
    (root / "train.csv").write_text("video,label\nvideos/x.mp4,jump\n./videos/x.mp4,run\n")
    return "generic_label", {}, "line 2 and line 3 both list video"


@pytest.mark.parametrize("kind", ["ssv2", "k400-csv", "k400-list", "generic_label"])
def test_a_video_listed_twice_with_two_labels_is_an_error(tmp_path, kind):
    name, kwargs, places = _layout(tmp_path / kind, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the videos do not exist: announced, not the point here
        with pytest.raises(AnnotationError, match=places) as info:
            read_annotations(name, tmp_path / kind, "train", **kwargs)
    assert "different labels" in str(info.value)


def test_data_check_reports_a_conflicting_duplicate_with_exit_code_2(tmp_path, capsys):
    _layout(tmp_path / "g", "generic_label")
    assert data_main(["check", "generic_label", "--root", str(tmp_path / "g")]) == 2
    assert "train.csv: line 2 and line 3 both list video" in capsys.readouterr().err


def test_a_label_missing_from_the_label_map_is_an_error(tmp_path):
    root = tmp_path / "k400"
    root.mkdir()
    (root / "label_map_k400.txt").write_text("abseiling\n")
    (root / "train.csv").write_text("label,youtube_id,time_start,time_end,split\nabseilling,x,1,11,train\n")
    with pytest.raises(AnnotationError, match=r"train\.csv: line 2: label 'abseilling' is not one of the 1 classes"):
        read_annotations("k400", root, "train")


@pytest.mark.parametrize("name", ["k400", "generic_label"])
def test_inferred_classes_are_printed_and_a_typo_is_flagged(tmp_path, capsys, name):
    root = tmp_path / name
    labels = ["jumping", "running", "jumpping"]  # the third is a typo of the first
    for i in range(3):
        _video(root / "videos" / (f"v{i}_000001_000011.mp4" if name == "k400" else f"v{i}.mp4"))
    if name == "k400":
        (root / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n" +
                                        "".join(f"{lab},v{i},1,11,train\n" for i, lab in enumerate(labels)))
    else:
        (root / "train.csv").write_text("video,label\n" + "".join(f"videos/v{i}.mp4,{lab}\n"
                                                                 for i, lab in enumerate(labels)))
    with pytest.warns(UserWarning, match="'jumping'/'jumpping'"):  # training sees it too
        assert read_annotations(name, root, "train").inferred_classes
    assert data_main(["check", name, "--root", str(root)]) == 0  # a warning, not an error
    out = capsys.readouterr().out
    assert "classes inferred from the labels" in out and "jumping, jumpping, running" in out
    assert "WARNING: classes 'jumping' and 'jumpping' differ by one character" in out


# --------------------------------------------------------------------------------------------------
# 4. an empty split is an error (data check: exit 2; training: one line)
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,text", [("train.json", "[]"), ("train.csv", "video,label\n")])
def test_empty_split_fails_data_check(tmp_path, capsys, name, text):
    (tmp_path / "classes.txt").write_text("a\n")
    (tmp_path / name).write_text(text)
    assert data_main(["check", "generic_label", "--root", str(tmp_path)]) == 2
    assert f"{name}: split 'train' lists no videos" in capsys.readouterr().err
    with pytest.raises(AnnotationError, match="lists no videos"):
        build_dataset("generic_label", tmp_path)


def test_empty_training_split_is_a_one_line_error_in_train(tmp_path, capsys):
    from stanlib.engine.trainer import cli_main as train_main

    root = tmp_path / "motion"
    root.mkdir()
    (root / "labels.json").write_text(json.dumps({"moving left": "0"}))
    (root / "something-something-v2-train.json").write_text("[]")
    (root / "something-something-v2-validation.json").write_text("[]")
    code = train_main(["--preset", "tiny-motion", "--data-root", str(root), "--out", str(tmp_path / "run"),
                       "--set", "pretrained=none"])
    err = capsys.readouterr().err
    assert code == 2
    assert "something-something-v2-train.json: split 'train' of ssv2 lists no videos" in err
    assert len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------------------------------
# 5. evaluation faults do not lose training; 7. an all-corrupt training batch is a message
# --------------------------------------------------------------------------------------------------
class _ToyVideoText(nn.Module):
    """Tiny stand-in for STANModel (encode_video / encode_text / logit_scale, new layers under branch.)."""

    def __init__(self, size: int = 16, dim: int = 8):
        super().__init__()
        self.frame_proj = nn.Linear(3 * size * size, dim)
        self.branch = nn.Linear(dim, dim)
        self.token_embedding = nn.Embedding(16, dim)
        self.register_buffer("log_logit_scale", torch.tensor(3.0))

    @property
    def logit_scale(self):
        return self.log_logit_scale.exp()

    def encode_video(self, frames):
        return self.branch(self.frame_proj(frames.flatten(2)).mean(1))

    def encode_text(self, tokens):
        return self.token_embedding(tokens).mean(1)


def _tokens(texts, context_length=None):
    return torch.tensor([[1 + len(t) % 14, 2, 3, 4] for t in texts])


def _text_set(paths: list[Path], train: bool) -> VideoTextDataset:
    videos = [VideoRecord(p, p.stem) for p in paths]
    return VideoTextDataset(videos, [f"clip {p.stem}" for p in paths], list(range(len(paths))), tokenizer=_tokens,
                            train=train, num_frames=2, image_size=16)


def _toy_config(**kw):
    from stanlib.engine.presets import Config

    base = dict(name="bad-input", task="retrieval", clip="stan-tiny", pretrained=None, depth=1, num_frames=2,
                context_length=4, batch_size=2, recipe_batch=2, lr=1e-3, epochs=2, warmup_steps=1, num_workers=0,
                amp="off", log_every=1)
    return Config.from_dict({**base, **kw})


def test_a_corrupt_test_video_keeps_the_checkpoint_and_names_the_file(tmp_path):
    from stanlib.engine.trainer import EvaluationError, Trainer, load_checkpoint

    good = [_video(tmp_path / "videos" / f"g{i}.mp4") for i in range(2)]
    bad = _garbage(tmp_path / "videos" / "broken_test.mp4")
    train, val = _text_set(good, train=True), _text_set([good[0], bad], train=False)
    trainer = Trainer(_ToyVideoText(), train, val, _toy_config(), out_dir=tmp_path / "run", quiet=True)
    with pytest.raises(EvaluationError, match="broken_test.mp4") as info:
        trainer.fit()
    assert "last.pt" in str(info.value) and "--skip-bad-eval" in str(info.value)
    saved = load_checkpoint(tmp_path / "run" / "last.pt")  # the epoch's training was saved before evaluating
    assert saved["state"]["epoch"] == 1 and saved["state"]["global_step"] == 1

    skipping = Trainer(_ToyVideoText(), train, val, _toy_config(skip_bad_eval=True), out_dir=tmp_path / "run2",
                       quiet=True)
    with pytest.warns(UserWarning, match=r"evaluation after epoch \d skipped.*broken_test.mp4"):
        history = skipping.fit()
    assert len(history) == 2 and history[0]["eval_error"].endswith("broken_test.mp4")
    assert load_checkpoint(tmp_path / "run2" / "last.pt")["state"]["epoch"] == 2


def test_a_batch_of_only_corrupt_clips_stops_with_the_files_named(tmp_path):
    from stanlib.engine.trainer import DataError, Trainer, load_checkpoint

    bad = [_garbage(tmp_path / "videos" / f"broken{i}.mp4") for i in range(2)]
    trainer = Trainer(_ToyVideoText(), _text_set(bad, train=True), None, _toy_config(), out_dir=tmp_path / "run",
                      quiet=True)
    with pytest.raises(DataError, match=r"every clip of a training batch failed to load.*broken\d.mp4") as info:
        trainer.fit()
    assert "stanlib data check" in str(info.value) and "last.pt" in str(info.value)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["state"]["global_step"] == 0


# --------------------------------------------------------------------------------------------------
# 6. valid videos decord refuses are read with PyAV, never dropped
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["width16", "width48", "width72", "gif"])
def test_videos_decord_refuses_are_read_with_pyav(tmp_path, kind):
    path = _gif(tmp_path / "clip.gif") if kind == "gif" else _video(tmp_path / "clip.mp4", width=int(kind[5:]))
    with open_video(path) as reader:  # the default backend (decord where installed)
        frames = reader.get_batch([0, 5])
        if decord_available():
            assert reader.backend == "pyav" and reader.decord_error
    assert frames.shape[0] == 2 and frames.shape[1:] == (32, 32 if kind == "gif" else int(kind[5:]), 3)


def test_data_check_keeps_and_reports_fallback_videos(tmp_path, capsys):
    paths = [_video(tmp_path / "videos" / f"w{w}.mp4", width=w) for w in (16, 48, 72)]
    paths.append(_gif(tmp_path / "videos" / "anim.gif"))
    (tmp_path / "train.csv").write_text("video,label\n" + "".join(f"videos/{p.name},a\n" for p in paths))
    (tmp_path / "classes.txt").write_text("a\n")
    out = tmp_path / "clean" / "clean.csv"
    assert data_main(["check", "generic_label", "--root", str(tmp_path), "--write-clean", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 ok, 0 bad" in text
    if decord_available():
        assert sum(ln.startswith("PYAV ") for ln in text.splitlines()) == 4 and "w48.mp4: decord:" in text
    assert len(read_annotations("generic_label", out).videos) == 4


# --------------------------------------------------------------------------------------------------
# 7. messages instead of tracebacks
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("item,key", [("batch_size=abc", "batch_size"), ("num_frames=65", "num_frames"),
                                      ("temporal=bogus", "temporal"), ("depth=0", "depth"), ("depth=5", "depth"),
                                      ("lr=fast", "lr")])
def test_set_values_are_checked_when_parsed(item, key):
    from stanlib.engine.presets import ConfigError, apply_overrides, get_preset

    with pytest.raises(ConfigError, match=rf"--set '{item}'.*{key}=") as info:
        apply_overrides(get_preset("tiny-motion"), [item])
    assert info.value.key == key


def test_train_cli_names_the_bad_set_item(tmp_path):
    res = _stanlib("train", "--preset", "tiny-motion", "--out", str(tmp_path / "run"), "--set", "batch_size=abc")
    assert res.returncode == 2
    assert "batch_size='abc' must be an integer" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()


def test_attention_on_a_bad_video_is_a_message(tmp_path, capsys):
    from stanlib.viz.cli import cli_main as attention_main

    bad = _garbage(tmp_path / "broken.mp4")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no bundled model in a bare checkout: a random one is fine here
        code = attention_main(["--video", str(bad), "--out", str(tmp_path / "att")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot decode video" in err and str(bad) in err and "Traceback" not in err
    assert not (tmp_path / "att").exists()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from stanlib.model import create_model
    from stanlib.weights import save_pretrained

    folder = tmp_path_factory.mktemp("saved") / "tiny"
    save_pretrained(create_model(clip="stan-tiny", temporal="attn", depth=1, num_frames=2), folder)
    return folder


@pytest.mark.parametrize("damage,message", [
    ("truncated", r"model\.safetensors: .*truncated"),
    ("bad_json", r"config\.json: line 1 column \d+: invalid JSON"),
    ("depth_four", r"config\.json: field 'depth' must be int, got str 'four'"),
    ("depth_big", r"config\.json: cannot build the model it describes: depth K=9"),
])
def test_damaged_pretrained_folder_names_the_file(tmp_path, saved_model, damage, message):
    import shutil

    from stanlib.weights import from_pretrained

    folder = tmp_path / "copy"
    shutil.copytree(saved_model, folder)
    config = json.loads((folder / "config.json").read_text())
    if damage == "truncated":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "bad_json":
        (folder / "config.json").write_text("{'depth': 1}")
    else:
        config["depth"] = "four" if damage == "depth_four" else 9
        (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        from_pretrained(folder)


@pytest.mark.parametrize("encoding,error", [("utf-8-sig", None), ("utf-16", "UTF-16"),
                                            ("latin-1", "line 3: byte 0xe9 is not UTF-8")])
def test_annotation_text_encodings(tmp_path, encoding, error):
    root = _label_dataset(tmp_path / "ds")
    (root / "train.csv").write_bytes("video,label\nvideos/a.mp4,jump\nvideos/b.mp4,run # café\n".encode(encoding)
                                     if error else "video,label\nvideos/a.mp4,jump\nvideos/b.mp4,run\n".encode(encoding))
    if error is None:  # a byte-order mark (as spreadsheets write) is fine
        assert read_annotations("generic_label", root).labels == [0, 1]
        return
    with pytest.raises(AnnotationError, match=rf"train\.csv: .*{error}"):
        read_annotations("generic_label", root)


def test_eval_creates_the_folder_of_its_outputs_first(tmp_path, capsys):
    from stanlib.cli import main  # `stanlib eval`, wherever the command lives

    report = tmp_path / "reports" / "new" / "metrics.json"
    assert main(["eval", "--checkpoint", str(tmp_path / "missing.pt"), "--json", str(report)]) == 1
    assert report.parent.is_dir() and "missing.pt" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# 8. the authors' checkpoints: conv weights as `.layers.`, the original code's `timesFPN_*` names
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def conv_export(tmp_path_factory):
    from stanlib.model import create_model
    from stanlib.weights import export_official

    torch.manual_seed(0)
    model = create_model(clip="stan-tiny", temporal="conv", depth=1, num_frames=2).eval()
    path = export_official(model, tmp_path_factory.mktemp("official") / "stan_conv.pth")
    return model, torch.load(path, weights_only=True)["state_dict"]


def _rename(sd: dict, kind: str) -> dict:
    if kind == "authors":
        return dict(sd)
    if kind == "stanlib-0.1":  # what stanlib's export wrote before it matched the authors' conv name
        return {k.replace(".layers.weight", ".conv.weight").replace(".layers.bias", ".conv.bias"): v
                for k, v in sd.items()}
    out = {k.replace("backbone.STAN_", "backbone.timesFPN_"): v for k, v in sd.items()}
    out["backbone.timesFPN_pos_embed.weight"] = torch.zeros(3, 8)
    out["backbone.timesFPN_cls_token"] = torch.zeros(1, 1, 8)
    return out


@pytest.mark.parametrize("kind", ["authors", "timesFPN", "stanlib-0.1"])
def test_authors_conv_and_older_key_names_load(tmp_path, conv_export, kind):
    from stanlib.weights import load_official, portable_config

    model, sd = conv_export
    assert "backbone.STAN_T_layers.0.layers.weight" in sd and not any(".conv." in k for k in sd)  # export
    path = tmp_path / f"{kind}.pth"
    torch.save({"state_dict": _rename(sd, kind)}, path)  # no meta: config inferred from the keys
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_official(path, quick_gelu=portable_config(model)["quick_gelu"])
    notes = [str(w.message) for w in caught if "never uses" in str(w.message)]
    assert bool(notes) == (kind == "timesFPN") and (not notes or "timesFPN_cls_token" in notes[0])
    assert loaded.config.temporal == "conv" and loaded.config.depth == 1
    expected = {k: v for k, v in model.state_dict().items() if k != "clip.logit_scale"}
    got = loaded.state_dict()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0, msg=key)


def test_convert_official_cli_reads_timesfpn_names(tmp_path, conv_export, capsys):
    from stanlib.weights import cli_main as convert_main

    path = tmp_path / "old.pth"
    torch.save({"state_dict": _rename(conv_export[1], "timesFPN")}, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert convert_main(["official", str(path), str(tmp_path / "out")]) == 0
    assert "temporal=conv" in capsys.readouterr().out and (tmp_path / "out" / "model.safetensors").is_file()
