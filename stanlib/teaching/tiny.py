"""The tiny teaching CLIP: contrastive image-text pretraining on synthetic still images.

Real CLIP weights cannot be downloaded offline, so the course pretrains its own CLIP, in
miniature, the way CLIP itself was made: an image tower and a text tower trained with the
symmetric InfoNCE loss on (image, caption) pairs. The images are still shapes of the synthetic
world (:func:`stanlib.teaching.synth.synth_images`) and the captions name their colour, shape and
position (``"a photo of a small red circle at the top left"``). The motion words ("up", "grows",
"fades") never appear, so the class names "Something moves up" / "... down" embed at cosine
0.97; ``--storyboards`` adds captioned "before | after" pictures of motions (an experiment,
docs/experiments.md 2.5), ``--motion-stills`` / ``--textured`` single pictures whose cue names the
motion (a smear behind a moving shape, ghost outlines, a curved arrow, a row of fading copies;
:func:`stanlib.teaching.synth.synth_motion_stills`), captioned with the video tasks' own phrases
("a red circle moves left"); :func:`motion_phrase_retrieval` measures what the text tower learnt
of them. ``--textured-images`` adds colour x shape stills in textured scenes, ``--lighting``
lighting stills ("the scene gets brighter", :func:`stanlib.teaching.synth.synth_lighting_stills`;
:func:`lighting_phrases` measures them), whose words only the ``stan-tiny-v2`` vocabulary has
(``--clip stan-tiny-v2``: the same network, :data:`stanlib.model.tokenizer.TINY_VOCAB_V2`).
The model is open_clip's
``stan-tiny`` config (64 px, patch 8, width 128, 4 vision layers; word-level text tower).

After pretraining the model names colour x shape combinations it has never seen as images
(held-out renders) by comparing the image with the 24 prompts ``"a photo of a red circle"``...:
*zero-shot* classification, the property STAN relies on when it keeps CLIP untouched.

::

    stanlib pretrain-tiny --seed 0 --out runs/tiny_clip     # 3000 steps of 64 images
    stanlib pretrain-tiny --evaluate bundled          # the shipped weights
    stanlib pretrain-tiny --motion-stills 0.2 --textured 0.1 --out runs/tiny_clip_motion

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

from stanlib import assets
from stanlib.data.transforms import CLIP_MEAN, CLIP_STD
from stanlib.engine.losses import info_nce
from stanlib.engine.optim import Stepper, build_optimizer, warmup_cosine
from stanlib.model.clip import BUNDLED_TINY, create_clip, tiny_clip_name
from stanlib.model.tokenizer import get_tokenizer
from stanlib.teaching.synth import (
    APPEARANCE_PAIRS,
    LIGHTING_PHRASES,
    LIGHTING_SUBJECTS,
    MOTION_CLASSES,
    MOTION_PHRASES,
    MOTION_STILL_SUBJECTS,
    MOTIONS,
    PAIR_NAMES,
    lighting_caption,
    motion_still_caption,
    motion_swaps,
    partner,
    random_storyboard,
    render_clip,
    sample_spec,
    synth_images,
    synth_lighting_stills,
    synth_motion_stills,
    synth_textured_images,
    zero_shot_classes,
)

CLIP_NAME = "stan-tiny"
WEIGHTS_NAME = "stan-tiny.safetensors"
# Held-out images come from seeds no training batch uses (training seeds are seed * 1e6 + step).
HELDOUT_SEED = 2_000_000_000
TRAIN_SEED_STRIDE = 1_000_000
# Fraction of each batch that is a "before | after" storyboard captioned with its motion
# (synth.storyboard). Off for the shipped model: with 0.25 the text tower learnt which *pair* a
# storyboard shows but merged each time-reversed partner (cosine 1.00), see docs/experiments.md 2.5.
STORYBOARDS = 0.0
# Fractions of each batch that are motion stills (synth.synth_motion_stills) on plain and on
# textured scenes, in reversed twins; off for the shipped model.
MOTION_STILLS = 0.0
TEXTURED = 0.0
# Fraction of each batch that is colour x shape stills in textured scenes (synth.synth_textured_images):
# the shapes named where the textured world shows them. Off for the shipped model.
TEXTURED_IMAGES = 0.0
# Fraction of each batch that is lighting stills (synth.synth_lighting_stills: "the scene gets brighter"),
# words only stan-tiny-v2 has. Off for the shipped model.
LIGHTING = 0.0


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


def _check_fractions(motion_stills: float, textured: float, textured_images: float = 0.0,
                     lighting: float = 0.0) -> None:
    parts = {"motion_stills": motion_stills, "textured": textured, "textured_images": textured_images,
             "lighting": lighting}
    for name, value in parts.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} is a fraction of the batch in [0, 1], got {value}")
    if sum(parts.values()) > 1.0:
        raise ValueError(f"{' + '.join(parts)} is at most 1 (the rest are captioned shapes), "
                         f"got {' + '.join(str(v) for v in parts.values())}")


def _unknown_lighting_words(clip_name: str) -> list[str]:
    """The words of the lighting stills' captions that tiny CLIP ``clip_name`` does not know."""
    captions = [lighting_caption(m, v, s) for m in LIGHTING_PHRASES for v in range(len(LIGHTING_PHRASES[m]))
                for s in range(len(LIGHTING_SUBJECTS))]
    return get_tokenizer(clip_name).unknown(captions)


