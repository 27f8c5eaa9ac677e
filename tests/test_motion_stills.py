"""Motion stills: single images whose cue names a motion, captioned with the video tasks' phrases, and
the tiny-CLIP pretraining option that mixes them in (off by default, leaving the default run unchanged)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

import stanlib
from stanlib.teaching import tiny
from stanlib.model.clip import BUNDLED_TINY
from stanlib.teaching import synth
from stanlib.teaching.synth import MOTION_PHRASES, MOTIONS, PAIRS, partner, render_motion_still, synth_motion_stills
from stanlib.model.tokenizer import WordTokenizer, check_words

needs_shipped = pytest.mark.skipif(not BUNDLED_TINY.is_file(), reason="shipped tiny CLIP not built yet")


def _spec(motion, textured=False, seed=0):
    rng = np.random.default_rng(seed)
    return synth.sample_motion_still_spec(rng, "red", "square", motion, textured=textured)


def _foreground(img, spec):
    """Pixels that differ clearly from a plain still's background (its colour at the frame centre +- gradient)."""
    return np.abs(img.astype(float) - np.asarray(spec.background, float)).sum(-1) > 60


@pytest.mark.parametrize("textured", [False, True])
def test_stills_are_deterministic_per_seed_and_balanced(textured):
    images, captions, motions = synth_motion_stills(20, seed=3, textured=textured)
    assert images.shape == (20, 64, 64, 3) and images.dtype == np.uint8
    assert len(captions) == len(motions) == 20 and sorted(motions) == sorted(MOTIONS * 2)
    again = synth_motion_stills(20, seed=3, textured=textured)
    assert np.array_equal(again[0], images) and again[1] == captions and again[2] == motions
    other = synth_motion_stills(20, seed=4, textured=textured)
    assert not np.array_equal(other[0], images)
    small = synth_motion_stills(3, seed=3, size=32, textured=textured)[0]
    assert small.shape == (3, 32, 32, 3)
    with pytest.raises(ValueError, match="n >= 1"):
        synth_motion_stills(0)


def test_plain_and_textured_stills_are_different_streams():
    plain, textured = synth_motion_stills(10, seed=0)[0], synth_motion_stills(10, seed=0, textured=True)[0]
    assert not np.array_equal(plain, textured)
    # a textured scene is noisy and colourful: far more distinct colours than a plain dark gradient
    assert len(np.unique(textured[0].reshape(-1, 3), axis=0)) > 3 * len(np.unique(plain[0].reshape(-1, 3), axis=0))


def test_captions_are_video_phrases_in_the_tiny_vocabulary():
    tok = WordTokenizer(strict=True)
    subjects = {s.format(c=c, s=sh) for s in synth.MOTION_STILL_SUBJECTS for c, sh in synth.APPEARANCE_PAIRS}
    for textured in (False, True):
        for twins in (False, True):
            _, captions, motions = synth_motion_stills(60, seed=1, textured=textured, twins=twins)
            assert check_words(captions, "stan-tiny") == []
            for caption, motion in zip(captions, motions):
                assert any(caption.endswith(" " + p) for p in MOTION_PHRASES[motion]), caption
                swaps = synth.motion_swaps(caption, motion)   # the video captions' hard negatives apply
                assert swaps[MOTIONS.index(motion)] == caption and len(set(swaps)) == len(MOTIONS)
                assert len(tok.encode(caption)) + 2 <= 16, caption
                assert any(caption == f"{s} {p}" for s in subjects for p in MOTION_PHRASES[motion]), caption


def test_twins_are_reversed_pairs_of_one_spec():
    images, captions, motions = synth_motion_stills(21, seed=2, twins=True)
    for k in range(0, 20, 2):
        assert motions[k + 1] == partner(motions[k])
        assert synth.motion_swaps(captions[k], motions[k])[MOTIONS.index(motions[k + 1])] == captions[k + 1]
        assert not np.array_equal(images[k], images[k + 1])
    assert len(motions) == 21 and motions[20] in MOTIONS


@pytest.mark.parametrize("textured", [False, True])
@pytest.mark.parametrize("pair", PAIRS)
def test_reversed_partner_has_a_different_cue(pair, textured):
    first, second = pair
    spec = _spec(first, textured)
    a, b = render_motion_still(spec), render_motion_still(replace(spec, motion=second))
    assert not np.array_equal(a, b)
    assert np.array_equal(a, render_motion_still(spec))  # pure


