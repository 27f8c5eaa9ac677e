"""The teaching zoo: every model is there, loads by name and by path, and packing loses nothing."""
import json

import pytest
import torch

import stanlib
from stanlib.weights import zoo
from stanlib.teaching.experiments import RESULTS_DIR


def test_every_zoo_model_is_shipped_with_its_record():
    expected = sorted([f"{task}/{row}" for task, rows in zoo.ZOO_MODELS.items() for row in rows]
                      + list(zoo.PAPER_MODELS))
    assert zoo.available() == expected
    for name in expected:
        info = zoo.info(name)
        task, row = zoo.PAPER_MODELS[name][:2] if name in zoo.PAPER_MODELS else name.split("/")
        assert (info["task"], info["row"], info["seed"]) == (task, row, 0)
        for field, value in (zoo.PAPER_MODELS[name][2] if name in zoo.PAPER_MODELS else {}).items():
            assert info["recipe"][field] == value, (name, field)
        assert info["recipe"]["steps"] > 0 and info["held_out"] and info["classes"]
        assert (RESULTS_DIR / "results" / info["result_file"]).is_file(), f"{name}: its run's result file is missing"


def test_zoo_command_trains_each_model_with_the_recipe_of_its_shipped_run():
    """`stanlib experiments zoo` rebuilds from the cache: the recipe it trains each model with (FIRST_CLIP for the
    first tiny CLIP's models, the default recipe with the named changes for PAPER_MODELS) has the shipped run's key."""
    from dataclasses import replace

    from stanlib.teaching.experiments import FIRST_CLIP, task_recipe

    recipes = {f"{t}/{r}": (t, task_recipe(t, FIRST_CLIP)) for t, rows in zoo.ZOO_MODELS.items() for r in rows}
    recipes |= {name: (t, replace(task_recipe(t), **changes)) for name, (t, _, changes) in zoo.PAPER_MODELS.items()}
    for name, (task, recipe) in recipes.items():
        assert zoo.info(name)["result_file"].endswith(f"__{recipe.key(task)}.json"), name
        assert zoo.info(name)["recipe"].get("clip", "stan-tiny") == recipe.clip, name


def test_zoo_name_path_and_prefix_load_the_same_model():
    by_name = zoo.load("motion/stan-self")
    by_prefix = stanlib.from_pretrained("zoo:motion/stan-self")
    by_path = stanlib.from_pretrained(zoo.ZOO_DIR / "motion" / "stan-self")
    x = torch.randn(2, by_name.config.num_frames, 3, by_name.image_size, by_name.image_size)
    with torch.no_grad():
        ref = by_name.encode_video(x)
        assert torch.equal(ref, by_prefix.encode_video(x))
        assert torch.equal(ref, by_path.encode_video(x))
    assert stanlib.assets.TINY_STAN == zoo.ZOO_DIR / "motion" / "stan-self"


def test_pack_drops_only_tensors_equal_to_the_tiny_clip_and_reloads_exactly(tmp_path):
    model = stanlib.create_model("stan-tiny", pretrained="bundled", depth=2, num_frames=4)
    for name, p in model.clip.named_parameters():  # a trained vision tower, a frozen text tower
        if name.startswith("visual.transformer.resblocks.0"):
            p.data.add_(0.01)
    model.config.extra = {"task": "motion", "row": "stan-self", "seed": 0}
    model.save_pretrained(tmp_path / "full", dtype=torch.float16)
    stats = zoo.pack(tmp_path / "full", tmp_path / "zoo" / "motion" / "stan-self")
    assert stats["from_base"] > 0 and stats["stored"] > 0
    config = json.loads((tmp_path / "zoo" / "motion" / "stan-self" / "config.json").read_text())
    omitted = config["extra"]["zoo"]["from_base"]
    assert not any(k.startswith("clip.visual.transformer.resblocks.0") for k in omitted)
    assert any(k.startswith("clip.transformer.") for k in omitted), "the unchanged text tower should not be stored"
    packed = zoo.load("motion/stan-self", root=tmp_path / "zoo")
    full = stanlib.from_pretrained(tmp_path / "full")
    x = torch.randn(1, 4, 3, model.image_size, model.image_size)
    with torch.no_grad():
        torch.testing.assert_close(packed.encode_video(x), full.encode_video(x), rtol=0, atol=1e-3)


def test_unknown_zoo_name_lists_the_models_and_the_command():
    with pytest.raises(FileNotFoundError, match=r"no zoo model 'motion/nope'.*motion/stan-self.*stanlib experiments zoo"):
        stanlib.from_pretrained("zoo:motion/nope")