def _check_lighting_words(lighting: float, clip_name: str) -> None:
    """Lighting stills are captioned with words only some tiny CLIPs have: refuse the others."""
    unknown = _unknown_lighting_words(clip_name) if lighting > 0 else []
    if unknown:
        raise ValueError(f"lighting stills need --clip stan-tiny-v2: {clip_name} does not know {unknown}")


def train_batch(seed: int, step: int, batch_size: int, storyboards: float = STORYBOARDS,
                motion_stills: float = MOTION_STILLS, textured: float = TEXTURED,
                textured_images: float = TEXTURED_IMAGES, lighting: float = LIGHTING,
                arrow_on_top: bool = False) -> tuple[torch.Tensor, list[str]]:
    """Fresh images + captions for one training step (a pure function of seed and step).

    ``round(motion_stills * batch_size)`` images are plain motion stills and ``round(textured *
    batch_size)`` motion stills on textured scenes (both in reversed twins, after the shapes);
    ``round(textured_images * batch_size)`` are colour x shape stills in textured scenes
    (:func:`~stanlib.teaching.synth.synth_textured_images`, right after the plain shapes); the rest are
    :func:`synth_images` (with ``storyboards``); ``round(lighting * batch_size)`` lighting stills
    (:func:`~stanlib.teaching.synth.synth_lighting_stills`) come last; ``arrow_on_top``: rotation
    stills draw their arrow over the shape (:func:`~stanlib.teaching.synth.sample_motion_still_spec`).
    With all four fractions at 0 the batch is
    ``synth_images(batch_size)`` alone and no other generator is called.
    """
    if step >= TRAIN_SEED_STRIDE:
        raise ValueError(f"step {step} too large (at most {TRAIN_SEED_STRIDE - 1} steps)")
    _check_fractions(motion_stills, textured, textured_images, lighting)
    data_seed = seed * TRAIN_SEED_STRIDE + step
    n_plain = int(round(motion_stills * batch_size))
    n_textured = min(int(round(textured * batch_size)), batch_size - n_plain)
    n_scenes = min(int(round(textured_images * batch_size)), batch_size - n_plain - n_textured)
    n_light = min(int(round(lighting * batch_size)), batch_size - n_plain - n_textured - n_scenes)
    n_shapes = batch_size - n_plain - n_textured - n_scenes - n_light
    parts = []
    if n_shapes > 0:
        parts.append(synth_images(n_shapes, seed=data_seed, storyboards=storyboards)[:2])
    if n_scenes > 0:
        parts.append(synth_textured_images(n_scenes, seed=data_seed)[:2])
    if n_plain > 0:
        parts.append(synth_motion_stills(n_plain, seed=data_seed, twins=True, arrow_on_top=arrow_on_top)[:2])
    if n_textured > 0:
        parts.append(synth_motion_stills(n_textured, seed=data_seed, textured=True, twins=True,
                                         arrow_on_top=arrow_on_top)[:2])
    if n_light > 0:
        parts.append(synth_lighting_stills(n_light, seed=data_seed)[:2])
    images = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
    return to_model_input(images), [c for p in parts for c in p[1]]


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


def heldout_textured_images(n: int = 480, size: int = 64) -> tuple[torch.Tensor, np.ndarray]:
    """Held-out colour x shape stills in textured scenes (:func:`synth_textured_images`), balanced over
    the 24 classes: zero-shot on them says whether the CLIP sees shapes in the textured world."""
    images, _, labels = synth_textured_images(n, seed=HELDOUT_SEED, size=size)
    return to_model_input(images), labels


