"""``stanlib convert``: the authors' checkpoints -> stanlib, stanlib -> the authors' layout, Hugging Face
CLIP -> open_clip names."""
from __future__ import annotations

import argparse
import sys
from typing import Optional

from stanlib.model.clip import create_clip_from_hf_folder
from stanlib.weights.io import _uses_quick_gelu, save_pretrained
from stanlib.weights.official import export_official, load_official
from stanlib.weights.pretrained import from_pretrained


def cli_main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stanlib convert",
        description="Convert checkpoints between the authors' mmengine layout, Hugging Face CLIP and stanlib.")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("official", help="authors' STAN .pth -> stanlib folder (model.safetensors + config.json)")
    p.add_argument("input", help="authors' checkpoint (.pth)")
    p.add_argument("output", help="output folder")
    p.add_argument("--logit-scale", type=float, help="1/tau (100 for B/32, 50 for B/16, 20 for DiDeMo)")
    p.add_argument("--num-frames", type=int, help="frames per video at inference (recipe: 12 retrieval, 8 recognition)")
    p.add_argument("--context-length", type=int, help="text tokens (recipe: 32; default: the CLIP's 77)")
    p.add_argument("--ignore", action="append", default=[], metavar="REGEX",
                   help="skip keys matching REGEX on purpose (repeatable), e.g. 'adapter\\..*'")
    p = sub.add_parser("to-official", help="stanlib folder -> authors' layout .pth")
    p.add_argument("input", help="folder written by save_pretrained (or a Hub repo id)")
    p.add_argument("output", help="output .pth")
    p = sub.add_parser("hf-clip", help="Hugging Face CLIP folder -> open_clip state dict (.safetensors)")
    p.add_argument("input", help="folder with config.json + model.safetensors / pytorch_model.bin")
    p.add_argument("output", help="output .safetensors (load with create_model(pretrained=...))")
    args = parser.parse_args(argv)

    try:
        if args.what == "official":
            model = load_official(args.input, logit_scale=args.logit_scale, num_frames=args.num_frames,
                                  context_length=args.context_length, ignore_keys=args.ignore)
            save_pretrained(model, args.output)
            c = model.config
            print(f"{args.input} -> {args.output}: clip={c.clip} arch={c.arch} temporal={c.temporal} "
                  f"depth={c.depth} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)")
        elif args.what == "to-official":
            out = export_official(from_pretrained(args.input), args.output)
            print(f"{args.input} -> {out}")
        else:
            from safetensors.torch import save_file

            clip = create_clip_from_hf_folder(args.input)
            save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, args.output)
            print(f"{args.input} -> {args.output} (open_clip names; quick_gelu={_uses_quick_gelu(clip)})")
    except (OSError, KeyError, ValueError) as err:
        print(f"stanlib convert: error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 1
    return 0