def test_cues_point_the_right_way():
    # translation: the smear lies behind the shape, towards where it came from
    for motion, axis, sign in (("left", 1, 1), ("right", 1, -1), ("up", 0, 1), ("down", 0, -1)):
        spec = _spec(motion)
        ys, xs = np.nonzero(_foreground(render_motion_still(spec), spec))
        centre = (spec.cy, spec.cx)[axis]
        assert sign * ((ys, xs)[axis].mean() - centre) > 2.0, motion
    # grows: outlines inside the shape; shrinks: larger outlines around it
    spec = _spec("grow")
    grow = _foreground(render_motion_still(spec), spec).sum()
    shrink = _foreground(render_motion_still(replace(spec, motion="shrink")), spec).sum()
    assert shrink > 1.5 * grow
    # fades: the left copy is faint when fading in, solid when fading out
    spec = _spec("fade_in")
    left = slice(0, int(spec.cx) - 4)
    fade_in, fade_out = (render_motion_still(replace(spec, motion=m)).astype(float) for m in ("fade_in", "fade_out"))
    assert fade_out[:, left].sum() > fade_in[:, left].sum() and fade_in[:, int(spec.cx) + 4:].sum() > \
        fade_out[:, int(spec.cx) + 4:].sum()
    # rotation: the arrow and ghost hands mirror, so the pictures differ on both sides of the hand
    spec = _spec("clockwise")
    cw, ccw = (render_motion_still(replace(spec, motion=m)) for m in ("clockwise", "counterclockwise"))
    assert (np.abs(cw.astype(int) - ccw.astype(int)).sum(-1) > 30).sum() > 40


def test_default_batches_are_the_shape_images_alone(monkeypatch):
    x, captions = tiny.train_batch(seed=2, step=1, batch_size=8)
    images, expected, _ = synth.synth_images(8, seed=2 * tiny.TRAIN_SEED_STRIDE + 1)
    assert torch.equal(x, tiny.to_model_input(images)) and captions == expected
    mixed, mixed_captions = tiny.train_batch(seed=2, step=1, batch_size=8, motion_stills=0.25, textured=0.25)
    shapes, shape_captions, _ = synth.synth_images(4, seed=2 * tiny.TRAIN_SEED_STRIDE + 1)
    assert mixed.shape == x.shape and torch.equal(mixed[:4], tiny.to_model_input(shapes))
    assert mixed_captions[:4] == shape_captions  # the shapes first, then 2 plain and 2 textured stills
    assert all(any(c.endswith(" " + p) for m in MOTIONS for p in MOTION_PHRASES[m]) for c in mixed_captions[4:])
    with pytest.raises(ValueError, match="at most 1"):
        tiny.train_batch(seed=0, step=0, batch_size=8, motion_stills=0.6, textured=0.5)
    with pytest.raises(ValueError, match="fraction"):
        tiny.train_batch(seed=0, step=0, batch_size=8, motion_stills=-0.1)


def test_default_pretraining_never_touches_the_motion_stills(monkeypatch):
    torch.set_num_threads(1)  # identical numbers need the same thread count
    kwargs = dict(seed=1, steps=2, batch_size=8, eval_every=100, n_eval=24, progress=False, n_motion_eval=0)
    reference, _ = tiny.pretrain(**kwargs)

    def forbidden(*args, **kw):
        raise AssertionError("the default pretraining called synth_motion_stills")

    monkeypatch.setattr(tiny, "synth_motion_stills", forbidden)
    clip, record = tiny.pretrain(**kwargs, motion_stills=0.0, textured=0.0)
    for (name, a), b in zip(reference.state_dict().items(), clip.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs from the default run"
    assert record["motion_stills"] == 0.0 and record["textured"] == 0.0 and record["motion_phrases"] is None
    monkeypatch.undo()
    mixed, record = tiny.pretrain(**kwargs, motion_stills=0.25, textured=0.125)
    assert record["motion_stills"] == 0.25 and record["textured"] == 0.125
    assert not torch.equal(mixed.visual.proj, reference.visual.proj)  # the stills are trained on


def test_cli_rejects_fractions_over_one(capsys):
    assert tiny.cli_main(["--motion-stills", "0.7", "--textured", "0.5", "--steps", "1"]) == 2
    assert "at most 1" in capsys.readouterr().err


@needs_shipped
def test_bundled_tiny_clip_does_not_know_motion_phrases():
    clip = stanlib.load_tiny()
    for cues, textured in ((True, False), (True, True), (False, False)):
        out = tiny.motion_phrase_retrieval(clip, n=60, cues=cues, textured=textured)
        assert set(out) == {"top1", "reversed", "pair", "n"} and out["n"] == 60
        assert all(0.0 <= out[k] <= 100.0 for k in ("top1", "reversed", "pair")), out
        # never taught a motion word: near chance (10% top-1, 50% against the reversed phrase)
        assert out["top1"] < 35.0 and 25.0 < out["reversed"] < 75.0, (cues, textured, out)