@torch.no_grad()
def motion_zero_shot(clip: torch.nn.Module, n: int = 400) -> dict:
    """How well the text tower knows the motion words: held-out storyboards classified among the
    10 motion class names ("Something moves left", ...; percent), the cosine between the text
    embeddings of each class and its time-reversed partner (mean and per pair; lower = better
    separated: a frozen class-name head cannot tell a pair apart whose names embed alike) and the
    largest cosine between classes of different pairs."""
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
    partner = (text[0::2] * text[1::2]).sum(-1)
    cos = text @ text.t()
    cos.fill_diagonal_(-1.0)
    for k in range(0, len(MOTION_CLASSES), 2):
        cos[k, k + 1] = cos[k + 1, k] = -1.0
    return {"storyboard_top1": round(acc, 1), "partner_cosine": round(float(partner.mean()), 3),
            "partner_cosine_per_pair": {name: round(float(c), 3) for name, c in zip(PAIR_NAMES, partner)},
            "other_pair_cosine_max": round(float(cos.max()), 3)}


@torch.no_grad()
def motion_phrase_retrieval(clip: torch.nn.Module, n: int = 200, cues: bool = True, textured: bool = False,
                            batch_size: int = 256, arrow_on_top: bool = False) -> dict:
    """Does the image pick its caption's motion phrase? For ``n`` held-out images captioned with a
    motion (``"the red circle is moving left"``), the caption is scored against its 10
    :func:`~stanlib.teaching.synth.motion_swaps` (the same words with each motion's phrase).

    ``cues=True``: motion stills (:func:`~stanlib.teaching.synth.synth_motion_stills`, ``textured``
    scenes or plain), whose cue names the direction. ``cues=False``: one uniformly drawn frame of a
    plain-world video clip of the motion (8 frames): a frame of a clip and of its reversal are equally
    likely, so the direction within a pair is at chance (50%) for any model.
    Returns percentages: ``top1`` (the true phrase scores highest of the 10; chance 10%),
    ``reversed`` (the true phrase scores above its reversed partner's; chance 50%) and ``pair``
    (the best phrase is of the true pair; chance 20%), with ``n``.
    """
    if n < 1:
        raise ValueError(f"motion_phrase_retrieval needs n >= 1, got {n}")
    if cues:
        images, captions, motions = synth_motion_stills(n, seed=HELDOUT_SEED, textured=textured,
                                                        arrow_on_top=arrow_on_top)
    else:
        rng = np.random.default_rng(HELDOUT_SEED + 2)
        frames, captions, motions = [], [], []
        for i in range(n):
            motion = MOTIONS[i % len(MOTIONS)]
            colour, shape = APPEARANCE_PAIRS[rng.integers(len(APPEARANCE_PAIRS))]
            clip_frames = render_clip(sample_spec(rng, colour, shape, motion, num_frames=8))
            frames.append(clip_frames[rng.integers(len(clip_frames))])
            variant = int(rng.integers(len(MOTION_PHRASES[motion])))
            subject = int(rng.integers(len(MOTION_STILL_SUBJECTS)))
            captions.append(motion_still_caption(colour, shape, motion, variant, subject))
            motions.append(motion)
        images = np.stack(frames)
    swaps = [motion_swaps(c, m) for c, m in zip(captions, motions)]
    texts = sorted({t for s in swaps for t in s})
    was_training = clip.training
    clip.eval()
    tokenizer = get_tokenizer(CLIP_NAME)
    text = torch.cat([F.normalize(clip.encode_text(tokenizer(texts[i:i + batch_size])), dim=-1)
                      for i in range(0, len(texts), batch_size)])
    x = to_model_input(images)
    img = torch.cat([F.normalize(clip.encode_image(x[i:i + batch_size]), dim=-1)
                     for i in range(0, n, batch_size)])
    clip.train(was_training)
    row = {t: i for i, t in enumerate(texts)}
    index = torch.tensor([[row[t] for t in s] for s in swaps])           # (n, 10) in MOTIONS order
    scores = (img[:, None, :] * text[index]).sum(-1)                      # (n, 10)
    true = torch.tensor([MOTIONS.index(m) for m in motions])
    rev = torch.tensor([MOTIONS.index(partner(m)) for m in motions])
    best = scores.argmax(-1)
    own, other = scores.gather(1, true[:, None])[:, 0], scores.gather(1, rev[:, None])[:, 0]
    pct = lambda hits: round(float(100.0 * hits.float().mean()), 1)  # noqa: E731
    return {"top1": pct(best == true), "reversed": pct(own > other), "pair": pct(best // 2 == true // 2), "n": n}


def motion_phrases(clip: torch.nn.Module, n: int = 200, arrow_on_top: bool = False) -> dict:
    """:func:`motion_phrase_retrieval` on plain and textured motion stills and on plain video frames."""
    return {"stills": motion_phrase_retrieval(clip, n, cues=True, arrow_on_top=arrow_on_top),
            "textured_stills": motion_phrase_retrieval(clip, n, cues=True, textured=True,
                                                       arrow_on_top=arrow_on_top),
            "video_frames": motion_phrase_retrieval(clip, n, cues=False)}


def lighting_phrases(clip: torch.nn.Module, n: int = 200, clip_name: str = "stan-tiny-v2") -> dict:
    """Pair accuracy of the lighting words on ``n`` held-out lighting stills (:func:`synth_lighting_stills`):
    the still is closer to ``"the scene gets brighter"`` than to ``"... darker"`` exactly when its light
    rises. 50% is chance; needs a CLIP whose vocabulary has the words (``stan-tiny-v2``)."""
    tokenizer = get_tokenizer(clip_name)
    images, _, motions = synth_lighting_stills(n, seed=HELDOUT_SEED)
    with torch.no_grad():
        img = F.normalize(clip.encode_image(to_model_input(images)), dim=-1)
        txt = F.normalize(clip.encode_text(tokenizer(["the scene gets brighter", "the scene gets darker"])), dim=-1)
    said = np.where((img @ txt.T).argmax(-1).numpy() == 0, "brighter", "darker")
    return {"pair": round(float(np.mean(said == np.asarray(motions))) * 100, 1), "n": n}


def pretrain(seed: int = 0, steps: int = 3000, batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.1,
             warmup: int = 50, eval_every: int = 200, n_eval: int = 960, progress: bool = True,
             storyboards: float = STORYBOARDS, motion_stills: float = MOTION_STILLS, textured: float = TEXTURED,
             n_motion_eval: int = 200, textured_images: float = TEXTURED_IMAGES, lighting: float = LIGHTING,
             clip_name: str = CLIP_NAME, arrow_on_top: bool = False) -> tuple[torch.nn.Module, dict]:
    """Pretrain ``stan-tiny`` contrastively; returns ``(clip, record)``.

    ``record`` holds the recipe, the zero-shot accuracy curve ``[(step, acc), ...]``, the final
    ``zero_shot_top1`` on the held-out images, the motion words (:func:`motion_zero_shot`, and
    :func:`motion_phrases` on ``n_motion_eval`` images, skipped at 0) and the wall time.
    ``motion_stills`` and ``textured`` are the fractions of each batch that are motion stills,
    ``textured_images`` colour x shape stills in textured scenes (see :func:`train_batch`; all 0 train
    on exactly the shape images). ``zero_shot_textured`` in the record is zero-shot top-1 on
    :func:`heldout_textured_images`. ``clip_name``: ``stan-tiny`` (the shipped vocabulary) or
    ``stan-tiny-v2`` (also knows the lighting and scene words ``lighting`` stills use). Deterministic for a given seed
    on a given machine and thread count (fresh images per step are a pure function of
    (seed, step); model init and nothing else draws from torch's generator).
    """
    if steps < 1 or batch_size < 2:
        raise ValueError(f"need steps >= 1 and batch_size >= 2, got steps={steps}, batch_size={batch_size}")
    _check_fractions(motion_stills, textured, textured_images, lighting)
    _check_lighting_words(lighting, clip_name)
    tokenizer = get_tokenizer(clip_name)
    torch.manual_seed(seed)
    clip = create_clip(clip_name)  # random init; open_clip's learnable logit scale starts at 1/0.07
    # the training engine's groups (no decay on norms, biases, embeddings, the logit scale), eps 1e-6,
    # clipping at norm 1 over every parameter in module order
    opt = build_optimizer(clip, lr, weight_decay, lr_mult=1.0, eps=1e-6)
    stepper = Stepper(opt, warmup_cosine(warmup, steps), grad_clip=1.0, clip_params=clip.parameters())
    eval_images, eval_labels = heldout_images(n_eval)
    curve: list[tuple[int, float]] = [(0, zero_shot_accuracy(clip, eval_images, eval_labels))]
    scenes = heldout_textured_images() if textured_images > 0 else None  # its own curve when trained on
    curve_textured = [(0, zero_shot_accuracy(clip, *scenes))] if scenes else []
    losses: list[float] = []
    t0 = time.time()
    bar = tqdm(range(steps), desc="pretrain stan-tiny", disable=not progress)
    for step in bar:
        images, captions = train_batch(seed, step, batch_size, storyboards, motion_stills, textured, textured_images,
                                       lighting, arrow_on_top)
        img = F.normalize(clip.encode_image(images), dim=-1)
        txt = F.normalize(clip.encode_text(tokenizer(captions)), dim=-1)
        loss = info_nce(img, txt, clip.logit_scale.exp().clamp(max=100.0)) / 2  # mean of both directions
        stepper.step(loss)
        losses.append(loss.item())
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            curve.append((step + 1, zero_shot_accuracy(clip, eval_images, eval_labels)))
            shown = {"zero_shot": f"{curve[-1][1]:.1f}%"}
            if scenes:
                curve_textured.append((step + 1, zero_shot_accuracy(clip, *scenes)))
                shown["textured"] = f"{curve_textured[-1][1]:.1f}%"
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", **shown)
    clip.eval()
    record = {
        "clip": clip_name, "seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr,
        "weight_decay": weight_decay, "warmup": warmup, "optimizer": "AdamW(0.9, 0.98, eps 1e-6), cosine, clip 1.0",
        "data": "stanlib.teaching.synth.synth_images: fresh images per step, seed = seed * 1e6 + step",
        "storyboards": storyboards, "motion_stills": motion_stills, "textured": textured,
        "textured_images": textured_images, "lighting": lighting, "arrow_on_top": arrow_on_top,
        "motion_stills_data": ("stanlib.teaching.synth.synth_motion_stills(twins=True), plain then textured, "
                               "after the synth_images part of each batch"),
        "motion_words": motion_zero_shot(clip),
        "motion_phrases": motion_phrases(clip, n_motion_eval, arrow_on_top) if n_motion_eval > 0 else None,
        "lighting_phrases": lighting_phrases(clip, n_motion_eval, clip_name) if lighting > 0 else None,
        "zero_shot_classes": 24, "zero_shot_prompt": "a photo of a {colour} {shape}",
        "heldout": f"{n_eval} images of synth_images(seed={HELDOUT_SEED})",
        "zero_shot_top1": curve[-1][1], "curve": curve,
        "zero_shot_textured": zero_shot_accuracy(clip, *(scenes or heldout_textured_images())),
        "curve_textured": curve_textured,
        "loss_curve": [round(float(np.mean(losses[i:i + 20])), 4) for i in range(0, len(losses), 20)],
        "wall_time_s": round(time.time() - t0, 1), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "machine": platform.machine(),
    }
    return clip, record


def save_tiny(clip: torch.nn.Module, record: dict, out: str | Path) -> Path:
    """Write ``out/<clip>.safetensors`` (fp32 open_clip state dict; ``stan-tiny.safetensors`` for
    ``record["clip"]`` = ``stan-tiny``) and ``out/config.json``."""
    from safetensors.torch import save_file

    name = record.get("clip", CLIP_NAME)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous().clone() for k, v in clip.state_dict().items()}
    save_file(state, str(out / f"{name}.safetensors"), metadata={"clip": name, "seed": str(record.get("seed"))})
    (out / "config.json").write_text(json.dumps(record, indent=1) + "\n")
    return out / f"{name}.safetensors"


def weights_file(path: Optional[str | Path] = None) -> Path:
    """The weights file of a tiny CLIP: ``path`` itself, the one ``stan-tiny*.safetensors`` in a folder,
    or the shipped ``stan-tiny`` (``None``)."""
    if path is None:
        return Path(BUNDLED_TINY)
    file = Path(path)
    if file.is_dir():
        found = sorted(file.glob("stan-tiny*.safetensors"))
        file = found[0] if len(found) == 1 else file / WEIGHTS_NAME
    return file


def training_record(path: str | Path) -> dict:
    """The ``config.json`` :func:`save_tiny` wrote beside a weights file (``{}`` when there is none)."""
    record = Path(path).parent / "config.json"
    return json.loads(record.read_text()) if record.is_file() else {}


def load_tiny(path: Optional[str | Path] = None) -> torch.nn.Module:
    """The tiny teaching CLIP (an ``open_clip.CLIP``, eval mode): the shipped weights by default.

    ``path``: a ``stan-tiny.safetensors`` file or the folder holding it (e.g. ``runs/tiny_clip``).
    For a video model on top of it use ``stanlib.create_model("stan-tiny", pretrained="bundled")``.
    """
    file = weights_file(path)
    if not file.is_file():
        raise FileNotFoundError(f"tiny CLIP weights not found at {file}; create them with "
                                f"`stanlib pretrain-tiny --out {file.parent}`")
    return create_clip(tiny_clip_name(file), pretrained=str(file)).eval()


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
    ap.add_argument("--motion-stills", type=float, default=MOTION_STILLS, metavar="F",
                    help="fraction of each batch that is a motion still on a plain background (a cue names the motion)")
    ap.add_argument("--textured", type=float, default=TEXTURED, metavar="F",
                    help="fraction of each batch that is a motion still on a textured scene with distractors")
    ap.add_argument("--textured-images", type=float, default=TEXTURED_IMAGES, metavar="F",
                    help="fraction of each batch that is a colour x shape still in a textured scene (glyph and blob "
                         "distractors), captioned like the plain shapes")
    ap.add_argument("--lighting", type=float, default=LIGHTING, metavar="F",
                    help="fraction of each batch that is a lighting still ('the scene gets brighter'; needs "
                         "--clip stan-tiny-v2)")
    ap.add_argument("--arrow-on-top", action="store_true",
                    help="rotation stills draw their curved arrow over the shape (head right = clockwise) instead of "
                         "opposite the clock hand")
    ap.add_argument("--clip", default=CLIP_NAME, choices=sorted(assets.TINY_CLIPS),
                    help="tiny CLIP config: stan-tiny (the shipped vocabulary) or stan-tiny-v2 (adds lighting, "
                         "scene and sprite words)")
    ap.add_argument("--eval-every", type=int, default=200, help="steps between zero-shot evaluations")
    ap.add_argument("--out", default="runs/tiny_clip",
                    help="output folder (the shipped model lives in stanlib/assets/tiny_clip)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--evaluate", metavar="WEIGHTS", help="only measure the zero-shot accuracy of a weights file "
                                                          "or folder ('bundled' = the shipped stan-tiny, "
                                                          "'stan-tiny-v2' = the shipped version 2)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.evaluate:
        try:
            named = None if args.evaluate == "bundled" else assets.TINY_CLIPS.get(args.evaluate, args.evaluate)
            file = weights_file(named)
            clip = load_tiny(file)
        except (FileNotFoundError, KeyError, ValueError) as err:
            print(f"stanlib pretrain-tiny: {err}", file=sys.stderr)
            return 2
        arrow_on_top = bool(training_record(file).get("arrow_on_top"))  # draw the cues it learnt to read
        print(f"zero-shot top-1 on 960 held-out images (24 classes): {zero_shot_accuracy(clip):.1f}%; "
              f"on 480 textured scenes: {zero_shot_accuracy(clip, *heldout_textured_images()):.1f}%; "
              f"motion words: {motion_zero_shot(clip)}; "
              f"motion phrases (arrow on top: {arrow_on_top}): {motion_phrases(clip, arrow_on_top=arrow_on_top)}")
        if not _unknown_lighting_words(tiny_clip_name(file)):
            print(f"lighting phrases: {lighting_phrases(clip)}")
        return 0
    try:
        _check_fractions(args.motion_stills, args.textured, args.textured_images, args.lighting)
        _check_lighting_words(args.lighting, args.clip)
    except ValueError as err:
        print(f"stanlib pretrain-tiny: {err}", file=sys.stderr)
        return 2
    command = "stanlib pretrain-tiny " + " ".join(argv)
    clip, record = pretrain(args.seed, args.steps, args.batch_size, args.lr, eval_every=args.eval_every,
                            storyboards=args.storyboards, motion_stills=args.motion_stills,
                            textured=args.textured, textured_images=args.textured_images, lighting=args.lighting,
                            clip_name=args.clip, arrow_on_top=args.arrow_on_top)
    record["command"] = command.strip()
    path = save_tiny(clip, record, args.out)
    print(f"zero-shot top-1 {record['zero_shot_top1']:.1f}% (textured scenes {record['zero_shot_textured']:.1f}%; "
          f"curve {record['curve']}); "
          f"{record['wall_time_s']:.0f} s; wrote {path} and {path.parent / 'config.json'}")
    return 0
