"""The synthetic teaching world: determinism, exact time-reversed pairs, visibility at patch scale,
vocabulary, still images, and mp4 + annotation files in the real datasets' formats."""
import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from stanlib.teaching import synth
from stanlib.teaching.synth import (APPEARANCE_CLASSES, MOTIONS, PAIRS, SHAPES, ClipSpec, appearance_task,
                                caption_for, captions_task, cli_main, motion_task, partner, render_clip,
                                reverse_spec, sample_spec, synth_images, zero_shot_classes)
from stanlib.model.tokenizer import WordTokenizer

PATCH = 8  # the tiny CLIP's patch size


def _specs(task):
    return [(it.id, it.spec, it.label, tuple(it.captions), it.twin) for it in task.train + task.test]


def _patch_means(clip: np.ndarray) -> np.ndarray:
    """(T, H/8, W/8, 3): what one 8x8 patch "sees" on average."""
    t, h, w, c = clip.shape
    return clip.astype(np.float64).reshape(t, h // PATCH, PATCH, w // PATCH, PATCH, c).mean(axis=(2, 4))


# --- determinism and splits ---------------------------------------------------------------------

@pytest.mark.parametrize("make", [motion_task, appearance_task, captions_task])
def test_same_seed_same_items_and_frames(make):
    a, b = make(n_train=10, n_test=6, seed=3), make(n_train=10, n_test=6, seed=3)
    assert _specs(a) == _specs(b)
    assert np.array_equal(a.frames("test", progress=False), b.frames("test", progress=False))
    other = make(n_train=10, n_test=6, seed=4)
    assert [s for _, s, *_ in _specs(other)] != [s for _, s, *_ in _specs(a)]


@pytest.mark.parametrize("make", [motion_task, appearance_task, captions_task])
def test_train_and_test_are_disjoint(make):
    task = make(n_train=40, n_test=20, seed=0)
    assert {it.id for it in task.train}.isdisjoint({it.id for it in task.test})
    train_specs = {it.spec for it in task.train}
    assert not any(it.spec in train_specs for it in task.test)
    # the test split does not depend on how many training clips were drawn
    assert [it.spec for it in make(n_train=8, n_test=20, seed=0).test] == [it.spec for it in task.test]


def test_render_is_pure_uint8_and_in_frame():
    rng = np.random.default_rng(0)
    for motion in MOTIONS:
        spec = sample_spec(rng, "green", "triangle", motion)
        clip = render_clip(spec)
        assert clip.shape == (16, 64, 64, 3) and clip.dtype == np.uint8
        assert np.array_equal(clip, render_clip(spec))
        # the shape never touches the border (the placement keeps the whole motion in frame)
        border = np.concatenate([clip[:, 0], clip[:, -1], clip[:, :, 0], clip[:, :, -1]], axis=1)
        assert np.abs(border.astype(int) - np.array(spec.rgb)).sum(-1).min() > 60, motion


# --- the reversed-pair property ------------------------------------------------------------------

@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("shape", SHAPES)
def test_partner_class_is_exact_time_reversal(pair, shape):
    rng = np.random.default_rng(hash((pair, shape)) % 2**32)
    spec = sample_spec(rng, "purple", shape, pair[0])
    twin = reverse_spec(spec)
    assert twin.motion == pair[1] and partner(pair[1]) == pair[0]
    assert replace(twin, motion=spec.motion) == spec  # same appearance parameters
    a, b = render_clip(spec), render_clip(twin)
    assert np.array_equal(a[::-1], b)
    assert not np.array_equal(a, b)  # ...and it is not a palindrome


@pytest.mark.parametrize("motion", MOTIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_direction_is_visible_at_patch_scale(motion, shape):
    """Calibration lesson: rotation of a symmetric shape was invisible to 8x8 patches. Every clip
    (a rotating circle included) must differ from its reversal in patch averages, not just pixels."""
    rng = np.random.default_rng(7)
    for _ in range(3):
        p = _patch_means(render_clip(sample_spec(rng, "red", shape, motion)))
        assert np.abs(p - p[::-1]).mean() > 0.5, (motion, shape)


def test_translation_covers_several_patches():
    rng = np.random.default_rng(1)
    for motion in ("left", "right", "up", "down"):
        spec = sample_spec(rng, "white", "circle", motion)
        clip = render_clip(spec).astype(int)
        mask = np.abs(clip - np.array(spec.rgb)).sum(-1) < 40  # shape pixels
        (y0, x0), (y1, x1) = np.nonzero(mask[0]), np.nonzero(mask[-1])
        first = np.array([x0.mean(), y0.mean()])  # (x, y) centroid in the first frame
        last = np.array([x1.mean(), y1.mean()])
        assert np.linalg.norm(last - first) >= 3 * PATCH, motion
        expected = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[motion]
        assert np.sign(np.round(last - first)).tolist() == list(expected)


def test_rotation_direction_on_screen():
    """'clockwise' means clockwise as seen on screen (y points down): the hand's angle grows."""
    spec = ClipSpec("white", "circle", "clockwise", (235, 235, 235), (20, 20, 20), (0.0, 0.0),
                    cx=32, cy=32, radius=8, angle=0.0, sweep=90.0)
    clip = render_clip(spec)
    # the hand starts pointing up-right (-45 deg) and ends pointing down-right (+45 deg)
    up_right, down_right = (22, 42), (42, 42)  # (row, col) 14 px from the centre, on the hand
    assert clip[0][up_right].mean() > 150 and clip[0][down_right].mean() < 60
    assert clip[-1][down_right].mean() > 150 and clip[-1][up_right].mean() < 60


# --- task structure -------------------------------------------------------------------------------

def test_motion_task_classes_labels_and_twins():
    task = motion_task(n_train=40, n_test=20, seed=1)
    assert len(task.classes) == 10 and task.classes[0] == "Something moves left"
    assert np.bincount(task.labels("train"), minlength=10).tolist() == [4] * 10
    by_id = {it.id: it for it in task.test}
    for it in task.test:
        twin = by_id[it.twin]
        assert twin.twin == it.id and twin.label == it.label ^ 1
        assert np.array_equal(twin.frames(), it.frames()[::-1])
    assert np.bincount(task.labels("test") // 2, minlength=5).tolist() == [4] * 5  # pairs balanced
    twins = motion_task(n_train=8, n_test=4, seed=1, twin_train=True)
    assert all(it.twin is not None for it in twins.train)
    with pytest.raises(ValueError, match="even"):
        motion_task(n_train=4, n_test=5)


def test_appearance_task_is_balanced_colour_x_shape():
    task = appearance_task(n_train=48, n_test=24, seed=0)
    assert len(task.classes) == 24
    assert np.bincount(task.labels("train"), minlength=24).tolist() == [2] * 24
    for it in task.train:
        assert APPEARANCE_CLASSES[it.label] == f"a {it.spec.colour} {it.spec.shape}"
    assert len({it.spec.motion for it in task.train}) > 5  # motion is random


def test_captions_test_set_holds_every_reversed_twin():
    task = captions_task(n_train=10, n_test=40, seed=2)
    caps = [it.caption for it in task.test]
    assert len(set(caps)) == len(caps)  # no two test videos share a caption
    by_id = {it.id: it for it in task.test}
    for it in task.test:
        s = it.spec
        twin_caption = caption_for(s.colour, s.shape, partner(s.motion))
        assert twin_caption in caps and by_id[it.twin].caption == twin_caption
        assert np.array_equal(by_id[it.twin].frames(), it.frames()[::-1])
    assert all(len(it.captions) == 3 and len(set(it.captions)) == 3 for it in task.train)
    with pytest.raises(ValueError, match="at most 240"):
        captions_task(n_train=2, n_test=242)


# --- vocabulary -----------------------------------------------------------------------------------

def test_every_text_is_in_the_tiny_vocabulary():
    tok = WordTokenizer(strict=True)  # raises on any word outside TINY_VOCAB
    texts = [caption_for(c, s, m, v, subj) for c, s in synth.APPEARANCE_PAIRS for m in MOTIONS
             for v in range(3) for subj in range(len(synth.CAPTION_SUBJECTS))]
    texts += list(synth.MOTION_CLASSES) + list(APPEARANCE_CLASSES) + zero_shot_classes()[1]
    texts += synth_images(300, seed=0, storyboards=0.5)[1]
    texts += [it.caption for it in captions_task(20, 20, seed=0).test]
    for text in texts:
        ids = tok.encode(text)
        assert len(ids) + 2 <= 16, text  # fits the tiny text context with <sot> and <eot>


# --- still images ---------------------------------------------------------------------------------

def test_synth_images_match_their_captions():
    images, captions, ids = synth_images(96, seed=5)
    assert images.shape == (96, 64, 64, 3) and images.dtype == np.uint8
    assert np.bincount(ids, minlength=24).tolist() == [4] * 24
    names, prompts = zero_shot_classes()
    assert len(names) == 24 and prompts[0] == "a photo of a red circle"
    again = synth_images(96, seed=5)
    assert np.array_equal(again[0], images) and again[1] == captions
    cells = {phrase: (r, c) for r, row in enumerate(synth.POSITION_PHRASES) for c, phrase in enumerate(row)}
    checked = 0
    for img, cap, k in zip(images, captions, ids):
        assert names[k] in cap
        phrase = next((p for p in cells if cap.endswith(p)), None)
        if phrase is None:
            continue
        # the shape's pixels are far from the (majority) background colour
        mask = np.abs(img.astype(int) - np.median(img.reshape(-1, 3), axis=0)).sum(-1) > 90
        ys, xs = np.nonzero(mask)
        assert (int(ys.mean() // (64 / 3)), int(xs.mean() // (64 / 3))) == cells[phrase], cap
        checked += 1
    assert checked > 50


def test_storyboards_show_before_and_after_and_name_the_motion():
    plain = synth_images(48, seed=7)
    images, captions, ids = synth_images(48, seed=7, storyboards=0.25)
    assert np.array_equal(ids, plain[2])  # the same balanced appearance classes
    zero = synth_images(48, seed=7, storyboards=0.0)
    assert np.array_equal(zero[0], plain[0]) and zero[1] == plain[1]  # no storyboards = the plain images
    names, _ = zero_shot_classes()
    phrases = {p: m for m in MOTIONS for p in synth.MOTION_PHRASES[m]}
    for img, cap, k in zip(images[:12], captions[:12], ids[:12]):
        assert any(cap.endswith(" " + p) for p in phrases), cap  # every storyboard names a motion
        assert cap.startswith("something") or names[k] in cap, cap
        assert (img[16:48, 31:33] == 160).all()                   # the panel divider
    for img, cap in zip(images[12:], captions[12:]):
        assert not any(cap.endswith(" " + p) for p in phrases), cap
    spec = sample_spec(np.random.default_rng(0), "red", "circle", "up", num_frames=2)
    board = synth.storyboard(spec)
    before, after = board[16:48, :31], board[16:48, 33:]

    def centre_row(panel):
        ys, _ = np.nonzero(np.abs(panel.astype(int) - panel[0, 0].astype(int)).sum(-1) > 90)
        return ys.mean()

    assert centre_row(after) < centre_row(before) - 3  # "moves up": higher in the after panel
    with pytest.raises(ValueError, match="motion"):
        synth.storyboard(replace(spec, motion=None))
    with pytest.raises(ValueError, match="fraction"):
        synth_images(4, storyboards=1.5)


# --- files on disk ----------------------------------------------------------------------------------

def _decode(path):
    decord = pytest.importorskip("decord")
    vr = decord.VideoReader(str(path))
    return len(vr), vr.get_batch(list(range(len(vr)))).asnumpy()


def test_cli_writes_ssv2_format_readable_mp4(tmp_path):
    out = tmp_path / "motion"
    assert cli_main(["motion", "--out", str(out), "--seed", "0", "--n-train", "4", "--n-test", "2"]) == 0
    labels = json.loads((out / "labels.json").read_text())
    assert labels["Something moves left"] == "0" and len(labels) == 10
    train = json.loads((out / "something-something-v2-train.json").read_text())
    val = json.loads((out / "something-something-v2-validation.json").read_text())
    assert len(train) == 4 and len(val) == 2
    task = motion_task(n_train=4, n_test=2, seed=0)
    for entry, item in zip(train + val, task.train + task.test):
        assert set(entry) == {"id", "label", "template", "placeholders"}
        assert entry["id"] == item.id
        assert int(labels[entry["template"].replace("[", "").replace("]", "")]) == item.label
        assert entry["label"] == entry["template"].replace("[Something]", entry["placeholders"][0])
        n, frames = _decode(out / "videos" / f"{entry['id']}.mp4")
        assert n == 16 and frames.shape == (16, 64, 64, 3)
        assert np.abs(frames.astype(int) - item.frames()).mean() < 3  # colours survive h264
        # the shape's own colour survives too (median: edge pixels share chroma with the background)
        shape_px = np.abs(item.frames().astype(int) - np.array(item.spec.rgb)).sum(-1) < 10
        if shape_px.sum() > 50:
            assert np.abs(np.median(frames[shape_px], axis=0) - np.array(item.spec.rgb)).max() <= 8
    meta = synth.load_meta(out)
    assert [s for _, _, s in meta] == [it.spec for it in task.train + task.test]


def test_cli_writes_msrvtt_and_path_label_formats(tmp_path):
    assert cli_main(["all", "--out", str(tmp_path), "--n-train", "3", "--n-test", "2", "--frames", "12"]) == 0
    cap = tmp_path / "captions"
    data = json.loads((cap / "MSRVTT_data.json").read_text())
    assert len(data["videos"]) == 5 and len(data["sentences"]) == 3 * 3 + 2
    assert {"video_id", "caption"} <= set(data["sentences"][0])
    with (cap / "MSRVTT_train.9k.csv").open() as f:
        train_ids = [row["video_id"] for row in csv.DictReader(f)]
    with (cap / "MSRVTT_JSFUSION_test.csv").open() as f:
        test_rows = list(csv.DictReader(f))
    assert train_ids == ["video0", "video1", "video2"]
    assert list(test_rows[0]) == ["key", "vid_key", "video_id", "sentence"] and len(test_rows) == 2
    for row in test_rows:
        n, _ = _decode(cap / "videos" / f"{row['video_id']}.mp4")
        assert n == 12
    lines = (tmp_path / "appearance" / "train_list_videos.txt").read_text().splitlines()
    path, label = lines[0].split()
    assert (tmp_path / "appearance" / path).is_file() and 0 <= int(label) < 24
    names = (tmp_path / "appearance" / "label_map_k400.txt").read_text().splitlines()
    assert names == list(APPEARANCE_CLASSES)


def test_cli_bad_input(tmp_path, capsys):
    assert cli_main(["motion", "--out", str(tmp_path / "a"), "--n-train", "2", "--n-test", "3"]) == 2
    assert "even" in capsys.readouterr().err
    out = tmp_path / "b"
    assert cli_main(["motion", "--out", str(out), "--n-train", "2", "--n-test", "2"]) == 0
    assert cli_main(["motion", "--out", str(out), "--n-train", "1", "--n-test", "2"]) == 2  # not empty
    assert "--overwrite" in capsys.readouterr().err
    assert cli_main(["motion", "--out", str(out), "--n-train", "1", "--n-test", "2", "--overwrite"]) == 0
    assert len(list((out / "videos").iterdir())) == 3  # stale clips from the first run are gone
    (out / "mine.txt").write_text("user data")
    assert cli_main(["motion", "--out", str(out), "--n-train", "1", "--n-test", "2", "--overwrite"]) == 2
    assert (out / "mine.txt").exists()
    with pytest.raises(SystemExit):
        cli_main(["motions", "--out", str(out)])


@pytest.mark.parametrize("motion", synth.MOTIONS)
def test_motion_swaps_keep_subject_and_variant(motion):
    for variant in range(len(synth.MOTION_PHRASES[motion])):
        for subject in range(len(synth.CAPTION_SUBJECTS)):
            caption = synth.caption_for("red", "circle", motion, variant, subject)
            swaps = synth.motion_swaps(caption, motion)
            assert swaps == [synth.caption_for("red", "circle", m, variant, subject) for m in synth.MOTIONS]
    with pytest.raises(ValueError, match="does not end with"):
        synth.motion_swaps("a red circle sits still", motion)
