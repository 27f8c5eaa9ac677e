"""``stanlib demo``: the project's main job.

For now: a short model tour (architecture summary, parameter counts and the paper's FLOPs table);
the teaching-world demo (mean pooling vs STAN on the motion task) replaces the default later.
"""
from __future__ import annotations

import argparse
import time

import torch


def model_tour() -> None:
    import stanlib
    from stanlib.flops import format_table, paper_table

    torch.manual_seed(0)
    model = stanlib.create_model("stan-tiny", temporal="attn", depth=2).eval()
    frames = torch.randn(2, 8, 3, model.image_size, model.image_size)
    print("== STAN on the tiny teaching CLIP (random init) ==")
    print(f"config: clip={model.config.clip} temporal={model.config.temporal} depth K={model.config.depth}")
    print(f"frames {tuple(frames.shape)} -> video embedding {tuple(model.encode_video(frames).shape)}")
    for name, n in model.num_params().items():
        print(f"  params {name:<12} {n / 1e6:8.2f} M")
    print("\n== Per-view cost of the paper's models (computed on the meta device) ==")
    print(format_table(paper_table()))


def cli_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="stanlib demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--tour", action="store_true", help="print the model tour only")
    ap.parse_args(argv)
    t0 = time.time()
    model_tour()
    print(f"\ndemo wall time: {time.time() - t0:.1f} s")
    return 0
