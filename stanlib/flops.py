"""FLOPs and parameters in the paper's convention (``stanlib flops ...``).

The paper's GFLOPs are multiply-accumulates (MACs) of linear and conv layers per view, with the
attention matrix products (QK^T and AV) left out, mmcv-style. ``torch.utils.flop_counter`` counts
2 FLOPs per MAC and sees attention matmuls only when SDPA runs its MATH kernel, so we force it and
split the count by op: ``mm/addmm/convolution`` = linear + conv; ``bmm`` = attention matmuls.
The model is built on the ``meta`` device: no weights are allocated, so ViT-L counts in seconds.

Explained in ``notebooks/02_build_stan.ipynb``.
"""
from __future__ import annotations

import argparse
from typing import Optional

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from stanlib.model import STANModel, create_model

LINEAR_CONV_OPS = {"mm", "addmm", "convolution", "_convolution"}
ATTENTION_OPS = {"bmm", "baddbmm"}

# docs/architecture.md section 8: per-view GFLOPs (paper totals / 3 views), B/16 at 224 px
PAPER_GFLOPS = {
    ("ViT-B-16", None, 8, 4): 134.8,
    ("ViT-B-16", "attn", 8, 4): 197.7,
    ("ViT-B-16", "attn", 16, 4): 395.7,
    ("ViT-B-16", "attn", 8, 6): 229.3,
    ("ViT-B-16", "attn", 16, 6): 458.7,
    ("ViT-B-16", "conv", 8, 4): 281.7,
}


def count_gmacs(model: STANModel, frames: int, batch: int = 1) -> dict[str, float]:
    """Per-view GMACs of ``encode_video`` split into linear/conv and attention matmuls."""
    size = model.image_size
    device = next(model.parameters()).device
    x = torch.zeros(batch, frames, 3, size, size, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model.encode_video(x)
    by_op = {str(op).split(".")[-2 if str(op).count(".") > 1 else -1]: n
             for op, n in counter.get_flop_counts()["Global"].items()}
    lin = sum(n for op, n in by_op.items() if op in LINEAR_CONV_OPS) / 2 / 1e9 / batch
    att = sum(n for op, n in by_op.items() if op in ATTENTION_OPS) / 2 / 1e9 / batch
    other = sum(n for op, n in by_op.items() if op not in LINEAR_CONV_OPS | ATTENTION_OPS)
    if other:
        raise RuntimeError(f"uncategorised ops in the FLOP count: {by_op}")
    return {"gmacs": lin, "attention_gmacs": att, "gmacs_with_attention": lin + att}


def model_cost(clip: str = "ViT-B-16", frames: int = 8, temporal: Optional[str] = "attn", depth: int = 4,
               **kwargs) -> dict[str, float]:
    """Build the model on the meta device and return GMACs per view plus parameter counts."""
    if temporal is None and "arch" not in kwargs and "spatial" not in kwargs:
        kwargs["arch"] = "meanpool"
    with torch.device("meta"):
        model = create_model(clip, temporal=temporal, depth=depth, **kwargs)
    return {**count_gmacs(model, frames), **model.num_params()}


def format_table(rows: list[dict]) -> str:
    head = (f"{'model':<28}{'frames':>7}{'K':>3}{'GFLOPs':>9}{'(+attn)':>9}{'paper':>8}"
            f"{'CLIP M':>9}{'branch M':>10}{'total M':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        paper = PAPER_GFLOPS.get((r["clip"], r["temporal"], r["frames"], r["depth"]))
        paper = f"{paper:8.1f}" if paper else f"{'-':>8}"
        clip_m = (r["clip_visual"] + r["clip_text"]) / 1e6
        lines.append(f"{r['name']:<28}{r['frames']:>7}{r['depth'] if r['temporal'] else '-':>3}"
                     f"{r['gmacs']:9.1f}{r['gmacs_with_attention']:9.1f}{paper}"
                     f"{clip_m:9.1f}{r['branch'] / 1e6:10.1f}{r['total'] / 1e6:9.1f}")
    lines.append("GFLOPs = per-view multiply-accumulates of linear/conv layers (paper convention); "
                 "(+attn) adds QK^T and AV. Params in millions (CLIP = vision + text).")
    return "\n".join(lines)


def cost_row(clip: str, frames: int, temporal: Optional[str], depth: int, **kwargs) -> dict:
    name = {"attn": "STAN-self", "conv": "STAN-conv", None: "CLIP mean pool"}[temporal]
    if temporal == "conv":
        name += f" ({kwargs.get('conv_variant', 'dense')})"
    return {"name": f"{name} {clip}", "clip": clip, "frames": frames, "temporal": temporal, "depth": depth,
            **model_cost(clip, frames, temporal, depth, **kwargs)}


def paper_table() -> list[dict]:
    """Every configuration of docs/architecture.md section 8, computed."""
    return [cost_row(c, f, t, k) for (c, t, f, k) in PAPER_GFLOPS]


def cli_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="stanlib flops", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", default="ViT-B-16")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--temporal", default="attn", choices=["attn", "conv", "none"])
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--conv-variant", default="dense", choices=["dense", "bottleneck"])
    ap.add_argument("--paper", action="store_true", help="print every configuration of the paper's table")
    args = ap.parse_args(argv)
    if args.paper:
        rows = paper_table()
    else:
        temporal = None if args.temporal == "none" else args.temporal
        kw = {"conv_variant": args.conv_variant} if temporal == "conv" else {}
        rows = [cost_row(args.clip, args.frames, temporal, args.depth, **kw)]
    print(format_table(rows))
    return 0
