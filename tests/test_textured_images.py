"""Colour x shape stills in the textured world's scenes: the pretraining images that teach the tiny CLIP to
see shapes where the textured world shows them (off by default, leaving the default run unchanged)."""
import numpy as np
import pytest
import torch

from stanlib.model.clip import BUNDLED_TINY
from stanlib.model.tokenizer import check_words
from stanlib.teaching import synth, tiny
from stanlib.teaching.synth import APPEARANCE_PAIRS, COLOURS, synth_textured_images


def test_textured_images_are_deterministic_balanced_and_captioned():
    images, captions, ids = synth_textured_images(48, seed=3)
    again, captions2, ids2 = synth_textured_images(48, seed=3)
    assert images.shape == (48, 64, 64, 3) and images.dtype == np.uint8
    assert np.array_equal(images, again) and captions == captions2 and np.array_equal(ids, ids2)
    assert not np.array_equal(images, synth_textured_images(48, seed=4)[0])
    assert np.bincount(ids, minlength=len(APPEARANCE_PAIRS)).tolist() == [2] * len(APPEARANCE_PAIRS)
    for caption, k in zip(captions, ids):
        colour, shape = APPEARANCE_PAIRS[k]
        assert f"{colour} {shape}" in caption, caption
    assert check_words(captions, "stan-tiny") == []  # every word is in the tiny CLIP's vocabulary


def test_the_named_shape_is_the_only_shape_and_its_colour_is_in_the_picture(monkeypatch):
    seen = []
    real = synth.render_textured

    def spy(spec):  # record the scenes the generator draws
        seen.append(spec)
        return real(spec)

    monkeypatch.setattr(synth, "render_textured", spy)
    images, _, ids = synth_textured_images(24, seed=0)
    assert len(seen) == 24
    for img, k, spec in zip(images, ids, seen):
        colour, shape = APPEARANCE_PAIRS[k]
        assert (spec.sprite.kind, spec.sprite.detail) == ("shape", shape) and spec.gain_from == spec.gain_to
        assert np.abs(np.asarray(spec.sprite.rgb) - np.asarray(COLOURS[colour])).max() <= 40  # the named colour
        assert all(d.kind in ("glyph", "blob") for d in spec.distractors), [d.kind for d in spec.distractors]
        lit = np.asarray(spec.sprite.rgb, float) * spec.gain_from  # the shape's colour under the scene's light
        assert (np.abs(img.astype(float) - lit).sum(-1) < 45).sum() >= 20, (colour, shape)  # drawn, 7-10 px


def test_textured_images_enter_the_batch_after_the_plain_shapes():
    x, captions = tiny.train_batch(seed=2, step=1, batch_size=8, textured_images=0.25)
    shapes, shape_captions, _ = synth.synth_images(6, seed=2 * tiny.TRAIN_SEED_STRIDE + 1)
    scenes, scene_captions, _ = synth_textured_images(2, seed=2 * tiny.TRAIN_SEED_STRIDE + 1)
    assert torch.equal(x[:6], tiny.to_model_input(shapes)) and torch.equal(x[6:], tiny.to_model_input(scenes))
    assert captions == shape_captions + scene_captions
    with pytest.raises(ValueError, match="at most 1"):
        tiny.train_batch(seed=0, step=0, batch_size=8, motion_stills=0.5, textured=0.25, textured_images=0.5)


def test_pretraining_with_textured_images_records_their_curve(monkeypatch):
    torch.set_num_threads(1)
    kwargs = dict(seed=1, steps=2, batch_size=8, eval_every=1, n_eval=24, progress=False, n_motion_eval=0)
    small = synth_textured_images(24, seed=tiny.HELDOUT_SEED)
    monkeypatch.setattr(tiny, "heldout_textured_images", lambda n=480, size=64: (tiny.to_model_input(small[0]), small[2]))
    reference, plain = tiny.pretrain(**kwargs)
    assert plain["textured_images"] == 0.0 and plain["curve_textured"] == []
    clip, record = tiny.pretrain(**kwargs, textured_images=0.5)
    assert record["textured_images"] == 0.5 and [s for s, _ in record["curve_textured"]] == [0, 1, 2]
    assert 0.0 <= record["zero_shot_textured"] <= 100.0
    assert not torch.equal(clip.visual.proj, reference.visual.proj)


@pytest.mark.skipif(not BUNDLED_TINY.is_file(), reason="shipped tiny CLIP not built yet")
def test_the_shipped_tiny_clip_does_not_see_shapes_in_textured_scenes():
    """What the textured images are for: the shipped CLIP names plain shapes (99.6%) but not these."""
    clip = tiny.load_tiny()
    images, labels = tiny.heldout_textured_images(96)
    assert tiny.zero_shot_accuracy(clip, images, labels) < 50.0
