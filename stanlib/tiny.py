"""The tiny teaching CLIP: contrastive image-text pretraining on synthetic still images.

Real CLIP weights cannot be downloaded offline, so the course pretrains its own CLIP, in
miniature, the way CLIP itself was made: an image tower and a text tower trained with the
symmetric InfoNCE loss on (image, caption) pairs. The images are still shapes of the synthetic
world (:func:`stanlib.data.synth.synth_images`) and the captions name their colour, shape and
position (``"a photo of a small red circle at the top left"``). The motion words ("up", "grows",
"fades") never appear, so the class names "Something moves up" / "... down" embed at cosine
0.97; ``--storyboards`` adds captioned "before | after" pictures of motions (an experiment,
docs/experiments.md 2.5). The model is open_clip's
``stan-tiny`` config (64 px, patch 8, width 128, 4 vision layers; word-level text tower).

After pretraining the model names colour x shape combinations it has never seen as images
(held-out renders) by comparing the image with the 24 prompts ``"a photo of a red circle"``...:
*zero-shot* classification, the property STAN relies on when it keeps CLIP untouched.

::

    stanlib pretrain-tiny --seed 0 --out runs/tiny_clip     # 3000 steps of 64 images
    stanlib pretrain-tiny --evaluate bundled          # the shipped weights

    import stanlib
    clip = stanlib.load_tiny()                  # the shipped weights (open_clip CLIP)
    model = stanlib.create_model("stan-tiny", pretrained="bundled", temporal="attn", depth=2)

The shipped file was made by ``stanlib pretrain-tiny --seed 0 --steps 3000`` (then copied to
``stanlib/assets/tiny_clip``, inside the package); its ``config.json`` records the command, the
recipe, the zero-shot curve and the wall time. Colour is learnt within ~200 steps; shape (circle vs square, triangle
vs cross, 6-11 px shapes under 8 px patches) is what takes the long tail of the training.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from stanlib.clip import BUNDLED_TINY, create_clip
from stanlib.data.synth import APPEARANCE_PAIRS, MOTION_CLASSES, MOTIONS, random_storyboard, synth_images, zero_shot_classes
from stanlib.data.transforms import CLIP_MEAN, CLIP_STD
from stanlib.engine import Stepper, build_optimizer, warmup_cosine
from stanlib.losses import info_nce
from stanlib.tokenizer import get_tokenizer

CLIP_NAME = "stan-tiny"
WEIGHTS_NAME = "stan-tiny.safetensors"
# Held-out images come from seeds no training batch uses (training seeds are seed * 1e6 + step).
HELDOUT_SEED = 2_000_000_000
TRAIN_SEED_STRIDE = 1_000_000
# Fraction of each batch that is a "before | after" storyboard captioned with its motion
# (synth.storyboard). Off for the shipped model: with 0.25 the text tower learnt which *pair* a
# storyboard shows but merged each time-reversed partner (cosine 1.00), see docs/experiments.md 2.5.
STORYBOARDS = 0.0


def to_model_input(images: np.ndarray | torch.Tensor, device: Optional[torch.device] = None) -> torch.Tensor:
    """uint8 images (..., H, W, 3) -> CLIP-normalised float (..., 3, H, W), on ``device``.

    Works for still images (N, H, W, 3) and clips (N, T, H, W, 3) alike. The uint8 tensor is
    moved first (4x fewer bytes to copy than the float result).
    """
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    x = x.to(device) if device is not None else x
    if x.dtype != torch.uint8 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (..., H, W, 3), got {x.dtype} {tuple(x.shape)}")
    x = x.movedim(-1, -3).float().div_(255)
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def train_batch(seed: int, step: int, batch_size: int, storyboards: float = STORYBOARDS
                ) -> tuple[torch.Tensor, list[str]]:
    """Fresh images + captions for one training step (a pure function of seed and step)."""
    if step >= TRAIN_SEED_STRIDE:
        raise ValueError(f"step {step} too large (at most {TRAIN_SEED_STRIDE - 1} steps)")
    images, captions, _ = synth_images(batch_size, seed=seed * TRAIN_SEED_STRIDE + step, storyboards=storyboards)
    return to_model_input(images), captions


def heldout_images(n: int = 960, size: int = 64) -> tuple[torch.Tensor, np.ndarray]:
    """The fixed held-out set for zero-shot accuracy: ``n`` images balanced over the 24 classes."""
    images, _, labels = synth_images(n, seed=HELDOUT_SEED, size=size)
    return to_model_input(images), labels


@torch.no_grad()
def zero_shot_accuracy(clip: torch.nn.Module, images: Optional[torch.Tensor] = None,
                       labels: Optional[np.ndarray] = None, batch_size: int = 256) -> float:
    """Zero-shot top-1 (percent) over the 24 colour x shape classes, prompts "a photo of a {c} {s}"."""
    if images is None:
        images, labels = heldout_images()
    tokenizer = get_tokenizer(CLIP_NAME)
    _, prompts = zero_shot_classes()
    was_training = clip.training
    clip.eval()
    text = F.normalize(clip.encode_text(tokenizer(prompts)), dim=-1)
    preds = []
    for start in range(0, len(images), batch_size):
        img = F.normalize(clip.encode_image(images[start:start + batch_size]), dim=-1)
        preds.append((img @ text.t()).argmax(dim=-1))
    clip.train(was_training)
    return float(100.0 * (torch.cat(preds).numpy() == np.asarray(labels)).mean())


@torch.no_grad()
def motion_zero_shot(clip: torch.nn.Module, n: int = 400) -> dict:
    """How well the text tower knows the motion words: held-out storyboards classified among the
    10 motion class names ("Something moves left", ...; percent), and the mean cosine between the
    text embeddings of each class and its time-reversed partner (lower = better separated)."""
    rng = np.random.default_rng(HELDOUT_SEED + 1)
    images, labels = [], []
    for i in range(n):
        colour, shape = APPEARANCE_PAIRS[rng.integers(len(APPEARANCE_PAIRS))]
        m = i % len(MOTIONS)
        images.append(random_storyboard(rng, colour, shape, MOTIONS[m]))
        labels.append(m)
    was_training = clip.training
    clip.eval()
    text = F.normalize(clip.encode_text(get_tokenizer(CLIP_NAME)(list(MOTION_CLASSES))), dim=-1)
    img = F.normalize(clip.encode_image(to_model_input(np.stack(images))), dim=-1)
    clip.train(was_training)
    acc = float(100.0 * ((img @ text.t()).argmax(-1).numpy() == np.asarray(labels)).mean())
    partner_cos = float((text[0::2] * text[1::2]).sum(-1).mean())
    return {"storyboard_top1": round(acc, 1), "partner_cosine": round(partner_cos, 3)}


def pretrain(seed: int = 0, steps: int = 3000, batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.1,
             warmup: int = 50, eval_every: int = 200, n_eval: int = 960, progress: bool = True,
             storyboards: float = STORYBOARDS) -> tuple[torch.nn.Module, dict]:
    """Pretrain ``stan-tiny`` contrastively; returns ``(clip, record)``.

    ``record`` holds the recipe, the zero-shot accuracy curve ``[(step, acc), ...]``, the final
    ``zero_shot_top1`` on the held-out images and the wall time. Deterministic for a given seed
    on a given machine and thread count (fresh images per step are a pure function of
    (seed, step); model init and nothing else draws from torch's generator).
    """
    if steps < 1 or batch_size < 2:
        raise ValueError(f"need steps >= 1 and batch_size >= 2, got steps={steps}, batch_size={batch_size}")
    torch.manual_seed(seed)
    clip = create_clip(CLIP_NAME)  # random init; open_clip's learnable logit scale starts at 1/0.07
    tokenizer = get_tokenizer(CLIP_NAME)
    # the training engine's groups (no decay on norms, biases, embeddings, the logit scale), eps 1e-6,
    # clipping at norm 1 over every parameter in module order
    opt = build_optimizer(clip, lr, weight_decay, lr_mult=1.0, eps=1e-6)
    stepper = Stepper(opt, warmup_cosine(warmup, steps), grad_clip=1.0, clip_params=clip.parameters())
    eval_images, eval_labels = heldout_images(n_eval)
    curve: list[tuple[int, float]] = [(0, zero_shot_accuracy(clip, eval_images, eval_labels))]
    losses: list[float] = []
    t0 = time.time()
    bar = tqdm(range(steps), desc="pretrain stan-tiny", disable=not progress)
    for step in bar:
        images, captions = train_batch(seed, step, batch_size, storyboards)
        img = F.normalize(clip.encode_image(images), dim=-1)
        txt = F.normalize(clip.encode_text(tokenizer(captions)), dim=-1)
        loss = info_nce(img, txt, clip.logit_scale.exp().clamp(max=100.0)) / 2  # mean of both directions
        stepper.step(loss)
        losses.append(loss.item())
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            curve.append((step + 1, zero_shot_accuracy(clip, eval_images, eval_labels)))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", zero_shot=f"{curve[-1][1]:.1f}%")
    clip.eval()
    record = {
        "clip": CLIP_NAME, "seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr,
        "weight_decay": weight_decay, "warmup": warmup, "optimizer": "AdamW(0.9, 0.98, eps 1e-6), cosine, clip 1.0",
        "data": "stanlib.data.synth.synth_images: fresh images per step, seed = seed * 1e6 + step",
        "storyboards": storyboards, "motion_words": motion_zero_shot(clip),
        "zero_shot_classes": 24, "zero_shot_prompt": "a photo of a {colour} {shape}",
        "heldout": f"{n_eval} images of synth_images(seed={HELDOUT_SEED})",
        "zero_shot_top1": curve[-1][1], "curve": curve,
        "loss_curve": [round(float(np.mean(losses[i:i + 20])), 4) for i in range(0, len(losses), 20)],
        "wall_time_s": round(time.time() - t0, 1), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "machine": platform.machine(),
    }
    return clip, record


def save_tiny(clip: torch.nn.Module, record: dict, out: str | Path) -> Path:
    """Write ``out/stan-tiny.safetensors`` (fp32 open_clip state dict) and ``out/config.json``."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous().clone() for k, v in clip.state_dict().items()}
    save_file(state, str(out / WEIGHTS_NAME), metadata={"clip": CLIP_NAME, "seed": str(record.get("seed"))})
    (out / "config.json").write_text(json.dumps(record, indent=1) + "\n")
    return out / WEIGHTS_NAME


def load_tiny(path: Optional[str | Path] = None) -> torch.nn.Module:
    """The tiny teaching CLIP (an ``open_clip.CLIP``, eval mode): the shipped weights by default.

    ``path``: a ``stan-tiny.safetensors`` file or the folder holding it (e.g. ``runs/tiny_clip``).
    For a video model on top of it use ``stanlib.create_model("stan-tiny", pretrained="bundled")``.
    """
    if path is None:
        file = BUNDLED_TINY
    else:
        file = Path(path)
        if file.is_dir():
            file = file / WEIGHTS_NAME
    if not file.is_file():
        raise FileNotFoundError(f"tiny CLIP weights not found at {file}; create them with "
                                f"`stanlib pretrain-tiny --out {file.parent}`")
    return create_clip(CLIP_NAME, pretrained=str(file)).eval()


def cli_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="stanlib pretrain-tiny",
                                 description="Pretrain the tiny teaching CLIP (stan-tiny) contrastively on synthetic "
                                             "still images with captions; report zero-shot accuracy.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--storyboards", type=float, default=STORYBOARDS,
                    help="fraction of each batch that is a motion storyboard (teaches the motion words)")
    ap.add_argument("--eval-every", type=int, default=200, help="steps between zero-shot evaluations")
    ap.add_argument("--out", default="runs/tiny_clip",
                    help="output folder (the shipped model lives in stanlib/assets/tiny_clip)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--evaluate", metavar="WEIGHTS", help="only measure the zero-shot accuracy of a weights file "
                                                          "or folder ('bundled' = the shipped one)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.evaluate:
        try:
            clip = load_tiny(None if args.evaluate == "bundled" else args.evaluate)
        except (FileNotFoundError, KeyError, ValueError) as err:
            print(f"stanlib pretrain-tiny: {err}", file=sys.stderr)
            return 2
        print(f"zero-shot top-1 on 960 held-out images (24 classes): {zero_shot_accuracy(clip):.1f}%; "
              f"motion words: {motion_zero_shot(clip)}")
        return 0
    command = "stanlib pretrain-tiny " + " ".join(argv)
    clip, record = pretrain(args.seed, args.steps, args.batch_size, args.lr, eval_every=args.eval_every,
                            storyboards=args.storyboards)
    record["command"] = command.strip()
    path = save_tiny(clip, record, args.out)
    print(f"zero-shot top-1 {record['zero_shot_top1']:.1f}% (curve {record['curve']}); "
          f"{record['wall_time_s']:.0f} s; wrote {path} and {path.parent / 'config.json'}")
    return 0
