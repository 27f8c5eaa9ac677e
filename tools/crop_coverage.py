"""How much of the moving shape a training crop keeps, for several crop area ranges.

The training transform (:class:`stanlib.data.transforms.VideoTransform`) resizes the short side to
``round(size * 256 / 224)`` and takes one random resized crop per clip (area fraction in ``scale``,
aspect ratio 3/4-4/3). On the synthetic motion clips (64 px, one shape that travels up to half the
frame) this measures, per crop range, the share of the shape's pixels (all frames together) inside the
crop, and how often a crop keeps less than half of them. The shape's pixels are those brighter than the
clip's background by more than 40 (the background is dark; faded frames count for less).

    python tools/crop_coverage.py --out docs/results/crop_coverage.json
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from stanlib.data.transforms import default_resize, random_crop_box
from stanlib.teaching.experiments import load_task

RANGES = ((0.08, 1.0), (0.25, 1.0), (0.5, 1.0), (0.8, 1.0), (1.0, 1.0))
RATIO = (3 / 4, 4 / 3)


def object_masks(frames: np.ndarray) -> np.ndarray:
    """(N, T, H, W) bool: pixels brighter than the clip's darkest-corner background by more than 40."""
    bright = frames.max(axis=-1).astype(np.int16)                      # (N, T, H, W)
    corners = np.stack([bright[:, :, :4, :4], bright[:, :, :4, -4:], bright[:, :, -4:, :4],
                        bright[:, :, -4:, -4:]]).reshape(4, *bright.shape[:2], -1)
    background = np.median(corners, axis=(0, 3))[..., None, None]      # (N, T, 1, 1)
    return bright > background + 40


def coverage(masks: np.ndarray, scale: tuple[float, float], draws: int, seed: int = 0) -> dict:
    n, _, h, w = masks.shape
    side = default_resize(h)                 # crops are drawn on the resized frame, then mapped back
    torch.manual_seed(seed)
    kept = []
    total = masks.sum(axis=(1, 2, 3)).astype(float)
    for i in range(n):
        for _ in range(draws):
            top, left, bh, bw = random_crop_box(side, side, scale, RATIO)
            f = h / side
            t0, l0 = int(round(top * f)), int(round(left * f))
            t1, l1 = int(round((top + bh) * f)), int(round((left + bw) * f))
            kept.append(masks[i, :, t0:t1, l0:l1].sum() / max(total[i], 1.0))
    kept = np.array(kept)
    return {"scale": list(scale), "mean_kept": round(100 * float(kept.mean()), 1),
            "under_half": round(100 * float((kept < 0.5).mean()), 1),
            "under_90": round(100 * float((kept < 0.9).mean()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--draws", type=int, default=20, help="random crops per clip")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    data = load_task("motion", n_train=2, n_test=args.clips, seed=0, num_frames=8, progress=False)
    masks = object_masks(data.test_frames.numpy())
    rows = [coverage(masks, s, args.draws) for s in RANGES]
    for r in rows:
        print(f"crop area {r['scale'][0]:.2f}-{r['scale'][1]:.2f}: {r['mean_kept']:5.1f}% of the shape kept on "
              f"average; {r['under_half']:5.1f}% of crops keep under half, {r['under_90']:5.1f}% under 90%")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "what": "share of the moving shape's pixels (all 8 frames) inside one random training crop, "
                    "synthetic motion test clips (64 px), tools/crop_coverage.py",
            "clips": args.clips, "draws_per_clip": args.draws, "rows": rows,
            "torch": torch.__version__, "machine": platform.processor() or platform.machine()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
