"""stan-tiny-v2: the larger vocabulary, lighting stills, and weights that say which tiny CLIP they are."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import stanlib
from stanlib.model.clip import create_clip, tiny_clip_name
from stanlib.model.tokenizer import TINY_VOCAB, TINY_VOCAB_V2, WordTokenizer, get_tokenizer
from stanlib.teaching import experiments, synth, tiny


def test_v2_vocabulary_keeps_every_v1_id_and_knows_the_lighting_words():
    assert TINY_VOCAB_V2[: len(TINY_VOCAB)] == TINY_VOCAB
    assert len(set(TINY_VOCAB_V2)) == len(TINY_VOCAB_V2)
    v1, v2 = get_tokenizer("stan-tiny"), get_tokenizer("stan-tiny-v2")
    text = ["a red circle moves left", "something rotates clockwise"]
    assert torch.equal(v1(text), v2(text))  # a v1 sentence tokenises identically
    lighting = ["the scene gets brighter", "it is getting darker", "the video fades in"]
    assert v2.unknown(lighting) == []
    assert v1.unknown(lighting) == ["scene", "gets", "brighter", "it", "getting", "darker"]
    assert "stan-tiny-v2" in repr(v2) and "TINY_VOCAB_V2" in repr(v2)
    with pytest.raises(ValueError, match="stan-tiny-v3"):
        get_tokenizer("stan-tiny-v3")


def test_v2_vocabulary_covers_every_caption_and_class_of_the_generators():
    tok = WordTokenizer(TINY_VOCAB_V2, strict=True)  # raises on an unknown word
    texts = list(synth.MOTION_CLASSES) + list(synth.TEXTURED_CLASSES) + synth.synth_lighting_stills(20)[1]
    texts += synth.synth_motion_stills(20, textured=True)[1] + synth.synth_textured_images(20)[1]
    texts += [synth.lighting_caption(m, v, s) for m in synth.LIGHTING_PHRASES for v in range(3)
              for s in range(len(synth.LIGHTING_SUBJECTS))]
    for text in texts:
        tok.encode(text)


def test_lighting_stills_show_the_light_rising_or_falling_left_to_right():
    images, captions, motions = synth.synth_lighting_stills(12, seed=3)
    again = synth.synth_lighting_stills(12, seed=3)
    assert np.array_equal(images, again[0]) and captions == again[1]
    assert images.shape == (12, 64, 64, 3) and images.dtype == np.uint8
    thirds = images.astype(float).reshape(12, 64, 64, 3)
    left, right = thirds[:, :, 2:19].mean(axis=(1, 2, 3)), thirds[:, :, 45:62].mean(axis=(1, 2, 3))
    for k, m in enumerate(motions):
        assert (right[k] > 1.3 * left[k]) if m == "brighter" else (left[k] > 1.3 * right[k]), (k, m)
        assert ("brighter" in captions[k] or "fades in" in captions[k]) == (m == "brighter")
    for k in range(0, 12, 2):  # twins: the same scene, reversed light, the same subject
        assert {motions[k], motions[k + 1]} == {"brighter", "darker"}
        assert np.array_equal(images[k][:, 32], images[k + 1][:, 32])  # the middle panel is lit alike
        assert captions[k].split()[:2] == captions[k + 1].split()[:2]
    assert set(synth.synth_lighting_stills(200, seed=0)[2]) == {"brighter", "darker"}
    with pytest.raises(ValueError, match="n >= 1"):
        synth.synth_lighting_stills(0)


def test_train_batch_puts_lighting_stills_last_and_checks_the_fractions():
    images, captions = tiny.train_batch(0, 5, 32, motion_stills=0.25, lighting=0.125)
    assert images.shape == (32, 3, 64, 64) and len(captions) == 32
    expected = synth.synth_lighting_stills(4, seed=5)[1]
    assert captions[-4:] == expected
    assert not any("gets" in c or "getting" in c for c in captions[:-4])
    with pytest.raises(ValueError, match="lighting"):
        tiny.train_batch(0, 0, 32, motion_stills=0.5, textured_images=0.4, lighting=0.2)
    with pytest.raises(ValueError, match="stan-tiny-v2"):
        tiny.pretrain(steps=1, lighting=0.1, clip_name="stan-tiny")


def test_v2_weights_say_which_clip_they_are(tmp_path):
    torch.manual_seed(0)
    clip = create_clip("stan-tiny-v2")
    path = tiny.save_tiny(clip, {"clip": "stan-tiny-v2", "seed": 0}, tmp_path)
    assert path.name == "stan-tiny-v2.safetensors" and tiny_clip_name(path) == "stan-tiny-v2"
    assert tiny.weights_file(tmp_path) == path and tiny.weights_file(None) == stanlib.assets.TINY_CLIP
    loaded = tiny.load_tiny(tmp_path)  # the folder: finds the file and builds the right config
    assert all(torch.equal(a, b) for a, b in zip(clip.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(ValueError, match="holds a stan-tiny-v2 CLIP.*build it as 'stan-tiny-v2'"):
        create_clip("stan-tiny", pretrained=str(path))
    model = stanlib.create_model("stan-tiny-v2", pretrained=str(path), temporal="attn", depth=2)
    assert model.tokenizer.unknown(["the scene gets darker"]) == []
    # the experiments build their rows on the recipe's CLIP; its weights' hash keys the results
    recipe = experiments.Recipe(clip="stan-tiny-v2", pretrained=str(path))
    assert experiments.build_model("stan-self", recipe).tokenizer.unknown(["it gets brighter"]) == []
    assert recipe.key("motion") != experiments.Recipe(clip="stan-tiny", pretrained=str(path)).key("motion")
    assert tiny_clip_name(stanlib.assets.TINY_CLIP) == "stan-tiny"
    # `pretrain-tiny --evaluate` draws the rotation cue the record says the model was trained on
    assert tiny.training_record(path) == {"clip": "stan-tiny-v2", "seed": 0}
    assert tiny.training_record(stanlib.assets.TINY_CLIP_V2)["arrow_on_top"] is True
    assert tiny.training_record(tmp_path / "elsewhere" / "x.safetensors") == {}


def test_pretrain_tiny_cli_refuses_lighting_without_the_v2_words(capsys):
    assert tiny.cli_main(["--lighting", "0.1", "--steps", "1"]) == 2
    assert "--clip stan-tiny-v2" in capsys.readouterr().err


def test_rotation_arrow_on_top_points_the_way_of_the_rotation():
    rng = np.random.default_rng(0)
    spec = synth.sample_motion_still_spec(rng, "red", "circle", "clockwise", arrow_on_top=True)
    spec = replace(spec, cx=32.0, cy=40.0, background=(0, 0, 0), gradient=(0.0, 0.0))
    for motion, heavier in (("clockwise", "right"), ("counterclockwise", "left")):
        image = synth.render_motion_still(replace(spec, motion=motion)).astype(float)
        grey = (np.abs(image - synth.CUE_GREY).max(-1) < 30)[: int(spec.cy - spec.radius)]  # above the shape
        left, right = grey[:, :32].sum(), grey[:, 32:].sum()
        assert grey.sum() > 20 and (right > 1.2 * left if heavier == "right" else left > 1.2 * right), motion
    # the option changes where the arrow is drawn, nothing else: the same draws, other motions identical
    plain = synth.synth_motion_stills(20, seed=1, twins=True)
    top = synth.synth_motion_stills(20, seed=1, twins=True, arrow_on_top=True)
    assert plain[1] == top[1]
    for a, b, m in zip(plain[0], top[0], plain[2]):
        assert np.array_equal(a, b) == ("clockwise" not in m), m


# The bundled stan-tiny-v2 (stanlib/assets/tiny_clip_v2): results of the paper's method are keyed on these bytes.
TINY_CLIP_V2_SHA1 = "add3dccd5f8e3adf1de608d5781df4d79f9e6cfb"


def test_bundled_v2_is_inside_the_package_and_unchanged():
    import hashlib

    file = stanlib.assets.TINY_CLIP_V2
    assert file.is_file() and (stanlib.assets.ROOT / "configs" / "stan-tiny-v2.json").is_file()
    assert tiny_clip_name(file) == "stan-tiny-v2"
    assert hashlib.sha1(file.read_bytes()).hexdigest() == TINY_CLIP_V2_SHA1, (
        "the bundled stan-tiny-v2 changed: results of the paper's method (docs/results/paper-method) are stale")
    record = json.loads((file.parent / "config.json").read_text())
    assert record["clip"] == "stan-tiny-v2" and record["arrow_on_top"] and record["lighting"] > 0
    assert record["zero_shot_top1"] >= 95.0


def test_bundled_v2_names_shapes_and_separates_every_reversal_pair():
    clip = create_clip("stan-tiny-v2", pretrained="bundled").eval()
    images, labels = tiny.heldout_images(240)
    assert tiny.zero_shot_accuracy(clip, images, labels) >= 90.0  # 24 classes, chance 4.2%
    words = tiny.motion_zero_shot(clip, n=20)
    # what the class-name head needs: every pair's two names embed apart (the shipped v1: 0.97 for up/down)
    assert max(words["partner_cosine_per_pair"].values()) < 0.9, words
    assert words["other_pair_cosine_max"] < 0.95, words
    assert tiny.lighting_phrases(clip, n=40)["pair"] >= 80.0
