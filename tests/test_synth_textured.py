"""The textured world (`stanlib synth --style textured`): generic_label folder with declared twins that are
exact frame reversals, tiny-vocabulary class names, determinism, and the plain world left as it was."""
import csv
import hashlib
import json
import warnings

import numpy as np
import pytest

from stanlib.teaching import synth
from stanlib.data.datasets import build_dataset, near_duplicate_classes
from stanlib.teaching.synth import (JITTER_MAX, SPRITE_KINDS, TEXTURED_CLASSES, TEXTURED_MOTIONS, TexturedSpec,
                                cli_main, render_textured, reverse_textured_spec, sample_textured_spec,
                                textured_task)
from stanlib.model.tokenizer import WordTokenizer, unknown_words


def _decode(path) -> np.ndarray:
    av = pytest.importorskip("av")
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("textured")
    assert cli_main(["--style", "textured", "--out", str(out), "--seed", "3", "--n-train", "8", "--n-test", "8"]) == 0
    return out


# --- the written folder ---------------------------------------------------------------------------

def test_folder_reads_back_through_build_dataset_with_twins(written):
    assert (written / "classes.txt").read_text().splitlines() == list(TEXTURED_CLASSES)
    assert [r["video"] for r in _rows(written / "train.csv")] == [f"videos/{i}.mp4" for i in range(8)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing videos, no near-duplicate classes
        train = build_dataset("generic_label", written, "train")
        test = build_dataset("generic_label", written, "test")
    assert list(train.classes) == list(TEXTURED_CLASSES) == list(test.classes)
    assert len(train.videos) == 8 and len(test.videos) == 8
    assert train.twins is None  # independent training clips by default
    assert test.twins is not None and all(t >= 0 for t in test.twins)  # every test clip's twin is in the test set
    for i, j in enumerate(test.twins):
        assert test.twins[j] == i and test.labels[j] == test.labels[i] ^ 1  # partner classes
    task = textured_task(n_train=8, n_test=8, seed=3)
    assert [s for _, _, s in synth.load_meta(written)] == [it.spec for it in task.train + task.test]
    assert json.loads((written / "synth_meta.json").read_text())["style"] == "textured"


def test_stanlib_data_check_passes(written, capsys):
    from stanlib.cli import main
    for split in ("train", "test"):
        assert main(["data", "check", "generic_label", "--root", str(written), "--split", split]) == 0, \
            capsys.readouterr()


def test_each_test_twin_is_the_exact_frame_reversal(written):
    task = textured_task(n_train=8, n_test=8, seed=3)
    items = {it.id: it for it in task.test}
    for it in task.test:
        twin = items[it.twin]
        assert twin.twin == it.id and twin.label == it.label ^ 1
        assert np.array_equal(twin.frames(), it.frames()[::-1])  # jitter, distractors, noise included
    a, b = task.test[0], items[task.test[0].twin]
    decoded_a, decoded_b = _decode(written / "videos" / f"{a.id}.mp4"), _decode(written / "videos" / f"{b.id}.mp4")
    assert decoded_a.shape == (16, 64, 64, 3)
    assert np.abs(decoded_a.astype(int) - a.frames()).mean() < 4  # h264 keeps the noisy frames close
    assert np.abs(decoded_b.astype(int) - decoded_a[::-1]).mean() < 4


def test_overwrite_replaces_a_textured_set(tmp_path, capsys):
    out = tmp_path / "t"
    assert cli_main(["--style", "textured", "--out", str(out), "--n-train", "2", "--n-test", "2"]) == 0
    assert cli_main(["--style", "textured", "--out", str(out), "--n-train", "0", "--n-test", "2"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli_main(["--style", "textured", "--out", str(out), "--n-train", "0", "--n-test", "2", "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["0.mp4", "1.mp4"]
    assert _rows(out / "train.csv") == []


def test_cli_bad_input(tmp_path, capsys):
    assert cli_main(["--style", "textured", "--out", str(tmp_path / "a"), "--n-test", "3"]) == 2
    assert "even" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["appearance", "--style", "textured", "--out", str(tmp_path / "b")])
    with pytest.raises(SystemExit):
        cli_main(["--out", str(tmp_path / "c")])  # the plain style still needs its task


# --- classes, clips --------------------------------------------------------------------------------

def test_classes_are_tiny_vocabulary_words_in_reversal_pairs():
    assert unknown_words(list(TEXTURED_CLASSES), "stan-tiny") == []
    tok = WordTokenizer(strict=True)  # raises on any unknown word
    assert all(len(tok.encode(name)) + 2 <= 16 for name in TEXTURED_CLASSES)
    assert near_duplicate_classes(TEXTURED_CLASSES) == []
    assert len(TEXTURED_CLASSES) == len(TEXTURED_MOTIONS) == 8
    spec = sample_textured_spec(np.random.default_rng(0), "brighter", size=32, num_frames=4)
    assert reverse_textured_spec(reverse_textured_spec(spec)) == spec
    assert reverse_textured_spec(spec).motion == "darker"


def test_same_seed_same_clips_and_balanced_splits():
    a, b = textured_task(n_train=16, n_test=8, seed=1), textured_task(n_train=16, n_test=8, seed=1)
    assert [it.spec for it in a.train + a.test] == [it.spec for it in b.train + b.test]
    assert np.array_equal(a.frames("test", progress=False), b.frames("test", progress=False))
    other = textured_task(n_train=16, n_test=8, seed=2)
    assert [it.spec for it in other.test] != [it.spec for it in a.test]
    assert np.bincount(a.labels("train"), minlength=8).tolist() == [2] * 8
    assert sorted(a.labels("test") // 2) == [0, 0, 1, 1, 2, 2, 3, 3]  # twin pairs balanced over the 4 pairs
    assert {it.id for it in a.train}.isdisjoint(it.id for it in a.test)
    twins = textured_task(n_train=8, n_test=0, seed=1, twin_train=True)
    assert all(twins.train[k].twin == twins.train[k ^ 1].id for k in range(8))


def test_specs_have_jitter_distractors_and_every_sprite_kind():
    rng = np.random.default_rng(4)
    specs = [sample_textured_spec(rng, TEXTURED_MOTIONS[k % 8]) for k in range(80)]
    assert {s.sprite.kind for s in specs} == set(SPRITE_KINDS)
    assert {len(s.distractors) for s in specs} == {1, 2}
    assert any(d.drift != (0.0, 0.0) for s in specs for d in s.distractors)
    assert any(d.drift == (0.0, 0.0) for s in specs for d in s.distractors)
    for s in specs:
        steps = np.abs(np.diff(np.asarray(s.jitter), axis=0))
        assert np.abs(np.asarray(s.jitter)).max() <= JITTER_MAX and steps.max() <= 1
    assert any(len(set(s.jitter)) > 1 for s in specs)
    assert TexturedSpec.from_dict(json.loads(json.dumps(specs[0].to_dict()))) == specs[0]


def test_lighting_pair_changes_the_whole_frame_and_motions_move_the_sprite():
    rng = np.random.default_rng(5)
    brighter = render_textured(sample_textured_spec(rng, "brighter")).astype(float)
    assert brighter[-1].mean() > 1.5 * brighter[0].mean()
    assert (brighter[-1] > brighter[0]).mean() > 0.8  # nearly every pixel brightens
    spec = sample_textured_spec(rng, "left")
    clip = render_textured(spec).astype(float)
    assert spec.gain_from == spec.gain_to
    first, last = (np.abs(clip[k] - clip[0 if k else -1]).sum(-1) > 40 for k in (0, -1))
    xs = np.nonzero(first)[1]
    assert xs.size > 0 and np.ptp(xs) >= spec.travel * 0.8  # the sprite left its start and arrived far away


# --- the plain world ---------------------------------------------------------------------------------

# Digests of the plain world's random draws (specs, labels, captions, twins) and rendered frames for the
# seeds below. They are constants, not computed from the library: any change to the plain world's draws or
# pixels fails here (change WORLD_VERSION and these digests together, on purpose).
PLAIN_SPEC_DIGEST = "8480a4f1381f2195"
PLAIN_FRAME_DIGEST = "75565bdf2ab32a05"


def _plain_digests():
    specs, frames = hashlib.sha256(), hashlib.sha256()
    tasks = [synth.motion_task(n_train=6, n_test=4, seed=0),
             synth.motion_task(n_train=4, n_test=4, seed=1, twin_train=True),
             synth.appearance_task(n_train=4, n_test=2, seed=0), synth.captions_task(n_train=4, n_test=4, seed=0)]
    for task in tasks:
        rows = [[it.id, it.spec.to_dict(), it.label, it.captions, it.twin] for it in task.train + task.test]
        specs.update(json.dumps([task.classes, rows], sort_keys=True).encode())
        frames.update(task.frames("test", progress=False).tobytes())
    images, captions, ids = synth.synth_images(8, seed=0, storyboards=0.5)
    specs.update(json.dumps([captions, ids.tolist()]).encode())
    frames.update(images.tobytes())
    return specs.hexdigest()[:16], frames.hexdigest()[:16]


def test_plain_world_is_unchanged_and_never_uses_the_textured_code(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the plain style reached the textured world's code")
    for name in ("render_textured", "sample_textured_spec", "textured_task", "_sprite_layer",
                 "_textured_background", "_random_sprite", "_write_generic_label", "_textured_cli"):
        monkeypatch.setattr(synth, name, forbidden)
    assert synth.WORLD_VERSION == 2
    assert _plain_digests() == (PLAIN_SPEC_DIGEST, PLAIN_FRAME_DIGEST)
    assert cli_main(["motion", "--out", str(tmp_path / "m"), "--n-train", "2", "--n-test", "2"]) == 0
    assert {p.name for p in (tmp_path / "m").iterdir()} == {
        "videos", "labels.json", "something-something-v2-train.json", "something-something-v2-validation.json",
        "synth_meta.json"}
    assert "style" not in json.loads((tmp_path / "m" / "synth_meta.json").read_text())


def test_plain_cli_defaults_build_the_same_task(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(synth, "write_task", lambda task, out, **kw: built.append(task) or
                        {"train": len(task.train), "test": len(task.test)})
    assert cli_main(["motion", "--out", str(tmp_path / "m")]) == 0
    assert cli_main(["--style", "plain", "motion", "--out", str(tmp_path / "m")]) == 0
    expected = [it.spec for it in synth.motion_task(n_train=400, n_test=100, seed=0).test]
    for task in built:
        assert task.name == "motion" and (len(task.train), len(task.test)) == (400, 100)
        assert [it.spec for it in task.test] == expected
