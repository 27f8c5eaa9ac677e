"""`stanlib demo --quick`: every figure is written and mean pooling is exactly order-blind."""
import json

import pytest

from stanlib import assets
from stanlib.teaching import demo


@pytest.mark.skipif(not assets.TINY_CLIP_V2.is_file(), reason="shipped tiny CLIP v2 not built yet")
def test_quick_demo_writes_figures_and_meanpool_is_half(tmp_path, capsys):
    assert demo.cli_main(["--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "demo wall time" in out and "direction" in out
    assert "stan-tiny-v2" in out and "text head" in out  # the paper's method by default
    for name in ("curves.png", "confusion.png", "attention_clip_vs_stan.png", "attention_temporal.png",
                 "results.json"):
        assert (tmp_path / name).stat().st_size > 1000, name
    summary = json.loads((tmp_path / "results.json").read_text())
    meanpool = summary["results"]["mean pooling"]
    # a clip and its exact time reversal get the same mean-pooled embedding: one of each twin pair wins
    assert meanpool["direction"] == 50.0
    assert all(p["direction"] == 50.0 for p in meanpool["per_pair"].values())
    assert set(summary["results"]) == {"mean pooling", "STAN-self"}
    assert len(summary["curves"]["STAN-self"]["loss"]) == demo.QUICK_STEPS


def test_tour_flag_keeps_the_model_tour(capsys):
    assert demo.cli_main(["--tour"]) == 0
    assert "params" in capsys.readouterr().out


def test_quick_demo_with_the_class_name_head_on_a_v2_clip(tmp_path, capsys):
    import torch

    from stanlib.model.clip import create_clip
    from stanlib.teaching.tiny import save_tiny

    torch.manual_seed(0)
    weights = save_tiny(create_clip("stan-tiny-v2"), {"clip": "stan-tiny-v2", "seed": 0}, tmp_path / "clip")
    out = tmp_path / "demo"
    # the default is the paper's method: the class-name head on stan-tiny-v2
    assert demo.cli_main(["--quick", "--pretrained", str(weights), "--out", str(out)]) == 0
    summary = json.loads((out / "results.json").read_text())
    assert summary["recipes"]["STAN-self"]["head"] == "text"
    assert summary["recipes"]["STAN-self"]["clip"] == "stan-tiny-v2"
    assert summary["results"]["mean pooling"]["direction"] == 50.0
    # a v2 weights file is refused as a stan-tiny CLIP, with the reason
    assert demo.cli_main(["--quick", "--clip", "stan-tiny", "--pretrained", str(weights), "--out", str(out)]) == 2
    assert "holds a stan-tiny-v2 CLIP" in capsys.readouterr().out
