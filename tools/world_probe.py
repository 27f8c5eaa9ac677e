"""Does the tiny CLIP see the moving object in a world? Zero-shot shape naming on single frames.

For the clips whose subject is one of the tiny CLIP's four shapes and whose motion is a translation (left, right,
up, down: the size stays constant), the first frame is classified zero-shot against the 24 "a photo of a
{colour} {shape}" prompts the tiny CLIP was pretrained with, and the predicted prompt's shape is compared with the
clip's shape (chance: 25%). Plain world: the bundled motion set (the experiments' clips); textured world: a folder
written by ``stanlib synth --style textured``.

    python tools/world_probe.py --textured worlds/textured-twins --out docs/results/world_probe.json
    python tools/world_probe.py --textured worlds/textured-twins --weights runs/tiny_clip_v2 --out ...
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stanlib.teaching.synth import zero_shot_classes
from stanlib.data.video import open_video
from stanlib.teaching.tiny import load_tiny, to_model_input
from stanlib.model.tokenizer import get_tokenizer

TRANSLATIONS = ("left", "right", "up", "down")


def first_frames(folder: Path, subject) -> tuple[np.ndarray, list[str]]:
    """First frames and shape names of the translation clips of a synthetic folder whose subject is a shape."""
    meta = json.loads((folder / "synth_meta.json").read_text())
    frames, shapes = [], []
    for item in meta["items"]:
        shape = subject(item["spec"])
        if shape is None or item["spec"]["motion"] not in TRANSLATIONS:
            continue
        with open_video(folder / "videos" / f"{item['id']}.mp4") as reader:
            frames.append(reader.get_batch([0])[0])
        shapes.append(shape)
    return np.stack(frames), shapes


@torch.no_grad()
def shape_accuracy(clip, frames: np.ndarray, shapes: list[str]) -> float:
    names, prompts = zero_shot_classes()
    text = F.normalize(clip.encode_text(get_tokenizer("stan-tiny")(prompts)), dim=-1)
    image = F.normalize(clip.encode_image(to_model_input(torch.from_numpy(frames))), dim=-1)
    pred = [names[i].split()[-1] for i in (image @ text.t()).argmax(-1).tolist()]
    return 100.0 * float(np.mean([p == s for p, s in zip(pred, shapes)]))


def main() -> None:
    from stanlib.assets import synth_dataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--textured", type=Path, required=True, help="a folder of `stanlib synth --style textured`")
    ap.add_argument("--weights", default=None, help="tiny CLIP weights file or folder (default: the shipped one)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    clip = load_tiny(args.weights).eval()
    plain = first_frames(Path(synth_dataset("motion")), lambda spec: spec.get("shape"))
    textured = first_frames(args.textured, lambda s: s["sprite"]["detail"] if s["sprite"]["kind"] == "shape" else None)
    rows = {name: {"clips": len(shapes), "shape_top1": round(shape_accuracy(clip, frames, shapes), 1)}
            for name, (frames, shapes) in (("plain (bundled motion set)", plain), ("textured", textured))}
    for name, row in rows.items():
        print(f"{name}: tiny CLIP names the shape of the first frame in {row['shape_top1']:.1f}% of "
              f"{row['clips']} translation clips (chance 25%)")
    if args.out:
        args.out.write_text(json.dumps({"what": __doc__.split("\n\n")[0], "chance": 25.0, "rows": rows,
                                        "textured_folder": args.textured.name, "weights": args.weights or "bundled",
                                        "torch": torch.__version__},
                                       indent=2) + "\n")


if __name__ == "__main__":
    main()
