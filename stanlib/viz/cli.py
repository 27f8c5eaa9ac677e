"""``stanlib attention``: attention figures and an animated GIF for one video.

::

    stanlib attention --video clip.mp4 --text "a red circle moves left" --out attention/
    stanlib attention --video clip.mp4 --checkpoint runs/tiny-motion/best --out attention/

Writes into ``--out``: ``clip_rollout.png`` (CLIP's CLS map per frame), ``stan_cls.png`` (the
branch's video-CLS map), ``clip_vs_stan.png``, ``patch.png`` (the chosen patch across frames),
``temporal.png`` (T x T per branch layer, STAN-self only), ``saliency.png`` (occlusion + gradient,
always for STAN-conv and when ``--saliency`` is given) and ``attention.gif``.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Optional

import torch

from stanlib import assets

BUNDLED_TINY = assets.TINY_STAN  # the tiny STAN-self shipped with stanlib (a save_pretrained folder)


def load_model(checkpoint: Optional[str], clip: str = "stan-tiny", temporal: str = "attn"):
    """``--checkpoint`` folder (save_pretrained layout), else the bundled tiny model, else random stan-tiny."""
    import stanlib

    if checkpoint:  # a save_pretrained folder / Hub id, or an authors' .pth file
        from stanlib.weights.pretrained import load_model as load_any

        return load_any(checkpoint).eval()
    if (BUNDLED_TINY / "config.json").is_file():
        return stanlib.from_pretrained(BUNDLED_TINY)
    warnings.warn(f"no --checkpoint and no bundled tiny model at {BUNDLED_TINY}: using a RANDOMLY initialised "
                  f"{clip} (temporal={temporal}); the maps show the architecture, not learnt behaviour",
                  stacklevel=2)
    return stanlib.create_model(clip=clip, temporal=temporal, depth=2 if clip == "stan-tiny" else 4).eval()


def load_clip(path: str, num_frames: int, size: int) -> torch.Tensor:
    """Decode ``num_frames`` TSN test frames of ``path`` -> CLIP-normalised (1, T, 3, size, size)."""
    from stanlib.data.transforms import test_transform
    from stanlib.data.video import open_video, sample_indices

    with open_video(path) as reader:
        if len(reader) == 0:
            raise ValueError(f"{path}: the video has no frames")
        idx = sample_indices(len(reader), num_frames, train=False)[0]
        frames = torch.from_numpy(reader.get_batch(idx)).permute(0, 3, 1, 2).contiguous()
    return test_transform(size)(frames)[None]


def write_figures(model, frames: torch.Tensor, out: Path, text: Optional[str] = None, patch=None,
                  layer: int = -1, head=None, saliency: bool = False, fps: float = 4.0) -> list[Path]:
    """Every figure of this command for one clip (1, T, 3, H, W); returns the written paths."""
    from stanlib.viz import (
        capture_attention,
        cls_maps,
        gradient_saliency,
        occlusion_saliency,
        plot_clip_vs_stan,
        plot_overlay_strip,
        plot_patch_attention,
        plot_saliency,
        plot_temporal_matrices,
        rollout_maps,
        save_figure,
        save_overlay_gif,
    )

    with torch.no_grad(), capture_attention(model) as att:
        model.encode_video(frames)
    clip = frames[0]
    gh, gw = att.grid
    patch = tuple(patch) if patch else (gh // 2, gw // 2)
    written = []
    rollout = rollout_maps(att.clip_spatial, att.grid, head)[0]
    written.append(save_figure(plot_overlay_strip(clip, rollout, "CLIP: CLS attention rollout per frame"),
                               out / "clip_rollout.png"))
    gif_maps = rollout
    if att.stan_spatial:
        k = layer % len(att.stan_spatial)
        stan = cls_maps(att.stan_spatial[k], att.grid, head)[0]
        written.append(save_figure(plot_overlay_strip(clip, stan, f"STAN: video CLS attention, branch layer {k}"),
                                   out / "stan_cls.png"))
        gif_maps = stan
    written.append(save_figure(plot_clip_vs_stan(clip, att, layer=layer, head=head), out / "clip_vs_stan.png"))
    source = "stan" if att.stan_spatial else "clip"
    written.append(save_figure(plot_patch_attention(clip, att, patch, layer=layer, head=head, source=source),
                               out / "patch.png"))
    if att.stan_temporal:
        written.append(save_figure(plot_temporal_matrices(att, head=head), out / "temporal.png"))
    if saliency or (att.stan_temporal == [] and att.temporal == "conv"):
        occ = occlusion_saliency(model, frames, text)[0]
        grad = gradient_saliency(model, frames, text)[0]
        written.append(save_figure(plot_saliency(clip, occ, grad), out / "saliency.png"))
    written.append(save_overlay_gif(clip, gif_maps, out / "attention.gif", fps=fps))
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stanlib attention", description=__doc__.replace("``", ""),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", required=True, help="video file (mp4, webm, ...)")
    p.add_argument("--out", required=True, help="output folder for the PNGs and the GIF")
    p.add_argument("--text", default=None, help="caption: prints its similarity to the video and is the saliency score "
                   "(without it, saliency compares to the video's own embedding)")
    p.add_argument("--checkpoint", default=None,
                   help="save_pretrained folder, zoo name, a `stanlib train` last.pt / best.pt, or authors' .pth checkpoint (default: bundled tiny model)")
    p.add_argument("--frames", type=int, default=None, help="frames to sample (default: the model's num_frames)")
    p.add_argument("--layer", type=int, default=-1, help="branch layer for the STAN maps (default: last)")
    p.add_argument("--head", type=int, default=None, help="one attention head (default: mean of heads)")
    p.add_argument("--patch", type=int, nargs=2, metavar=("ROW", "COL"), default=None,
                   help="patch for the across-frames figure (default: the grid centre)")
    p.add_argument("--saliency", action="store_true", help="also write occlusion/gradient saliency (always for conv)")
    p.add_argument("--fps", type=float, default=4.0, help="GIF frame rate")
    return p


def cli_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not Path(args.video).is_file():
        print(f"stanlib attention: video not found: {args.video}", file=sys.stderr)
        return 2
    from stanlib.data.video import VideoDecodeError
    from stanlib.model.branch import MAX_FRAMES

    if args.frames is not None and not 1 <= args.frames <= MAX_FRAMES:
        print(f"stanlib attention: --frames {args.frames}: expected 1 to {MAX_FRAMES}", file=sys.stderr)
        return 2
    try:
        model = load_model(args.checkpoint)
    except (OSError, KeyError, ValueError) as err:
        print(f"stanlib attention: cannot load --checkpoint {args.checkpoint}: "
              f"{err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 2
    try:
        frames = load_clip(args.video, args.frames or model.config.num_frames, model.image_size)
    except (VideoDecodeError, ValueError) as err:
        print(f"stanlib attention: {err}", file=sys.stderr)
        return 2
    if args.text:
        with torch.no_grad():
            cos = model(frames, model.tokenize([args.text]))[0, 0] / model.logit_scale
        print(f"cosine similarity to {args.text!r}: {cos.item():.4f}")
    out = Path(args.out)
    for path in write_figures(model, frames, out, args.text, args.patch, args.layer, args.head, args.saliency,
                              args.fps):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
