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

# The paper's structure comparison (Table 7) on B/16, 8 frames: (structure, name, create_model kwargs,
# Table 7 MSR-VTT R@1 with B/32, Table 7 K400 top-1 with B/16; * in the paper = the STAN authors'
# re-implementation).
STRUCTURES = [
    ("-", "CLIP mean pooling", {"arch": "meanpool", "temporal": None}, "43.1", "79.9"),
    ("posterior", "seqTransf (CLIP4Clip)", {"arch": "seqtransf"}, "44.5", "80.5*"),
    ("posterior", "TDB (CLIP2Video)", {"arch": "tdb"}, "45.1", "81.1*"),
    ("intermediate", "ST-Adapter", {"arch": "st-adapter"}, "42.5*", "82.0"),
    ("intermediate", "X-CLIP Msg-Token + MIT", {"arch": "xclip-msg"}, "43.2*", "82.7"),
    ("branch", "STAN-self K=4", {"temporal": "attn"}, "46.9", "84.2"),
]

# GFLOPs per view that a structure's own paper states for its B/16 8-frame model, and which of our
# two counts it is comparable to ("gmacs": linear/conv only, the STAN paper's convention;
# "gmacs_with_attention": fvcore-style, attention matmuls included, as those papers count).
STRUCTURE_PAPER_GFLOPS = {
    "ST-Adapter": (455 / 3, "gmacs_with_attention",
                   "ST-Adapter paper (Pan et al., NeurIPS 2022), K400 results: ViT-B/16 8 frames, one adapter "
                   "per block (r=384), 455 GFLOPs for 1x3 views"),
    "X-CLIP Msg-Token + MIT": (145.0, "gmacs_with_attention",
                               "X-CLIP paper (Ni et al., ECCV 2022), Table 1: X-CLIP-B/16 8 frames, 145 GFLOPs per "
                               "view; the whole X-CLIP, whose video-specific prompt generator (text side, over the "
                               "400 K400 class names) is not built here"),
    "STAN-self K=4": (PAPER_GFLOPS[("ViT-B-16", "attn", 8, 4)], "gmacs", "STAN paper: 593 GFLOPs for 3 views"),
    "CLIP mean pooling": (PAPER_GFLOPS[("ViT-B-16", None, 8, 4)], "gmacs", "CLIP-B/16, 8 frames (computed)"),
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


def xclip_prompt_gmacs(frames: int = 8, classes: int = 400, patches: int = 196, width: int = 768, embed: int = 512,
                       layers: int = 2) -> float:
    """GMACs of X-CLIP's video-specific prompt generator (text side; not built in stanlib), per view.

    From the released model: the patch tokens of every frame go through LayerNorm and a width x embed
    projection, are averaged over frames, and ``layers`` blocks let the class-name embeddings
    (``classes`` queries) cross-attend to them (q, k, v, out projections and a 4x MLP), so the paper's
    X-CLIP FLOPs hold this on top of the video encoder. Attention matmuls included (fvcore-style).
    """
    proj = frames * patches * width * embed
    per_layer = (2 * classes * embed ** 2 + 2 * patches * embed ** 2 + 8 * classes * embed ** 2
                 + 2 * classes * patches * embed)
    return (proj + layers * per_layer) / 1e9


def structures_table(clip: str = "ViT-B-16", frames: int = 8) -> list[dict]:
    """Every structure of the paper's Table 7 (:data:`STRUCTURES`), computed on the meta device."""
    rows = []
    for structure, name, kwargs, msrvtt, k400 in STRUCTURES:
        kw = dict(kwargs)
        temporal = kw.pop("temporal", "attn")
        cost = model_cost(clip, frames, temporal, 4, **kw)
        paper = STRUCTURE_PAPER_GFLOPS.get(name) if (clip, frames) == ("ViT-B-16", 8) else None
        not_built = xclip_prompt_gmacs(frames) if paper and kw.get("arch") == "xclip-msg" else 0.0
        rows.append({"not_built_gmacs": not_built, "structure": structure, "name": name, "clip": clip, "frames": frames, "msrvtt_r1": msrvtt,
                     "k400_top1": k400, "paper_gflops": paper[0] if paper else None,
                     "paper_column": paper[1] if paper else None, "source": paper[2] if paper else None, **cost})
    return rows


def format_structures(rows: list[dict]) -> str:
    """The structure comparison as text: our FLOPs and parameters beside the papers' figures."""
    head = (f"{'structure':<13}{'model':<24}{'GFLOPs':>8}{'(+attn)':>9}{'paper':>8}{'diff':>7}"
            f"{'new M':>8}{'total M':>9}{'  T7 MSR-VTT / K400':<20}")
    lines = [f"{rows[0]['clip']}, {rows[0]['frames']} frames, per view" if rows else "", head, "-" * len(head)]
    notes = []
    for r in rows:
        paper, diff = f"{'-':>8}", f"{'':>7}"
        if r["paper_gflops"]:
            ours = r[r["paper_column"]]
            mark = "" if r["paper_column"] == "gmacs" else "a"
            paper = f"{r['paper_gflops']:7.1f}{mark}"
            diff = f"{100 * (ours - r['paper_gflops']) / r['paper_gflops']:+6.1f}%"
            notes.append(f"  {r['name']}: {r['source']}")
            if r.get("not_built_gmacs"):
                total = ours + r["not_built_gmacs"]
                notes.append(f"    + that prompt generator ({r['not_built_gmacs']:.1f} GFLOPs, xclip_prompt_gmacs) = "
                             f"{total:.1f}: {100 * (total - r['paper_gflops']) / r['paper_gflops']:+.1f}% from the paper")
        lines.append(f"{r['structure']:<13}{r['name']:<24}{r['gmacs']:8.1f}{r['gmacs_with_attention']:9.1f}{paper}{diff}"
                     f"{r['branch'] / 1e6:8.2f}{r['total'] / 1e6:9.1f}  {r['msrvtt_r1']:>5} / {r['k400_top1']:<5}")
    lines.append("GFLOPs = linear/conv multiply-accumulates (the STAN paper's convention); (+attn) adds QK^T and AV. "
                 "paper: a = compare with (+attn) (fvcore-style, as those papers count). new M = parameters "
                 "added to CLIP (millions). T7 = the STAN paper's Table 7 (MSR-VTT R@1 with B/32 / K400 top-1 with "
                 "B/16; * = the STAN authors' re-implementation).")
    return "\n".join(lines + (["Sources:"] + notes if notes else []))


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
    ap.add_argument("--structures", action="store_true",
                    help="the paper's structure comparison (Table 7): posterior, intermediate and branch models, "
                         "on --clip / --frames (default B/16, 8 frames), beside the papers' figures")
    args = ap.parse_args(argv)
    if args.structures:
        print(format_structures(structures_table(args.clip, args.frames)))
        return 0
    if args.paper:
        rows = paper_table()
    else:
        temporal = None if args.temporal == "none" else args.temporal
        kw = {"conv_variant": args.conv_variant} if temporal == "conv" else {}
        rows = [cost_row(args.clip, args.frames, temporal, args.depth, **kw)]
    print(format_table(rows))
    return 0
