"""The synthetic teaching world: coloured shapes that move, written as real mp4 + annotations.

Real CLIP weights and video datasets cannot be downloaded offline, so the course trains on a tiny
world it can render itself. Every clip shows one shape (colour x shape, both words of
:data:`stanlib.model.tokenizer.TINY_VOCAB`) doing one of ten motions that come in **time-reversed pairs**:

    moves left / right, moves up / down, grows / shrinks, rotates clockwise / counterclockwise,
    fades in / out.

A clip of one class played backwards is *exactly* (bit for bit, in memory) the clip of its partner
class with the same appearance. So a model that ignores frame order (mean pooling) can name the
pair but must guess the direction: 50%. That is the gap STAN's temporal modelling should close.

Design choices (docs/experiments.md 2.4-2.5 measured them): a motion must change things *across 8x8
patches*, not only inside one. Translations travel ~3-4 patches; a rotating shape carries a long
"clock hand" that sweeps ~180 degrees from about 12 o'clock (a spinning circle alone is invisible,
a spinning square is nearly so; from a random start angle no model learnt the direction);
grow/shrink spans ~4x in area.

In memory (no files)::

    from stanlib.teaching.synth import motion_task, render_clip, synth_images
    task = motion_task(n_train=512, n_test=128, seed=0)
    x = task.frames("train")            # uint8 (N, T, H, W, 3)
    y = task.labels("train")            # int64 (N,), classes in task.classes

On disk (the real datasets' formats, read by :mod:`stanlib.data.datasets`)::

    stanlib synth motion --out data/synth/motion --seed 0 --n-train 400 --n-test 100
    stanlib synth all --out data/synth --seed 0      # OUT/motion, OUT/appearance, OUT/captions

(the bundled set's exact commands are in ``data_samples/synth/README.md``).

Layout per task folder: ``videos/<id>.mp4`` plus
  * motion, appearance: SSv2 format ``something-something-v2-{train,validation}.json`` +
    ``labels.json`` (appearance also writes Kinetics-style "path label" lists
    ``{train,val}_list_videos.txt`` + ``label_map_k400.txt``);
  * captions: MSR-VTT format ``MSRVTT_data.json``, ``MSRVTT_train.9k.csv``,
    ``MSRVTT_JSFUSION_test.csv``;
  * every task: ``synth_meta.json`` with each clip's full render spec (colour, shape, motion,
    geometry, twin id), enough to re-render it exactly with :func:`render_clip`.

A second look, ``stanlib synth --style textured`` (:func:`textured_task`, :func:`render_textured`),
tests the training path on videos that do not look like the plain world: noisy colour-gradient
backgrounds, glyphs / soft blobs / striped shapes besides the four shapes, one or two static or
drifting distractors, camera jitter, and a global lighting pair. Its 8 classes are 4 reversal pairs
(moves left / right, up / down, grows / shrinks, the video fades in / out = gets brighter / darker),
written in the ``generic_label`` format (``train.csv``, ``test.csv`` with a ``twin`` column,
``classes.txt``) plus ``synth_meta.json`` (``"style": "textured"``, :class:`TexturedSpec` specs)::

    stanlib synth --style textured --out data/synth/textured --seed 0   # 480 train + 160 test clips

The plain world (``--style plain``, the default) uses none of this code: its clips do not depend on it.

Still images pretrain the tiny CLIP (``stanlib pretrain-tiny``): :func:`synth_images` (shapes captioned
with colour, shape, position) and :func:`synth_motion_stills` (one picture whose cue names a motion,
captioned with the video tasks' phrases: ``"a red circle moves left"``).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

# ----------------------------------------------------------------------------------------------
# The world's vocabulary (every word below is in stanlib.model.tokenizer.TINY_VOCAB; tests check it)
# ----------------------------------------------------------------------------------------------

# Well separated hues that survive h264's 4:2:0 chroma subsampling at 64 px.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 90, 235),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 215),
    "white": (235, 235, 235),
}
# Shapes that stay distinct under any rotation (a rotated square would be a "diamond", a thin
# "bar" would look like the rotation hand, so neither is used).
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")

# Motion keys in class order: partners are adjacent (class 2k and 2k+1 are time reversals).
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "grow", "shrink",
                            "clockwise", "counterclockwise", "fade_in", "fade_out")
PAIRS: tuple[tuple[str, str], ...] = tuple(zip(MOTIONS[0::2], MOTIONS[1::2]))
PAIR_NAMES: tuple[str, ...] = ("left/right", "up/down", "grow/shrink", "rotate cw/ccw", "fade in/out")

# Canonical phrase first; the others are training paraphrases for the captions task.
MOTION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("moves left", "is moving left", "moves to the left"),
    "right": ("moves right", "is moving right", "moves to the right"),
    "up": ("moves up", "is moving up", "moving up"),
    "down": ("moves down", "is moving down", "moving down"),
    "grow": ("grows", "is growing", "grows bigger"),
    "shrink": ("shrinks", "is shrinking", "shrinks smaller"),
    "clockwise": ("rotates clockwise", "is rotating clockwise", "spins clockwise"),
    "counterclockwise": ("rotates counterclockwise", "is rotating counterclockwise",
                         "spins anticlockwise"),
    "fade_in": ("fades in", "is fading in", "appears"),
    "fade_out": ("fades out", "is fading out", "disappears"),
}
# SSv2-style templates of the motion task ("[Something]" is the placeholder, as in real SSv2).
MOTION_TEMPLATES: tuple[str, ...] = tuple(f"[Something] {MOTION_PHRASES[m][0]}" for m in MOTIONS)
MOTION_CLASSES: tuple[str, ...] = tuple(t.replace("[", "").replace("]", "") for t in MOTION_TEMPLATES)
# colour x shape classes (appearance task, tiny-CLIP zero-shot): id = colour_index * 4 + shape_index
APPEARANCE_PAIRS: tuple[tuple[str, str], ...] = tuple((c, s) for c in COLOURS for s in SHAPES)
APPEARANCE_CLASSES: tuple[str, ...] = tuple(f"a {c} {s}" for c, s in APPEARANCE_PAIRS)
ZERO_SHOT_TEMPLATE = "a photo of a {}"

# Still images: 3x3 position grid (row, col) -> phrase.
POSITION_PHRASES: tuple[tuple[str, ...], ...] = (
    ("at the top left", "at the top", "at the top right"),
    ("on the left", "in the middle", "on the right"),
    ("at the bottom left", "at the bottom", "at the bottom right"),
)
IMAGE_PREFIXES: tuple[str, ...] = ("a", "a photo of a", "a picture of a", "an image of a")
CAPTION_SUBJECTS: tuple[str, ...] = ("a {c} {s}", "the {c} {s}", "a video of a {c} {s}")

# Geometry, as fractions of the frame side so other sizes (e.g. 224 px) keep the same look.
RADIUS_RANGE = (0.11, 0.16)        # shape "radius" in videos (7-10 px at 64 px)
IMAGE_RADIUS_RANGE = (0.09, 0.18)  # still images vary more (size words "small"/"big")
TRAVEL_RANGE = (0.40, 0.55)        # translation distance: 26-35 px = 3-4.5 patches of 8 px
SWEEP_RANGE = (150.0, 210.0)       # rotation sweep in degrees
# Bumped whenever the same spec draws render different clips: experiment caches key on it.
# 1: first world; 2: rotations start near 12 o'clock (docs/experiments.md 2.5).
WORLD_VERSION = 2
CLOCK_START = -90.0                # a clockwise clip's hand starts at 12 o'clock (angle 0 = 3 o'clock)...
CLOCK_JITTER = 20.0                # ... +- this many degrees (see sample_spec: why not any angle)
SCALE_RANGE = (0.45, 1.55)         # grow/shrink radius factor, start -> end
HAND_LENGTH = 2.4                  # rotation hand length / radius: the visible "clock hand"
HAND_HALF_WIDTH = 0.28             # hand half width / radius
EXTENT = 1.3                       # max distance of any shape point from its centre / radius
COLOUR_JITTER = 15                 # +- per channel, so "red" is a range, not one value


def partner(motion: str) -> str:
    """The time-reversed partner of a motion key (``"left"`` -> ``"right"``)."""
    i = _motion_index(motion)
    return MOTIONS[i ^ 1]


def pair_index(motion: str) -> int:
    """Index of the reversed pair a motion belongs to (0 = left/right ... 4 = fade in/out)."""
    return _motion_index(motion) // 2


def appearance_label(colour: str, shape: str) -> int:
    """Class id of a colour x shape combination (the order of :data:`APPEARANCE_CLASSES`)."""
    try:
        return APPEARANCE_PAIRS.index((colour, shape))
    except ValueError:
        raise ValueError(f"unknown appearance ({colour!r}, {shape!r}): colours are {list(COLOURS)}, "
                         f"shapes {list(SHAPES)}") from None


def caption_for(colour: str, shape: str, motion: str, variant: int = 0, subject: int = 0) -> str:
    """Caption naming colour, shape and motion: variant 0 / subject 0 is the canonical
    ``"a red circle moves left"``; others are paraphrases ("the red circle is moving left")."""
    phrase = MOTION_PHRASES[motion][variant]
    return f"{CAPTION_SUBJECTS[subject].format(c=colour, s=shape)} {phrase}"


def motion_swaps(caption: str, motion: str) -> list[str]:
    """``caption`` (which names ``motion``) rewritten with every motion's phrase, in
    :data:`MOTIONS` order, keeping its subject and paraphrase variant: ``"the red circle is
    moving left"`` -> ``["the red circle is moving left", "the red circle is moving right", ...,
    "the red circle is fading out"]``. Hard negative captions that differ only in the verb."""
    phrases = MOTION_PHRASES[motion]
    for variant in sorted(range(len(phrases)), key=lambda v: -len(phrases[v])):  # longest match first
        if caption.endswith(" " + phrases[variant]):
            subject = caption[: -len(phrases[variant]) - 1]
            return [f"{subject} {MOTION_PHRASES[m][variant]}" for m in MOTIONS]
    raise ValueError(f"caption {caption!r} does not end with a phrase of motion {motion!r} ({list(phrases)})")


def zero_shot_classes() -> tuple[list[str], list[str]]:
    """The 24 colour x shape classes and their prompt texts (``"a photo of a red circle"``)."""
    names = [f"{c} {s}" for c, s in APPEARANCE_PAIRS]
    return names, [ZERO_SHOT_TEMPLATE.format(n) for n in names]


def _motion_index(motion: str) -> int:
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}; expected one of {list(MOTIONS)}")
    return MOTIONS.index(motion)


# ----------------------------------------------------------------------------------------------
# Clip specification and renderer
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip; :func:`render_clip` is a pure function of it.

    Positions and lengths are in pixels of a ``size`` x ``size`` frame, y pointing down.
    ``(cx, cy)`` is the shape centre halfway through the motion; ``angle`` its orientation in
    degrees then (clockwise positive, as y points down). ``motion=None`` renders a still shape.
    """
    colour: str
    shape: str
    motion: Optional[str]
    rgb: tuple[int, int, int]          # actual colour (the named colour plus jitter)
    background: tuple[int, int, int]   # background colour at the frame centre
    gradient: tuple[float, float]      # background brightness change per pixel along (x, y)
    cx: float
    cy: float
    radius: float
    angle: float = 0.0
    travel: float = 0.0                # translation distance (left/right/up/down)
    sweep: float = 0.0                 # rotation angle swept, degrees (clockwise/counterclockwise)
    scale_from: float = 1.0            # radius factor at the start of "grow" (end of "shrink")
    scale_to: float = 1.0
    size: int = 64
    num_frames: int = 16

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClipSpec":
        d = dict(d)
        for key in ("rgb", "background", "gradient"):
            d[key] = tuple(d[key])
        return cls(**d)


def reverse_spec(spec: ClipSpec) -> ClipSpec:
    """The same appearance with the partner motion: its clip is ``render_clip(spec)[::-1]``."""
    if spec.motion is None:
        raise ValueError("a still spec (motion=None) has no reversed partner")
    return replace(spec, motion=partner(spec.motion))


def _progress(motion: str, i: int, num_frames: int) -> float:
    """Progress along the pair's motion at frame ``i``: 0 -> 1 for the first class of a pair,
    1 -> 0 for its partner. Both are computed from integers, so frame ``i`` of one class has
    bit-identical progress to frame ``T-1-i`` of its partner: exact time reversal."""
    if num_frames == 1:
        return 0.5
    forward = _motion_index(motion) % 2 == 0
    return (i if forward else num_frames - 1 - i) / (num_frames - 1)


def _frame_state(spec: ClipSpec, i: int) -> tuple[float, float, float, float, float]:
    """(cx, cy, radius, angle in degrees, opacity) of the shape in frame ``i``."""
    cx, cy, r, angle, alpha = spec.cx, spec.cy, spec.radius, spec.angle, 1.0
    if spec.motion is None:
        return cx, cy, r, angle, alpha
    s = _progress(spec.motion, i, spec.num_frames)
    pair = pair_index(spec.motion)
    if pair == 0:    # forward = moves left: starts right of centre
        cx = cx + spec.travel * (0.5 - s)
    elif pair == 1:  # forward = moves up: starts below centre (y points down)
        cy = cy + spec.travel * (0.5 - s)
    elif pair == 2:  # forward = grows
        r = r * (spec.scale_from + (spec.scale_to - spec.scale_from) * s)
    elif pair == 3:  # forward = clockwise: the angle increases (y down => clockwise on screen)
        angle = angle + spec.sweep * (s - 0.5)
    else:            # forward = fades in
        alpha = s
    return cx, cy, r, angle, alpha


def _box_sdf(u: np.ndarray, v: np.ndarray, hu: float, hv: float) -> np.ndarray:
    """Signed distance to an axis-aligned box of half sizes (hu, hv) (negative inside)."""
    qu, qv = np.abs(u) - hu, np.abs(v) - hv
    outside = np.sqrt(np.maximum(qu, 0.0) ** 2 + np.maximum(qv, 0.0) ** 2)
    return outside + np.minimum(np.maximum(qu, qv), 0.0)


def _shape_sdf(shape: str, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Signed distance (pixels) to a shape of "radius" r in its own rotated frame (u, v).

    Sizes are chosen so every shape covers roughly the area of a circle of radius r.
    """
    if shape == "circle":
        return np.sqrt(u * u + v * v) - r
    if shape == "square":
        return _box_sdf(u, v, 0.886 * r, 0.886 * r)
    if shape == "triangle":  # equilateral, one vertex up; max over the 3 edges' half-planes
        R = 1.3 * r           # circumradius; the edges lie at distance R/2 from the centre
        d = v - R / 2         # bottom edge (normal points down, +v)
        d = np.maximum(d, -0.8660254037844386 * u - 0.5 * v - R / 2)  # upper-left edge
        return np.maximum(d, 0.8660254037844386 * u - 0.5 * v - R / 2)  # upper-right edge
    if shape == "cross":
        a, w = 1.05 * r, 0.38 * r
        return np.minimum(_box_sdf(u, v, a, w), _box_sdf(u, v, w, a))
    raise ValueError(f"unknown shape {shape!r}; expected one of {list(SHAPES)}")


def _background(spec: ClipSpec) -> np.ndarray:
    """Static (H, W, 3) background: a dark colour with a gentle linear brightness gradient."""
    n = spec.size
    coords = np.arange(n, dtype=np.float64) + 0.5 - n / 2
    ramp = spec.gradient[0] * coords[None, :] + spec.gradient[1] * coords[:, None]
    return np.asarray(spec.background, np.float64)[None, None, :] + ramp[:, :, None]


def render_clip(spec: ClipSpec) -> np.ndarray:
    """Render a clip: uint8 array (T, H, W, 3), deterministic and pure (no randomness here).

    Shapes are drawn from signed distance functions with one pixel of anti-aliasing, so
    sub-pixel motion changes pixel values smoothly. Per-frame trigonometry uses Python scalars
    and the per-pixel work only IEEE-exact operations, so a frame depends only on its state:
    that is what makes partner classes exact time reversals.
    """
    n, T = spec.size, spec.num_frames
    if n < 8 or T < 1:
        raise ValueError(f"clip size {n} px x {T} frames is too small (need size >= 8, frames >= 1)")
    grid = np.arange(n, dtype=np.float64) + 0.5  # pixel centres
    X, Y = grid[None, :], grid[:, None]
    hand = spec.motion in ("clockwise", "counterclockwise")
    background = _background(spec)
    colour = np.asarray(spec.rgb, np.float64)
    out = np.empty((T, n, n, 3), np.uint8)
    for i in range(T):
        cx, cy, r, angle, alpha = _frame_state(spec, i)
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        dx, dy = X - cx, Y - cy
        u, v = c * dx + s * dy, -s * dx + c * dy  # rotate pixels into the shape's frame
        d = _shape_sdf(spec.shape, u, v, r)
        if hand:  # a clock hand along +u makes the rotation visible across patches
            length = HAND_LENGTH * spec.radius
            d = np.minimum(d, _box_sdf(u - length / 2, v, length / 2, HAND_HALF_WIDTH * spec.radius))
        cover = np.clip(0.5 - d, 0.0, 1.0) * alpha
        frame = background * (1.0 - cover[:, :, None]) + colour * cover[:, :, None]
        out[i] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return out


def render_image(spec: ClipSpec) -> np.ndarray:
    """One still frame (H, W, 3) uint8 of a spec (its motion is ignored)."""
    return render_clip(replace(spec, motion=None, num_frames=1))[0]


# ----------------------------------------------------------------------------------------------
# Random specs
# ----------------------------------------------------------------------------------------------

def _jitter(rgb: Sequence[int], rng: np.random.Generator) -> tuple[int, int, int]:
    noise = rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3)
    return tuple(int(x) for x in np.clip(np.asarray(rgb) + noise, 0, 255))


def _random_background(rng: np.random.Generator, size: int) -> tuple[tuple[int, int, int], tuple[float, float]]:
    base = rng.uniform(15, 55)
    rgb = tuple(int(round(base + t)) for t in rng.uniform(-8, 8, size=3))
    gradient = tuple(float(g) for g in rng.uniform(-12, 12, size=2) / size)  # +-12 levels over the frame
    return rgb, gradient


def _half_extent(motion: Optional[str], r: float, travel: float, scale_to: float) -> tuple[float, float]:
    """How far (x, y) the drawing reaches from (cx, cy) over the whole clip."""
    body = EXTENT * r
    if motion in ("left", "right"):
        return travel / 2 + body, body
    if motion in ("up", "down"):
        return body, travel / 2 + body
    if motion in ("grow", "shrink"):
        return body * scale_to, body * scale_to
    if motion in ("clockwise", "counterclockwise"):
        reach = max(body, (HAND_LENGTH + HAND_HALF_WIDTH) * r)
        return reach, reach
    return body, body


def sample_spec(rng: np.random.Generator, colour: str, shape: str, motion: Optional[str],
                size: int = 64, num_frames: int = 16) -> ClipSpec:
    """A random clip of a given colour, shape and motion that stays inside the frame."""
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}; expected one of {list(COLOURS)}")
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {list(SHAPES)}")
    if motion is not None:
        _motion_index(motion)
    r = rng.uniform(*RADIUS_RANGE) * size
    travel = rng.uniform(*TRAVEL_RANGE) * size
    sweep = rng.uniform(*SWEEP_RANGE)
    angle = rng.uniform(0.0, 360.0)
    if motion in ("clockwise", "counterclockwise"):
        # Like a clock: clockwise starts near 12 o'clock (its reversal, counterclockwise, ends there).
        # From ANY start angle the direction is a second-order pattern (the sign of where-x-when
        # flips with the start angle) that no model here learnt: rotation stayed at 35-68%
        # (docs/experiments.md 2.5). `angle` is the mid-motion angle, reusing the draw above.
        angle = CLOCK_START + sweep / 2 + (angle / 180.0 - 1.0) * CLOCK_JITTER
    background, gradient = _random_background(rng, size)
    rgb = _jitter(COLOURS[colour], rng)
    hx, hy = _half_extent(motion, r, travel, SCALE_RANGE[1])
    hx, hy = min(hx, size / 2), min(hy, size / 2)
    cx, cy = rng.uniform(hx, size - hx), rng.uniform(hy, size - hy)
    return ClipSpec(colour=colour, shape=shape, motion=motion, rgb=rgb, background=background,
                    gradient=gradient, cx=float(cx), cy=float(cy), radius=float(r), angle=float(angle),
                    travel=float(travel), sweep=float(sweep), scale_from=SCALE_RANGE[0],
                    scale_to=SCALE_RANGE[1], size=size, num_frames=num_frames)


# ----------------------------------------------------------------------------------------------
# Tasks
# ----------------------------------------------------------------------------------------------

@dataclass
class SynthItem:
    """One clip of a task: its id (also the mp4 file stem), spec, label and caption(s).

    ``twin`` is the id of the clip's exact time reversal in the same split, if there is one.
    """
    id: str
    spec: ClipSpec
    label: int
    caption: str
    captions: list[str] = field(default_factory=list)
    twin: Optional[str] = None

    def frames(self) -> np.ndarray:
        return render_clip(self.spec)


@dataclass
class SynthTask:
    """A task's classes and its train / test items (rendering is lazy: call :meth:`frames`)."""
    name: str
    classes: list[str]
    train: list[SynthItem]
    test: list[SynthItem]
    seed: int

    def split(self, split: str) -> list[SynthItem]:
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
        return self.train if split == "train" else self.test

    def frames(self, split: str, progress: bool = True) -> np.ndarray:
        """uint8 (N, T, H, W, 3) frames of a split, rendered in memory (no decoding)."""
        items = self.split(split)
        if not items:
            raise ValueError(f"the {split} split of task {self.name!r} is empty")
        clips = [it.frames() for it in tqdm(items, desc=f"render {self.name}/{split}",
                                             disable=not progress, leave=False)]
        return np.stack(clips)

    def labels(self, split: str) -> np.ndarray:
        return np.array([it.label for it in self.split(split)], dtype=np.int64)

    def motion_labels(self, split: str) -> np.ndarray:
        """Motion class of every item (0-9, see :data:`MOTIONS`); pair = label // 2."""
        return np.array([_motion_index(it.spec.motion) for it in self.split(split)], dtype=np.int64)


def _rng(seed: int, task: str, split: str) -> np.random.Generator:
    """Independent streams per (seed, task, split): train and test never share random draws."""
    task_code = ("motion", "appearance", "captions", "images", "textured").index(task)
    return np.random.default_rng([seed, task_code, 0 if split == "train" else 1])


def _balanced(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """n labels in [0, k), each class count within one of the others, in random order."""
    return rng.permutation(np.arange(n) % k)


def _random_appearance(rng: np.random.Generator) -> tuple[str, str]:
    return list(COLOURS)[rng.integers(len(COLOURS))], SHAPES[rng.integers(len(SHAPES))]


def _check_counts(n_train: int, n_test: int, size: int, num_frames: int) -> None:
    if n_train < 0 or n_test < 0:
        raise ValueError(f"counts must be >= 0, got n_train={n_train}, n_test={n_test}")
    if size < 8 or num_frames < 2:
        raise ValueError(f"need size >= 8 px and >= 2 frames for motion, got {size} px, {num_frames} frames")


def _twin_items(rng: np.random.Generator, n: int, start: int, prefix: str, size: int, num_frames: int,
                distinct_looks: bool = False) -> list[tuple[str, ClipSpec, Optional[str]]]:
    """n clips as n/2 exact reversal twins, adjacent: (id, spec, twin id). Twin pairs are balanced
    over the 5 motion pairs; ``distinct_looks`` gives every twin pair of the same motion pair a
    different (colour, shape), so no two clips share a caption (needs n/2 <= 5 * 24)."""
    if n % 2:
        raise ValueError(f"a split built from reversed twins needs an even count, got {n}")
    pairs = _balanced(rng, n // 2, len(PAIRS))
    unused = {p: list(rng.permutation(len(APPEARANCE_PAIRS))) for p in range(len(PAIRS))} if distinct_looks else {}
    out = []
    for k, p in enumerate(pairs):
        colour, shape = APPEARANCE_PAIRS[unused[p].pop()] if distinct_looks else _random_appearance(rng)
        first = PAIRS[p][rng.integers(2)]  # which member comes first is random too
        spec = sample_spec(rng, colour, shape, first, size, num_frames)
        a, b = f"{prefix}{start + 2 * k}", f"{prefix}{start + 2 * k + 1}"
        out += [(a, spec, b), (b, reverse_spec(spec), a)]
    return out


def _independent_items(rng: np.random.Generator, n: int, start: int, prefix: str, size: int,
                       num_frames: int, motions: Sequence[Optional[str]],
                       appearances: Sequence[tuple[str, str]]) -> list[tuple[str, ClipSpec, Optional[str]]]:
    return [(f"{prefix}{start + k}", sample_spec(rng, c, s, m, size, num_frames), None)
            for k, (m, (c, s)) in enumerate(zip(motions, appearances))]


def _motion_train_items(rng: np.random.Generator, n: int, prefix: str, size: int, num_frames: int,
                        twins: bool) -> list[tuple[str, ClipSpec, Optional[str]]]:
    """A training split over the 10 motions: reversal twins, or independent clips (balanced
    motions, random looks)."""
    if twins:
        return _twin_items(rng, n, 0, prefix, size, num_frames)
    motions = [MOTIONS[k] for k in _balanced(rng, n, len(MOTIONS))]
    looks = [_random_appearance(rng) for _ in range(n)]
    return _independent_items(rng, n, 0, prefix, size, num_frames, motions, looks)


def motion_task(n_train: int = 400, n_test: int = 100, seed: int = 0, size: int = 64,
                num_frames: int = 16, twin_train: bool = False) -> SynthTask:
    """SSv2-like motion recognition: 10 classes (5 reversed pairs), appearance random.

    The test split is made of exact reversal twins (each clip's partner-class reversal is also
    there), balanced over pairs, so direction accuracy is measured on matched clips. Set
    ``twin_train`` to build the training split the same way (each clip next to its reversal).
    """
    _check_counts(n_train, n_test, size, num_frames)
    train = _motion_train_items(_rng(seed, "motion", "train"), n_train, "", size, num_frames, twin_train)
    test = _twin_items(_rng(seed, "motion", "test"), n_test, n_train, "", size, num_frames)

    def item(id_, spec, twin):
        label = _motion_index(spec.motion)
        return SynthItem(id_, spec, label, MOTION_CLASSES[label], [MOTION_CLASSES[label]], twin)
    return SynthTask("motion", list(MOTION_CLASSES), [item(*t) for t in train], [item(*t) for t in test], seed)


def appearance_task(n_train: int = 400, n_test: int = 100, seed: int = 0, size: int = 64,
                    num_frames: int = 16) -> SynthTask:
    """K400-like appearance recognition: 24 colour x shape classes (balanced), motion random."""
    _check_counts(n_train, n_test, size, num_frames)
    splits = []
    for split, n, start in (("train", n_train, 0), ("test", n_test, n_train)):
        rng = _rng(seed, "appearance", split)
        looks = [APPEARANCE_PAIRS[k] for k in _balanced(rng, n, len(APPEARANCE_PAIRS))]
        motions = [MOTIONS[k] for k in rng.integers(len(MOTIONS), size=n)]
        raw = _independent_items(rng, n, start, "", size, num_frames, motions, looks)
        labels = [appearance_label(spec.colour, spec.shape) for _, spec, _ in raw]
        splits.append([SynthItem(i, spec, y, APPEARANCE_CLASSES[y], [APPEARANCE_CLASSES[y]])
                       for (i, spec, _), y in zip(raw, labels)])
    return SynthTask("appearance", list(APPEARANCE_CLASSES), splits[0], splits[1], seed)


def captions_task(n_train: int = 400, n_test: int = 100, seed: int = 0, size: int = 64,
                  num_frames: int = 16, captions_per_video: int = 3, twin_train: bool = False) -> SynthTask:
    """MSR-VTT-like text-video retrieval; captions name colour, shape and motion.

    The test split holds n_test/2 twin pairs with distinct (colour, shape, motion pair), each
    video once with its canonical caption ("a red circle moves left"): every test caption's
    time-reversed twin ("a red circle moves right", the same frames backwards) is in the set,
    so an order-blind model cannot beat ~50% R@1. Training videos get ``captions_per_video``
    captions (canonical + paraphrases), each a training pair as in MSR-VTT. ``label`` is the
    motion class (for per-pair breakdowns).
    """
    _check_counts(n_train, n_test, size, num_frames)
    combos = len(APPEARANCE_PAIRS) * len(PAIRS)
    if n_test % 2:
        raise ValueError(f"the captions test split is made of reversed twins and needs an even n_test, got {n_test}")
    if n_test > 2 * combos:
        raise ValueError(f"captions test split holds at most {2 * combos} videos with distinct captions "
                         f"({len(APPEARANCE_PAIRS)} appearances x {len(PAIRS)} motion pairs x 2), got {n_test}")
    n_phr = len(MOTION_PHRASES["left"]) * len(CAPTION_SUBJECTS)
    if not 1 <= captions_per_video <= n_phr:
        raise ValueError(f"captions_per_video must be in 1..{n_phr}, got {captions_per_video}")

    rng = _rng(seed, "captions", "train")
    train = _motion_train_items(rng, n_train, "video", size, num_frames, twin_train)
    train_items = []
    for id_, spec, twin in train:
        # canonical caption first, then distinct random paraphrases (variant, subject)
        others = [(v, s) for v in range(len(MOTION_PHRASES["left"])) for s in range(len(CAPTION_SUBJECTS))][1:]
        picks = [(0, 0)] + [others[k] for k in rng.permutation(len(others))[: captions_per_video - 1]]
        caps = [caption_for(spec.colour, spec.shape, spec.motion, v, s) for v, s in picks]
        train_items.append(SynthItem(id_, spec, _motion_index(spec.motion), caps[0], caps, twin))

    # test: twins with distinct (colour, shape, pair) combos, so no two test videos share a caption
    test = _twin_items(_rng(seed, "captions", "test"), n_test, n_train, "video", size, num_frames,
                       distinct_looks=True)
    test_items = [SynthItem(id_, spec, _motion_index(spec.motion), caption_for(spec.colour, spec.shape, spec.motion),
                            [caption_for(spec.colour, spec.shape, spec.motion)], twin)
                  for id_, spec, twin in test]
    return SynthTask("captions", [caption_for(c, s, m) for c, s in APPEARANCE_PAIRS for m in MOTIONS],
                     train_items, test_items, seed)


TASKS = {"motion": motion_task, "appearance": appearance_task, "captions": captions_task}


# ----------------------------------------------------------------------------------------------
# Still images for pretraining the tiny CLIP
# ----------------------------------------------------------------------------------------------

def _image_caption(rng: np.random.Generator, colour: str, shape: str, position: str, size_word: Optional[str]) -> str:
    prefix = IMAGE_PREFIXES[rng.integers(len(IMAGE_PREFIXES))]
    words = [prefix] + ([size_word] if size_word and rng.random() < 0.5 else []) + [colour, shape]
    if rng.random() < 0.8:  # sometimes no position, so short prompts are in-distribution too
        words.append(position)
    return " ".join(words)


STORYBOARD_SWEEP = (60.0, 100.0)  # rotation in a storyboard: < 180 degrees, so cw and ccw differ
STORYBOARD_SUBJECTS: tuple[str, ...] = ("something", "a {c} {s}", "the {c} {s}", "a picture of a {c} {s}")


def storyboard(spec: ClipSpec) -> np.ndarray:
    """A still "before | after" picture of a motion: (size, size, 3) uint8.

    The first and last frames of ``spec``'s clip, each shrunk to half width, side by side in
    the middle band of the image, split by a light line: a still picture that carries a verb,
    for teaching the tiny CLIP the motion words (``stanlib pretrain-tiny --storyboards``). Measured
    (docs/experiments.md 2.5): the CLIP learns the *pair* of motions a storyboard shows, but not
    which panel comes first, and merges each reversed partner's words.
    """
    if spec.motion is None:
        raise ValueError("a storyboard needs a spec with a motion")
    frames = render_clip(replace(spec, num_frames=2)).astype(np.float64)   # (2, n, n, 3)
    n = spec.size
    half = frames.reshape(2, n // 2, 2, n // 2, 2, 3).mean(axis=(2, 4))  # 2x2 average: (2, n/2, n/2, 3)
    out = np.broadcast_to(np.asarray(spec.background, np.float64), (n, n, 3)).copy()
    top = n // 4
    out[top:top + n // 2, : n // 2] = half[0]
    out[top:top + n // 2, n // 2:] = half[1]
    out[top:top + n // 2, n // 2 - 1: n // 2 + 1] = 160.0                 # the panel divider
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def random_storyboard(rng: np.random.Generator, colour: str, shape: str, motion: str, size: int = 64) -> np.ndarray:
    """A :func:`storyboard` of a random clip of this colour, shape and motion (rotation swept by
    :data:`STORYBOARD_SWEEP`, so its two panels tell clockwise from counterclockwise)."""
    spec = sample_spec(rng, colour, shape, motion, size=size, num_frames=2)
    return storyboard(replace(spec, sweep=float(rng.uniform(*STORYBOARD_SWEEP))))


def _storyboard_caption(rng: np.random.Generator, colour: str, shape: str, motion: str) -> str:
    subject = STORYBOARD_SUBJECTS[rng.integers(len(STORYBOARD_SUBJECTS))].format(c=colour, s=shape)
    phrases = MOTION_PHRASES[motion]
    return f"{subject} {phrases[rng.integers(len(phrases))]}"


def synth_images(n: int, seed: int = 0, size: int = 64, storyboards: float = 0.0
                 ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Still images with captions naming colour, shape and position (and sometimes size).

    Returns ``(images uint8 (N, H, W, 3), captions, class_ids int64 (N,))``, class ids indexing
    :func:`zero_shot_classes` (balanced over the 24 classes). Example caption:
    ``"a photo of a red circle at the top left"``. Use different seeds for train and held-out.
    ``storyboards``: the fraction of images that are instead :func:`storyboard` pictures of a
    random motion, captioned with it (``"a red circle moves up"``, ``"something fades out"``).
    """
    if n < 1:
        raise ValueError(f"synth_images needs n >= 1, got {n}")
    if not 0.0 <= storyboards <= 1.0:
        raise ValueError(f"storyboards is a fraction in [0, 1], got {storyboards}")
    rng = _rng(seed, "images", "train")
    ids = _balanced(rng, n, len(APPEARANCE_PAIRS))
    images = np.empty((n, size, size, 3), np.uint8)
    captions = []
    cell = size / 3
    n_story = int(round(storyboards * n))
    for k, cls in enumerate(ids):
        colour, shape = APPEARANCE_PAIRS[cls]
        if k < n_story:  # a balanced, shuffled id order: the first n_story are as random as any
            motion = MOTIONS[rng.integers(len(MOTIONS))]
            images[k] = random_storyboard(rng, colour, shape, motion, size)
            captions.append(_storyboard_caption(rng, colour, shape, motion))
            continue
        r = rng.uniform(*IMAGE_RADIUS_RANGE) * size
        row, col = rng.integers(3), rng.integers(3)
        half = EXTENT * r
        # centre inside its grid cell, jittered, and the whole shape inside the frame
        cx = float(np.clip((col + 0.5) * cell + rng.uniform(-cell / 4, cell / 4), half, size - half))
        cy = float(np.clip((row + 0.5) * cell + rng.uniform(-cell / 4, cell / 4), half, size - half))
        background, gradient = _random_background(rng, size)
        spec = ClipSpec(colour, shape, None, _jitter(COLOURS[colour], rng), background, gradient,
                        cx, cy, float(r), float(rng.uniform(0, 360)), size=size, num_frames=1)
        images[k] = render_image(spec)
        lo, hi = IMAGE_RADIUS_RANGE
        size_word = "small" if r < (lo + (hi - lo) / 3) * size else "big" if r > (hi - (hi - lo) / 3) * size else None
        captions.append(_image_caption(rng, colour, shape, POSITION_PHRASES[row][col], size_word))
    return images, captions, ids.astype(np.int64)


# ----------------------------------------------------------------------------------------------
# The textured world (``stanlib synth --style textured``)
# ----------------------------------------------------------------------------------------------

STYLES: tuple[str, ...] = ("plain", "textured")
# Motion keys in class order: partners are adjacent (class 2k and 2k+1 are time reversals).
TEXTURED_MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "grow", "shrink", "brighter", "darker")
TEXTURED_PAIR_NAMES: tuple[str, ...] = ("left/right", "up/down", "grow/shrink", "brighter/darker")
# "brighter", "darker" and "gets" are not tiny-CLIP words: the lighting pair is named with film's
# "fades in" (from dark) / "fades out" (to dark), said of the whole video.
TEXTURED_CLASSES: tuple[str, ...] = ("Something moves left", "Something moves right", "Something moves up",
                                     "Something moves down", "Something grows", "Something shrinks",
                                     "The video fades in", "The video fades out")
SPRITE_KINDS: tuple[str, ...] = ("shape", "glyph", "blob", "stripes")
STRIPED_SHAPES: tuple[str, ...] = ("circle", "square")
# Letters as strokes (u right, v down, in units of the sprite radius): sharp, scalable, no font files.
GLYPHS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "A": ((-0.7, 1.0, 0.0, -1.0), (0.0, -1.0, 0.7, 1.0), (-0.38, 0.3, 0.38, 0.3)),
    "E": ((-0.6, -1.0, -0.6, 1.0), (-0.6, -1.0, 0.6, -1.0), (-0.6, 0.0, 0.4, 0.0), (-0.6, 1.0, 0.6, 1.0)),
    "F": ((-0.6, -1.0, -0.6, 1.0), (-0.6, -1.0, 0.6, -1.0), (-0.6, 0.0, 0.4, 0.0)),
    "H": ((-0.6, -1.0, -0.6, 1.0), (0.6, -1.0, 0.6, 1.0), (-0.6, 0.0, 0.6, 0.0)),
    "K": ((-0.6, -1.0, -0.6, 1.0), (-0.6, 0.2, 0.6, -1.0), (-0.25, -0.15, 0.6, 1.0)),
    "L": ((-0.6, -1.0, -0.6, 1.0), (-0.6, 1.0, 0.6, 1.0)),
    "M": ((-0.7, 1.0, -0.7, -1.0), (-0.7, -1.0, 0.0, 0.3), (0.0, 0.3, 0.7, -1.0), (0.7, -1.0, 0.7, 1.0)),
    "N": ((-0.6, 1.0, -0.6, -1.0), (-0.6, -1.0, 0.6, 1.0), (0.6, 1.0, 0.6, -1.0)),
    "T": ((-0.7, -1.0, 0.7, -1.0), (0.0, -1.0, 0.0, 1.0)),
    "V": ((-0.7, -1.0, 0.0, 1.0), (0.0, 1.0, 0.7, -1.0)),
    "X": ((-0.65, -1.0, 0.65, 1.0), (-0.65, 1.0, 0.65, -1.0)),
    "Y": ((-0.7, -1.0, 0.0, 0.0), (0.7, -1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
    "Z": ((-0.6, -1.0, 0.6, -1.0), (0.6, -1.0, -0.6, 1.0), (-0.6, 1.0, 0.6, 1.0)),
    "4": ((0.3, 1.0, 0.3, -1.0), (0.3, -1.0, -0.7, 0.4), (-0.7, 0.4, 0.7, 0.4)),
    "7": ((-0.6, -1.0, 0.6, -1.0), (0.6, -1.0, -0.2, 1.0)),
}
GLYPH_HALF_WIDTH = 0.18             # stroke half width / radius
GLYPH_TILT = 30.0                   # glyphs lean at most this many degrees (they stay readable)
BLOB_EDGE, BLOB_SOFT = 1.2, 0.5     # a blob fades out between (EDGE - SOFT) and EDGE radii
BLOB_ASPECT = (0.8, 1.25)           # blob ellipse axis ratio
STRIPE_PERIOD = (0.55, 0.85)        # stripe period / radius
TEXTURED_EXTENT = 1.5               # max distance of any sprite point from its centre / radius
DISTRACTOR_RADIUS = (0.06, 0.10)    # distractors are smaller than the main sprite (RADIUS_RANGE)
DISTRACTOR_DRIFT = (0.03, 0.08)     # a drifting distractor travels this fraction of the frame
JITTER_MAX = 2                      # camera offset in pixels, per axis, any frame
LIGHTING_FROM, LIGHTING_TO = (0.35, 0.55), (1.0, 1.15)  # "fades in": brightness gain start -> end
STEADY_GAIN = (0.75, 1.05)          # constant brightness gain of the object-motion classes
CORNER_RANGE = (20, 200)            # background corner colours, per channel
WAVE_AMPLITUDE = (4.0, 16.0)        # background ripples: grey levels
WAVE_CYCLES = (0.7, 3.0)            # ripples across the frame
TEXTURE_NOISE = (3.0, 10.0)         # static per-pixel grey background noise, std in grey levels
FRAME_NOISE = (0.5, 2.5)            # fresh per-frame grey sensor noise, std in grey levels
MIN_CONTRAST = 110.0                # RGB distance of a sprite colour from the mean background


@dataclass(frozen=True)
class Sprite:
    """One object of a textured clip, in pixels of the frame (y down) halfway through the clip.

    ``kind`` is one of :data:`SPRITE_KINDS`; ``detail`` the shape (``shape``: any of :data:`SHAPES`,
    ``stripes``: circle or square), the letter of :data:`GLYPHS` (``glyph``) or ``""`` (``blob``).
    ``rgb2`` is the second stripe colour, ``aspect`` a blob's axis ratio, ``period`` the stripe period
    over the radius, ``drift`` the (x, y) distance the sprite drifts over the clip (distractors).
    """
    kind: str
    detail: str
    rgb: tuple[int, int, int]
    rgb2: tuple[int, int, int]
    cx: float
    cy: float
    radius: float
    angle: float = 0.0
    aspect: float = 1.0
    period: float = 0.7
    drift: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def from_dict(cls, d: dict) -> "Sprite":
        d = dict(d)
        for key in ("rgb", "rgb2", "drift"):
            d[key] = tuple(d[key])
        return cls(**d)


@dataclass(frozen=True)
class TexturedSpec:
    """Everything needed to render one textured clip; :func:`render_textured` is a pure function of it.

    The fields describe the *forward* clip of the motion's pair (moves left, moves up, grows, gets
    brighter) frame by frame: ``jitter[i]`` is the camera offset (dx, dy) of its frame ``i``. A spec
    whose motion is the second of a pair renders as that forward clip played backwards, so twins
    (:func:`reverse_textured_spec`) are exact reversals of everything: motion, jitter, distractor
    drift and noise. Lighting scales the whole frame by a gain from ``gain_from`` to ``gain_to``
    (equal for the object motions).
    """
    motion: str
    sprite: Sprite
    distractors: tuple[Sprite, ...]
    corners: tuple[tuple[int, int, int], ...]             # background colours: top left, top right,
                                                          # bottom left, bottom right
    waves: tuple[tuple[float, float, float, float], ...]  # background ripples: (amplitude, cycles
                                                          # per px in x, in y, phase)
    noise_seed: int
    texture_noise: float
    frame_noise: float
    jitter: tuple[tuple[int, int], ...]
    travel: float = 0.0
    scale_from: float = 1.0
    scale_to: float = 1.0
    gain_from: float = 1.0
    gain_to: float = 1.0
    size: int = 64
    num_frames: int = 16

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TexturedSpec":
        d = dict(d)
        d["sprite"] = Sprite.from_dict(d["sprite"])
        d["distractors"] = tuple(Sprite.from_dict(x) for x in d["distractors"])
        for key in ("corners", "waves", "jitter"):
            d[key] = tuple(tuple(x) for x in d[key])
        return cls(**d)


def _textured_index(motion: str) -> int:
    if motion not in TEXTURED_MOTIONS:
        raise ValueError(f"unknown textured motion {motion!r}; expected one of {list(TEXTURED_MOTIONS)}")
    return TEXTURED_MOTIONS.index(motion)


def reverse_textured_spec(spec: TexturedSpec) -> TexturedSpec:
    """The partner class of the same clip: its frames are ``render_textured(spec)[::-1]``."""
    return replace(spec, motion=TEXTURED_MOTIONS[_textured_index(spec.motion) ^ 1])


def _segment_distance(u: np.ndarray, v: np.ndarray, seg: tuple[float, float, float, float], scale: float) -> np.ndarray:
    """Distance (pixels) from (u, v) to a stroke segment given in units of ``scale``."""
    au, av, bu, bv = (c * scale for c in seg)
    pu, pv, du, dv = u - au, v - av, bu - au, bv - av
    h = np.clip((pu * du + pv * dv) / (du * du + dv * dv), 0.0, 1.0)
    return np.sqrt((pu - du * h) ** 2 + (pv - dv * h) ** 2)


def _sprite_layer(sp: Sprite, X: np.ndarray, Y: np.ndarray, cx: float, cy: float, r: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(coverage (H, W) in [0, 1], colour (3,) or (H, W, 3)) of a sprite centred at (cx, cy), radius r."""
    c, s = math.cos(math.radians(sp.angle)), math.sin(math.radians(sp.angle))
    dx, dy = X - cx, Y - cy
    u, v = c * dx + s * dy, -s * dx + c * dy
    colour = np.asarray(sp.rgb, np.float64)
    if sp.kind == "shape":
        return np.clip(0.5 - _shape_sdf(sp.detail, u, v, r), 0.0, 1.0), colour
    if sp.kind == "glyph":
        if sp.detail not in GLYPHS:
            raise ValueError(f"unknown glyph {sp.detail!r}; expected one of {list(GLYPHS)}")
        d = np.min([_segment_distance(u, v, seg, r) for seg in GLYPHS[sp.detail]], axis=0) - GLYPH_HALF_WIDTH * r
        return np.clip(0.5 - d, 0.0, 1.0), colour
    if sp.kind == "blob":
        q = np.sqrt((u / (r * sp.aspect)) ** 2 + (v * sp.aspect / r) ** 2)
        t = np.clip((BLOB_EDGE - q) / BLOB_SOFT, 0.0, 1.0)
        return t * t * (3.0 - 2.0 * t), colour
    if sp.kind == "stripes":
        cover = np.clip(0.5 - _shape_sdf(sp.detail, u, v, r), 0.0, 1.0)
        period = sp.period * r
        phase = u / period
        f = np.abs(phase - np.floor(phase) - 0.5)          # 0 mid-stripe of rgb2, 0.5 mid-stripe of rgb
        mix = np.clip(0.5 - (f - 0.25) * period, 0.0, 1.0)  # anti-aliased stripe edges
        return cover, colour * (1.0 - mix[:, :, None]) + np.asarray(sp.rgb2, np.float64) * mix[:, :, None]
    raise ValueError(f"unknown sprite kind {sp.kind!r}; expected one of {list(SPRITE_KINDS)}")


def _paint(canvas: np.ndarray, layer: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    cover, colour = layer
    return canvas * (1.0 - cover[:, :, None]) + colour * cover[:, :, None]


def _textured_background(spec: TexturedSpec, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Static background on the padded canvas: a bilinear blend of 4 corner colours, sine ripples
    and per-pixel grey noise."""
    n = spec.size
    ax, ay = (X / n)[:, :, None], (Y / n)[:, :, None]
    tl, tr, bl, br = (np.asarray(c, np.float64) for c in spec.corners)
    out = (tl * (1.0 - ax) + tr * ax) * (1.0 - ay) + (bl * (1.0 - ax) + br * ax) * ay
    for amp, fx, fy, phase in spec.waves:
        out = out + (amp * np.sin(2.0 * math.pi * (fx * X + fy * Y) + phase))[:, :, None]
    noise = np.random.default_rng([spec.noise_seed, 0]).normal(0.0, spec.texture_noise, (*out.shape[:2], 1))
    return out + noise  # grey noise: h264's 4:2:0 chroma would blur colour noise away


def render_textured(spec: TexturedSpec) -> np.ndarray:
    """Render a textured clip: uint8 array (T, H, W, 3), deterministic and pure.

    The scene is drawn on a canvas :data:`JITTER_MAX` pixels larger on every side, each frame's view
    cut at its camera offset, scaled by the lighting gain, plus fresh sensor noise. The second class
    of a pair is the first class's clip reversed, frame for frame.
    """
    k = _textured_index(spec.motion)
    if k % 2:
        return np.ascontiguousarray(render_textured(replace(spec, motion=TEXTURED_MOTIONS[k - 1]))[::-1])
    n, T, J = spec.size, spec.num_frames, JITTER_MAX
    if n < 8 or T < 1:
        raise ValueError(f"clip size {n} px x {T} frames is too small (need size >= 8, frames >= 1)")
    if len(spec.jitter) != T:
        raise ValueError(f"jitter holds {len(spec.jitter)} offsets for {T} frames")
    grid = np.arange(n + 2 * J, dtype=np.float64) + 0.5 - J  # canvas pixel centres, frame coordinates
    X, Y = np.broadcast_arrays(grid[None, :], grid[:, None])
    background = _textured_background(spec, X, Y)
    sensor = np.random.default_rng([spec.noise_seed, 1]).normal(0.0, spec.frame_noise, (T, n, n, 1))
    pair = k // 2
    main = spec.sprite
    out = np.empty((T, n, n, 3), np.uint8)
    for i in range(T):
        s = i / (T - 1) if T > 1 else 0.5
        canvas = background
        for d in spec.distractors:
            canvas = _paint(canvas, _sprite_layer(d, X, Y, d.cx + d.drift[0] * (s - 0.5),
                                                  d.cy + d.drift[1] * (s - 0.5), d.radius))
        cx, cy, r = main.cx, main.cy, main.radius
        if pair == 0:    # moves left: starts right of centre
            cx = cx + spec.travel * (0.5 - s)
        elif pair == 1:  # moves up: starts below centre (y points down)
            cy = cy + spec.travel * (0.5 - s)
        elif pair == 2:  # grows
            r = r * (spec.scale_from + (spec.scale_to - spec.scale_from) * s)
        gain = spec.gain_from + (spec.gain_to - spec.gain_from) * s
        canvas = _paint(canvas, _sprite_layer(main, X, Y, cx, cy, r))
        jx, jy = spec.jitter[i]
        view = canvas[J + jy: J + jy + n, J + jx: J + jx + n]
        out[i] = np.clip(np.rint(view * gain + sensor[i]), 0, 255).astype(np.uint8)
    return out


def _contrasting(rng: np.random.Generator, against: np.ndarray, distance: float = MIN_CONTRAST) -> tuple[int, int, int]:
    """A random colour at least ``distance`` (RGB) away from ``against`` (the last try if none is)."""
    for _ in range(64):
        rgb = rng.integers(0, 256, size=3)
        if np.linalg.norm(rgb - against) >= distance:
            break
    return tuple(int(x) for x in rgb)


def _random_sprite(rng: np.random.Generator, background: np.ndarray, radius: float) -> Sprite:
    """A sprite of a random kind and colour (positioned at the origin: the caller places it)."""
    kind = SPRITE_KINDS[rng.integers(len(SPRITE_KINDS))]
    detail = {"shape": lambda: SHAPES[rng.integers(len(SHAPES))],
              "glyph": lambda: list(GLYPHS)[rng.integers(len(GLYPHS))],
              "blob": lambda: "",
              "stripes": lambda: STRIPED_SHAPES[rng.integers(len(STRIPED_SHAPES))]}[kind]()
    rgb = _contrasting(rng, background)
    rgb2 = _contrasting(rng, np.asarray(rgb), MIN_CONTRAST)
    angle = float(rng.uniform(-GLYPH_TILT, GLYPH_TILT) if kind == "glyph" else rng.uniform(0.0, 360.0))
    return Sprite(kind, detail, rgb, rgb2, 0.0, 0.0, float(radius), angle,
                  aspect=float(rng.uniform(*BLOB_ASPECT)), period=float(rng.uniform(*STRIPE_PERIOD)))


def sample_textured_spec(rng: np.random.Generator, motion: str, size: int = 64, num_frames: int = 16) -> TexturedSpec:
    """A random textured clip of a given motion (:data:`TEXTURED_MOTIONS`) whose main sprite stays inside the frame."""
    pair = _textured_index(motion) // 2
    corners = tuple(tuple(int(x) for x in rng.integers(CORNER_RANGE[0], CORNER_RANGE[1] + 1, size=3)) for _ in range(4))
    waves = []
    for _ in range(int(rng.integers(1, 3))):
        cycles, theta = rng.uniform(*WAVE_CYCLES) / size, rng.uniform(0.0, 2 * math.pi)
        waves.append((float(rng.uniform(*WAVE_AMPLITUDE)), float(cycles * math.cos(theta)),
                      float(cycles * math.sin(theta)), float(rng.uniform(0.0, 2 * math.pi))))
    mean = np.mean(np.asarray(corners, np.float64), axis=0)
    sprite = _random_sprite(rng, mean, rng.uniform(*RADIUS_RANGE) * size)
    travel = float(rng.uniform(*TRAVEL_RANGE) * size)
    body = TEXTURED_EXTENT * sprite.radius
    hx = travel / 2 + body if pair == 0 else body * (SCALE_RANGE[1] if pair == 2 else 1.0)
    hy = travel / 2 + body if pair == 1 else body * (SCALE_RANGE[1] if pair == 2 else 1.0)
    hx, hy = min(hx, size / 2), min(hy, size / 2)
    sprite = replace(sprite, cx=float(rng.uniform(hx, size - hx)), cy=float(rng.uniform(hy, size - hy)))
    distractors = []
    for _ in range(int(rng.integers(1, 3))):
        d = _random_sprite(rng, mean, rng.uniform(*DISTRACTOR_RADIUS) * size)
        drift = (0.0, 0.0)
        if rng.random() < 0.5:
            length, theta = rng.uniform(*DISTRACTOR_DRIFT) * size, rng.uniform(0.0, 2 * math.pi)
            drift = (float(length * math.cos(theta)), float(length * math.sin(theta)))
        margin = d.radius
        distractors.append(replace(d, cx=float(rng.uniform(margin, size - margin)),
                                   cy=float(rng.uniform(margin, size - margin)), drift=drift))
    if pair == 3:  # gets brighter
        gain_from, gain_to = float(rng.uniform(*LIGHTING_FROM)), float(rng.uniform(*LIGHTING_TO))
    else:
        gain_from = gain_to = float(rng.uniform(*STEADY_GAIN))
    offset = rng.integers(-JITTER_MAX, JITTER_MAX + 1, size=2)
    jitter = []
    for _ in range(num_frames):  # a random walk of at most a pixel per axis and frame, within +-JITTER_MAX
        jitter.append((int(offset[0]), int(offset[1])))
        offset = np.clip(offset + rng.integers(-1, 2, size=2), -JITTER_MAX, JITTER_MAX)
    return TexturedSpec(motion=motion, sprite=sprite, distractors=tuple(distractors), corners=corners,
                        waves=tuple(waves), noise_seed=int(rng.integers(2**31)),
                        texture_noise=float(rng.uniform(*TEXTURE_NOISE)), frame_noise=float(rng.uniform(*FRAME_NOISE)),
                        jitter=tuple(jitter), travel=travel, scale_from=SCALE_RANGE[0], scale_to=SCALE_RANGE[1],
                        gain_from=gain_from, gain_to=gain_to, size=size, num_frames=num_frames)


TEXTURED_IMAGE_TRIES = 16           # scenes drawn until the named colour stands out from the background


def synth_textured_images(n: int, seed: int = 0, size: int = 64) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Still colour x shape images in the textured world's scenes, captioned like :func:`synth_images`.

    One shape of a named colour (:data:`COLOURS` x :data:`SHAPES`) on a textured background (corner
    blend, ripples, noise) with 1-2 distractor sprites that are never shapes (glyphs or blobs, so the
    caption names the only shape in the picture), under a steady lighting gain and sensor noise:
    a frame of :func:`render_textured`. Captions name colour, shape and (80%) position:
    ``"a photo of a red circle at the top left"``. Returns ``(images uint8 (N, H, W, 3), captions,
    class_ids int64 (N,))``, class ids indexing :func:`zero_shot_classes`, balanced; deterministic
    for a seed (a stream no other generator draws from). The tiny CLIP learns to name shapes in
    such scenes from these images (docs/experiments.md section 1).
    """
    if n < 1:
        raise ValueError(f"synth_textured_images needs n >= 1, got {n}")
    rng = np.random.default_rng([seed, 6])
    ids = _balanced(rng, n, len(APPEARANCE_PAIRS))
    images = np.empty((n, size, size, 3), np.uint8)
    captions = []
    cell = size / 3
    for k, cls in enumerate(ids):
        colour, shape = APPEARANCE_PAIRS[cls]
        rgb = _jitter(COLOURS[colour], rng)
        for _ in range(TEXTURED_IMAGE_TRIES):  # a scene whose mean colour lets the shape stand out
            # "brighter": the sprite may sit anywhere in the frame (no travel); its lighting made steady below
            scene = sample_textured_spec(rng, "brighter", size, num_frames=1)
            if np.linalg.norm(np.mean(np.asarray(scene.corners, np.float64), axis=0) - rgb) >= MIN_CONTRAST:
                break
        main = replace(scene.sprite, kind="shape", detail=shape, rgb=rgb)
        distractors = []
        for d in scene.distractors:  # glyphs and blobs only: the named shape is the only shape
            if d.kind in ("shape", "stripes"):
                glyph = rng.random() < 0.5
                d = replace(d, kind="glyph" if glyph else "blob",
                            detail=list(GLYPHS)[int(rng.integers(len(GLYPHS)))] if glyph else "")
            distractors.append(d)
        gain = float(rng.uniform(*STEADY_GAIN))
        spec = replace(scene, sprite=main, distractors=tuple(distractors), gain_from=gain, gain_to=gain)
        images[k] = render_textured(spec)[0]
        row = min(int(main.cy // cell), 2)
        col = min(int(main.cx // cell), 2)
        captions.append(_image_caption(rng, colour, shape, POSITION_PHRASES[row][col], None))
    return images, captions, ids.astype(np.int64)


@dataclass
class TexturedItem(SynthItem):
    """A clip of the textured world (``spec`` is a :class:`TexturedSpec`)."""

    def frames(self) -> np.ndarray:
        return render_textured(self.spec)


@dataclass
class TexturedTask(SynthTask):
    """The textured world's task: labels index :data:`TEXTURED_CLASSES` (= :data:`TEXTURED_MOTIONS`)."""

    def motion_labels(self, split: str) -> np.ndarray:
        """Motion class of every item (0-7, see :data:`TEXTURED_MOTIONS`); pair = label // 2."""
        return self.labels(split)


def textured_task(n_train: int = 480, n_test: int = 160, seed: int = 0, size: int = 64,
                  num_frames: int = 16, twin_train: bool = False) -> TexturedTask:
    """Motion recognition in the textured world: 8 classes (4 reversal pairs, :data:`TEXTURED_CLASSES`).

    The test split is made of exact reversal twins, balanced over the pairs; the training split of
    independent clips balanced over the classes, or of twins too with ``twin_train``.
    """
    _check_counts(n_train, n_test, size, num_frames)
    for split, n, twins in (("train", n_train, twin_train), ("test", n_test, True)):
        if twins and n % 2:
            raise ValueError(f"the {split} split is made of reversed twins and needs an even count, got {n}")

    def item(id_, spec, twin):
        label = _textured_index(spec.motion)
        return TexturedItem(id_, spec, label, TEXTURED_CLASSES[label], [TEXTURED_CLASSES[label]], twin)

    splits = []
    for split, n, start, twins in (("train", n_train, 0, twin_train), ("test", n_test, n_train, True)):
        rng = _rng(seed, "textured", split)
        items = []
        if twins:
            for k, p in enumerate(_balanced(rng, n // 2, len(TEXTURED_PAIR_NAMES))):
                spec = sample_textured_spec(rng, TEXTURED_MOTIONS[2 * p + rng.integers(2)], size, num_frames)
                a, b = str(start + 2 * k), str(start + 2 * k + 1)
                items += [item(a, spec, b), item(b, reverse_textured_spec(spec), a)]
        else:
            for k, m in enumerate(_balanced(rng, n, len(TEXTURED_MOTIONS))):
                items.append(item(str(start + k), sample_textured_spec(rng, TEXTURED_MOTIONS[m], size, num_frames),
                                  None))
        splits.append(items)
    return TexturedTask("textured", list(TEXTURED_CLASSES), splits[0], splits[1], seed)


# ----------------------------------------------------------------------------------------------
# Motion stills: single images whose motion cue names the direction
# ----------------------------------------------------------------------------------------------

# Captions of a motion still: a subject of the video captions (or the class names' "something")
# followed by a phrase of MOTION_PHRASES, so motion_swaps rewrites them.
MOTION_STILL_SUBJECTS: tuple[str, ...] = CAPTION_SUBJECTS + ("something",)
STILL_RADIUS_RANGE = (0.11, 0.15)         # shape radius / frame side
STILL_TRAIL = (0.20, 0.30)                # translation: smear length / frame side
STILL_TRAIL_GHOSTS = 16                   # copies that make up a smear
STILL_TRAIL_ALPHA = (0.08, 0.7)           # opacity of a smear's oldest and newest copy
STILL_GROW_GHOSTS = (0.3, 0.55, 0.8)      # grows: earlier radii / now, oldest first (rings inside)
STILL_SHRINK_GHOSTS = (2.0, 1.65, 1.3)    # shrinks: earlier radii / now, oldest first (outlines around)
STILL_GHOST_ALPHA = (0.35, 0.6, 0.85)     # opacity of those outlines, oldest first
STILL_OUTLINE = 0.7                       # outline half width, pixels
STILL_SWEEP = (80.0, 130.0)               # rotation: degrees swept by the ghost hands and the arrow
STILL_HAND_GHOSTS = 6                     # ghost hands of a rotation
STILL_HAND_ALPHA = (0.1, 0.45)            # their opacity, oldest and newest
ARROW_RADIUS = 1.75                       # rotation arrow: arc radius / shape radius
ARROW_HALF_WIDTH = 0.9                    # arc half width, pixels
ARROW_HEAD = (0.9, 0.6)                   # arrowhead length and half width / shape radius
STILL_FADE_RADIUS = 0.75                  # fades: the copies' radius / the shape's
STILL_FADE_ALPHA = (0.15, 0.5, 1.0)       # fades in: the copies' opacity left to right (fades out: reversed)
STILL_CONTRAST = 90.0                     # textured scenes: least RGB distance of a corner from the shape
CUE_GREY = 200.0                          # grey level of the rotation arrow and the fade dividers
_STILL_DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


@dataclass(frozen=True)
class MotionStillSpec:
    """Everything needed to render one motion still; :func:`render_motion_still` is a pure function of it.

    Pixels of a ``size`` x ``size`` image, y down. ``(cx, cy)``, ``radius`` and ``angle`` give the
    shape now (a rotating shape's clock hand points along ``angle``); the cue shows its past. The
    spec does not depend on the direction within a pair: ``replace(spec, motion=partner(motion))``
    draws the same shape with the reversed cue. Plain scenes use ``background`` and ``gradient`` (as
    :class:`ClipSpec`); a textured scene (``corners`` set) the textured world's background, grey
    noise and static ``distractors``.
    """
    colour: str
    shape: str
    motion: str
    rgb: tuple[int, int, int]
    cx: float
    cy: float
    radius: float
    angle: float = 0.0
    trail: float = 0.0                 # translation: smear length, pixels
    sweep: float = 90.0                # rotation: degrees of ghost hands and of the arrow arc
    arrow_angle: Optional[float] = None  # rotation: direction (degrees, y down) of the arrow's middle from the
                                         # centre; None: opposite the hand (-90: above the shape)
    background: tuple[int, int, int] = (30, 30, 30)
    gradient: tuple[float, float] = (0.0, 0.0)
    corners: tuple[tuple[int, int, int], ...] = ()
    waves: tuple[tuple[float, float, float, float], ...] = ()
    noise_seed: int = 0
    texture_noise: float = 0.0
    frame_noise: float = 0.0
    distractors: tuple[Sprite, ...] = ()
    size: int = 64

    @property
    def textured(self) -> bool:
        return bool(self.corners)


def _polygon_sdf(X: np.ndarray, Y: np.ndarray, points: Sequence[tuple[float, float]]) -> np.ndarray:
    """Approximate signed distance to a convex polygon (exact inside and along the edges)."""
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]))
    sign = 1.0 if area > 0 else -1.0
    d = None
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        ex, ey = x1 - x0, y1 - y0
        length = math.hypot(ex, ey)
        edge = sign * ((X - x0) * ey - (Y - y0) * ex) / length  # > 0 outside this edge
        d = edge if d is None else np.maximum(d, edge)
    return d


def _arrow_sdf(X: np.ndarray, Y: np.ndarray, cx: float, cy: float, radius: float, start: float, span: float,
               head: tuple[float, float]) -> np.ndarray:
    """Signed distance to a curved arrow around (cx, cy): an arc of ``radius`` from angle ``start``
    over ``span`` degrees (positive = clockwise on screen, y down) with its head at the end."""
    phi = np.degrees(np.arctan2(Y - cy, X - cx))
    lo = start if span > 0 else start + span
    inside = np.mod(phi - lo, 360.0) <= abs(span)
    ends = [(cx + radius * math.cos(math.radians(a)), cy + radius * math.sin(math.radians(a)))
            for a in (start, start + span)]
    to_ends = np.minimum(*[np.hypot(X - x, Y - y) for x, y in ends])
    arc = np.where(inside, np.abs(np.hypot(X - cx, Y - cy) - radius), to_ends) - ARROW_HALF_WIDTH
    end = math.radians(start + span)
    sense = 1.0 if span > 0 else -1.0
    tx, ty = -math.sin(end) * sense, math.cos(end) * sense   # the tangent in the sense of rotation
    nx, ny = math.cos(end), math.sin(end)                    # the radial direction
    (ex, ey), (length, half) = ends[1], head
    tip = (ex + tx * length, ey + ty * length)
    wings = [(ex + nx * half, ey + ny * half), (ex - nx * half, ey - ny * half)]
    return np.minimum(arc, _polygon_sdf(X, Y, [tip, *wings]))


def render_motion_still(spec: MotionStillSpec) -> np.ndarray:
    """Render a motion still: uint8 (H, W, 3), deterministic and pure.

    The shape now is drawn solid and its past as a cue whose side or sense names the direction:

    * moves left / right / up / down: a smear of fading copies behind the shape, towards where it
      came from (the oldest, faintest, furthest away);
    * grows: concentric outlines of its earlier, smaller sizes inside the shape;
    * shrinks: faint outlines of its earlier, larger sizes around the shape;
    * rotates clockwise / counterclockwise: fading ghosts of the clock hand's earlier angles behind
      it, and a grey curved arrow on the far side pointing in the sense of rotation;
    * fades in / out: three smaller copies in a row split by grey dividers, their opacity rising
      (fades in) or falling (fades out) from left to right.
    """
    n = spec.size
    if n < 8:
        raise ValueError(f"image size {n} px is too small (need size >= 8)")
    k = _motion_index(spec.motion)
    pair, sense = k // 2, (1.0 if k % 2 == 0 else -1.0)
    grid = np.arange(n, dtype=np.float64) + 0.5
    X, Y = np.broadcast_arrays(grid[None, :], grid[:, None])
    if spec.textured:
        canvas = _textured_background(spec, X, Y)
        for d in spec.distractors:
            canvas = _paint(canvas, _sprite_layer(d, X, Y, d.cx, d.cy, d.radius))
    else:
        canvas = _background(spec)
    colour = np.asarray(spec.rgb, np.float64)
    hand = pair == 3

    def sdf(cx: float, cy: float, r: float, angle: float) -> np.ndarray:
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        dx, dy = X - cx, Y - cy
        u, v = c * dx + s * dy, -s * dx + c * dy
        d = _shape_sdf(spec.shape, u, v, r)
        if hand:
            length = HAND_LENGTH * spec.radius
            d = np.minimum(d, _box_sdf(u - length / 2, v, length / 2, HAND_HALF_WIDTH * spec.radius))
        return d

    def solid(d: np.ndarray) -> np.ndarray:
        return np.clip(0.5 - d, 0.0, 1.0)

    def outline(d: np.ndarray) -> np.ndarray:
        return np.clip(0.5 - (np.abs(d) - STILL_OUTLINE), 0.0, 1.0)

    now = sdf(spec.cx, spec.cy, spec.radius, spec.angle)
    if pair in (0, 1):      # a smear behind the shape
        ux, uy = _STILL_DIRECTIONS[spec.motion]
        smear = np.zeros((n, n))
        lo, hi = STILL_TRAIL_ALPHA
        for j in range(STILL_TRAIL_GHOSTS):
            t = j / STILL_TRAIL_GHOSTS            # 0 = the oldest copy, furthest back
            back = spec.trail * (1.0 - t)
            ghost = solid(sdf(spec.cx - ux * back, spec.cy - uy * back, spec.radius, spec.angle))
            smear = np.maximum(smear, ghost * (lo + (hi - lo) * t))
        canvas = _paint(_paint(canvas, (smear, colour)), (solid(now), colour))
    elif pair == 2:         # earlier sizes as outlines: inside (grows) or around (shrinks)
        factors = STILL_GROW_GHOSTS if sense > 0 else STILL_SHRINK_GHOSTS
        ghosts = [outline(sdf(spec.cx, spec.cy, spec.radius * f, spec.angle)) * a
                  for f, a in zip(factors, STILL_GHOST_ALPHA)]
        if sense > 0:       # rings cut into the solid shape, in the colour of the scene behind it
            scene = canvas
            canvas = _paint(canvas, (solid(now), colour))
            for g in ghosts:
                canvas = canvas * (1.0 - g[:, :, None]) + scene * g[:, :, None]
        else:
            for g in ghosts:
                canvas = _paint(canvas, (g, colour))
            canvas = _paint(canvas, (solid(now), colour))
    elif pair == 3:         # ghost hands behind the hand and a curved arrow opposite it
        lo, hi = STILL_HAND_ALPHA
        ghosts = np.zeros((n, n))
        for j in range(STILL_HAND_GHOSTS):
            t = j / STILL_HAND_GHOSTS
            angle = spec.angle - sense * spec.sweep * (1.0 - t)
            ghosts = np.maximum(ghosts, solid(sdf(spec.cx, spec.cy, spec.radius, angle)) * (lo + (hi - lo) * t))
        canvas = _paint(_paint(canvas, (ghosts, colour)), (solid(now), colour))
        middle = spec.angle + 180.0 if spec.arrow_angle is None else spec.arrow_angle
        arrow = _arrow_sdf(X, Y, spec.cx, spec.cy, ARROW_RADIUS * spec.radius, middle - sense * spec.sweep / 2,
                           sense * spec.sweep, (ARROW_HEAD[0] * spec.radius, ARROW_HEAD[1] * spec.radius))
        canvas = _paint(canvas, (solid(arrow), np.full(3, CUE_GREY)))
    else:                   # three copies, opacity rising (fades in) or falling (fades out) to the right
        r = STILL_FADE_RADIUS * spec.radius
        step = 2.0 * EXTENT * r + 3.0
        alphas = STILL_FADE_ALPHA if sense > 0 else STILL_FADE_ALPHA[::-1]
        for j, a in enumerate(alphas):
            canvas = _paint(canvas, (solid(sdf(spec.cx + (j - 1) * step, spec.cy, r, spec.angle)) * a, colour))
        for j in (-0.5, 0.5):
            divider = _box_sdf(X - (spec.cx + j * step), Y - spec.cy, 0.5, EXTENT * r)
            canvas = _paint(canvas, (solid(divider), np.full(3, CUE_GREY)))
    if spec.textured:
        canvas = canvas + np.random.default_rng([spec.noise_seed, 1]).normal(0.0, spec.frame_noise, (n, n, 1))
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def _still_extent(motion: str, r: float, trail: float) -> tuple[float, float]:
    """How far (x, y) a motion still's drawing reaches from the shape's centre, for both motions of its pair."""
    body = EXTENT * r
    pair = pair_index(motion)
    if pair == 0:
        return trail + body, body
    if pair == 1:
        return body, trail + body
    if pair == 2:
        return body * STILL_SHRINK_GHOSTS[0], body * STILL_SHRINK_GHOSTS[0]
    if pair == 3:
        reach = max((HAND_LENGTH + HAND_HALF_WIDTH) * r, (ARROW_RADIUS + ARROW_HEAD[0]) * r)
        return reach, reach
    fade_r = STILL_FADE_RADIUS * r
    return 3.0 * EXTENT * fade_r + 3.0, EXTENT * fade_r


def sample_motion_still_spec(rng: np.random.Generator, colour: str, shape: str, motion: str,
                             size: int = 64, textured: bool = False, arrow_on_top: bool = False) -> MotionStillSpec:
    """A random motion still of a given colour, shape and motion whose drawing stays inside the image.

    The draws do not depend on the direction within the motion's pair, so a still and its
    reversed partner share every number. ``textured``: the textured world's background, noise and
    1-2 static distractors (placed off the cue where they fit) instead of a plain dark background.
    ``arrow_on_top``: a rotation's arrow arcs over the top of the shape (its head on the right for
    clockwise, on the left for counterclockwise) instead of opposite the hand; the draws are the same.
    """
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}; expected one of {list(COLOURS)}")
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {list(SHAPES)}")
    _motion_index(motion)
    r = float(rng.uniform(*STILL_RADIUS_RANGE) * size)
    trail = float(rng.uniform(*STILL_TRAIL) * size)
    sweep = float(rng.uniform(*STILL_SWEEP))
    angle = float(rng.uniform(0.0, 360.0))
    rgb = _jitter(COLOURS[colour], rng)
    hx, hy = _still_extent(motion, r, trail)
    hx, hy = min(hx, size / 2), min(hy, size / 2)
    cx, cy = float(rng.uniform(hx, size - hx)), float(rng.uniform(hy, size - hy))
    spec = MotionStillSpec(colour=colour, shape=shape, motion=motion, rgb=rgb, cx=cx, cy=cy, radius=r,
                           angle=angle, trail=trail, sweep=sweep, size=size,
                           arrow_angle=-90.0 if arrow_on_top else None)
    if not textured:
        background, gradient = _random_background(rng, size)
        return replace(spec, background=background, gradient=gradient)
    for _ in range(32):  # a background whose every corner contrasts with the shape (the last try if none does)
        corners = tuple(tuple(int(x) for x in rng.integers(CORNER_RANGE[0], CORNER_RANGE[1] + 1, size=3))
                        for _ in range(4))
        if np.linalg.norm(np.asarray(corners, np.float64) - np.asarray(rgb), axis=1).min() >= STILL_CONTRAST:
            break
    mean = np.mean(np.asarray(corners, np.float64), axis=0)
    waves = []
    for _ in range(int(rng.integers(1, 3))):
        cycles, theta = rng.uniform(*WAVE_CYCLES) / size, rng.uniform(0.0, 2 * math.pi)
        waves.append((float(rng.uniform(*WAVE_AMPLITUDE)), float(cycles * math.cos(theta)),
                      float(cycles * math.sin(theta)), float(rng.uniform(0.0, 2 * math.pi))))
    distractors = []
    for _ in range(int(rng.integers(1, 3))):
        d = _random_sprite(rng, mean, rng.uniform(*DISTRACTOR_RADIUS) * size)
        margin = TEXTURED_EXTENT * d.radius
        for _ in range(16):  # off the cue's box where there is room
            x, y = rng.uniform(margin, size - margin, size=2)
            if abs(x - cx) > hx + margin or abs(y - cy) > hy + margin:
                break
        distractors.append(replace(d, cx=float(x), cy=float(y)))
    return replace(spec, corners=corners, waves=tuple(waves), noise_seed=int(rng.integers(2**31)),
                   texture_noise=float(rng.uniform(*TEXTURE_NOISE)), frame_noise=float(rng.uniform(*FRAME_NOISE)),
                   distractors=tuple(distractors))


def motion_still_caption(colour: str, shape: str, motion: str, variant: int = 0, subject: int = 0) -> str:
    """A video caption for a still: a subject of :data:`MOTION_STILL_SUBJECTS` (the video captions'
    and ``"something"``) and the motion's phrase ``variant``: ``"something moves left"``."""
    return f"{MOTION_STILL_SUBJECTS[subject].format(c=colour, s=shape)} {MOTION_PHRASES[motion][variant]}"


def synth_motion_stills(n: int, seed: int = 0, size: int = 64, textured: bool = False, twins: bool = False,
                        arrow_on_top: bool = False) -> tuple[np.ndarray, list[str], list[str]]:
    """Still images that show a motion by a cue (:func:`render_motion_still`), captioned with the
    video tasks' phrases (``"a red circle moves left"``, ``"something is rotating clockwise"``).

    Returns ``(images uint8 (N, H, W, 3), captions, motions)``, motions balanced over :data:`MOTIONS`;
    deterministic for a seed. ``textured``: textured scenes with 1-2 distractors. ``twins``: items
    come in adjacent reversed pairs (the same spec and caption subject with the partner motion:
    each other's hard negative); an odd ``n`` ends with one unpaired still. ``arrow_on_top``: rotation
    arrows over the shape (:func:`sample_motion_still_spec`).
    """
    if n < 1:
        raise ValueError(f"synth_motion_stills needs n >= 1, got {n}")
    rng = np.random.default_rng([seed, 5, 1 if textured else 0])  # a stream no other generator draws from
    if twins:
        motions = [PAIRS[p][rng.integers(2)] for p in _balanced(rng, n // 2, len(PAIRS))]
        motions = [m for first in motions for m in (first, partner(first))]
        if n % 2:
            motions.append(MOTIONS[rng.integers(len(MOTIONS))])
    else:
        motions = [MOTIONS[k] for k in _balanced(rng, n, len(MOTIONS))]
    images = np.empty((n, size, size, 3), np.uint8)
    captions: list[str] = []
    k = 0
    while k < n:
        colour, shape = _random_appearance(rng)
        spec = sample_motion_still_spec(rng, colour, shape, motions[k], size, textured, arrow_on_top)
        variant, subject = int(rng.integers(3)), int(rng.integers(len(MOTION_STILL_SUBJECTS)))
        group = 2 if twins and k + 1 < n else 1
        for m in motions[k:k + group]:
            images[k] = render_motion_still(replace(spec, motion=m))
            captions.append(motion_still_caption(colour, shape, m, variant, subject))
            k += 1
    return images, captions, motions


# Lighting stills: the scene gets brighter or darker, shown in one picture as three panels of the
# same scene side by side, their light rising (gets brighter) or falling (gets darker) to the right,
# the way the fade stills show opacity. Captioned with the words of the textured world's lighting pair.
LIGHTING_PHRASES: dict[str, tuple[str, ...]] = {
    "brighter": ("gets brighter", "is getting brighter", "fades in"),
    "darker": ("gets darker", "is getting darker", "fades out"),
}
LIGHTING_SUBJECTS: tuple[str, ...] = ("the video", "the scene", "the picture", "everything", "it")


def lighting_caption(motion: str, variant: int = 0, subject: int = 0) -> str:
    """``"the scene gets brighter"``: a subject of :data:`LIGHTING_SUBJECTS`, a phrase of :data:`LIGHTING_PHRASES`."""
    return f"{LIGHTING_SUBJECTS[subject]} {LIGHTING_PHRASES[motion][variant]}"


def render_lighting_still(spec: TexturedSpec, gains: Sequence[float]) -> np.ndarray:
    """One frame of ``spec`` (its own lighting ignored) as len(gains) vertical panels, panel ``i``
    lit by ``gains[i]``, split by 1-pixel grey dividers: uint8 (H, W, 3)."""
    frame = render_textured(replace(spec, gain_from=1.0, gain_to=1.0, num_frames=1,
                                    jitter=((0, 0),)))[0].astype(np.float64)
    n, k = spec.size, len(gains)
    panel = np.minimum((np.arange(n) * k) // n, k - 1)
    out = frame * np.asarray(gains, np.float64)[panel][None, :, None]
    for i in range(1, k):
        out[:, (i * n) // k] = CUE_GREY
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def synth_lighting_stills(n: int, seed: int = 0, size: int = 64, twins: bool = True
                          ) -> tuple[np.ndarray, list[str], list[str]]:
    """Stills of a textured scene that gets brighter or darker (:func:`render_lighting_still`: three
    panels, light rising or falling to the right), captioned ``"the scene gets brighter"``,
    ``"the video fades out"``... Returns ``(images uint8 (N, H, W, 3), captions, motions)`` with
    motions ``"brighter"`` / ``"darker"``; ``twins``: adjacent items show the same scene reversed
    (each other's hard negative). Deterministic for a seed (a stream no other generator draws from).
    """
    if n < 1:
        raise ValueError(f"synth_lighting_stills needs n >= 1, got {n}")
    rng = np.random.default_rng([seed, 7])
    images = np.empty((n, size, size, 3), np.uint8)
    captions: list[str] = []
    motions: list[str] = []
    k = 0
    while k < n:
        scene = sample_textured_spec(rng, "brighter", size, num_frames=1)
        low, high = float(rng.uniform(*LIGHTING_FROM)), float(rng.uniform(*LIGHTING_TO))
        rising = (low, (low + high) / 2, high)
        first = "brighter" if rng.random() < 0.5 else "darker"
        group = [first, "darker" if first == "brighter" else "brighter"] if twins and k + 1 < n else [first]
        variant, subject = int(rng.integers(3)), int(rng.integers(len(LIGHTING_SUBJECTS)))
        for m in group:
            images[k] = render_lighting_still(scene, rising if m == "brighter" else rising[::-1])
            captions.append(lighting_caption(m, variant, subject))
            motions.append(m)
            k += 1
    return images, captions, motions


# ----------------------------------------------------------------------------------------------
# Writing mp4 + annotations in the real datasets' formats
# ----------------------------------------------------------------------------------------------

def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 8, crf: int = 10) -> None:
    """Write uint8 (T, H, W, 3) RGB frames as h264 / yuv420p mp4 (even H and W required).

    No B-frames and one GOP per short clip: frame-accurate seeking in every decoder. A low
    ``crf`` keeps the colours (h264's 4:2:0 chroma is the main loss at 64 px).
    """
    import av  # imported here so the in-memory API does not need PyAV

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"{path}: yuv420p needs even frame sizes, got {h}x{w}")
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={
            "crf": str(crf), "preset": "medium", "x264-params": f"bframes=0:keyint={max(t, 1)}"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.thread_count = 1  # deterministic bytes, and the CPU is shared
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush the encoder
            container.mux(packet)


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n")


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _ssv2_entries(items: list[SynthItem], templates: Sequence[str], placeholder: bool) -> list[dict]:
    """SSv2 annotation entries: {"id", "label", "template", "placeholders"}."""
    out = []
    for it in items:
        template = templates[it.label]
        thing = f"{it.spec.colour} {it.spec.shape}"
        label = template.replace("[Something]", thing) if placeholder else template
        out.append({"id": it.id, "label": label, "template": template,
                    "placeholders": [thing] if placeholder else []})
    return out


def _write_ssv2(task: SynthTask, out: Path, templates: Sequence[str], placeholder: bool) -> list[str]:
    labels = {t.replace("[", "").replace("]", ""): str(k) for k, t in enumerate(templates)}
    _write_json(out / "labels.json", labels)
    _write_json(out / "something-something-v2-train.json", _ssv2_entries(task.train, templates, placeholder))
    _write_json(out / "something-something-v2-validation.json", _ssv2_entries(task.test, templates, placeholder))
    return ["labels.json", "something-something-v2-train.json", "something-something-v2-validation.json"]


def _write_path_label_lists(task: SynthTask, out: Path) -> list[str]:
    """Kinetics-style "path label" lists (mmaction's ``*_list_videos.txt``, paths relative to
    ``out``) and the class-name file ``label_map_k400.txt`` (one name per line, line = label id)."""
    for name, items in (("train_list_videos.txt", task.train), ("val_list_videos.txt", task.test)):
        (out / name).write_text("".join(f"videos/{it.id}.mp4 {it.label}\n" for it in items))
    (out / "label_map_k400.txt").write_text("".join(f"{name}\n" for name in task.classes))
    return ["train_list_videos.txt", "val_list_videos.txt", "label_map_k400.txt"]


def _write_msrvtt(task: SynthTask, out: Path, fps: int) -> list[str]:
    """MSR-VTT files: data json (all videos + sentences), 9k-style train csv, JSFusion test csv."""
    seconds = task.train[0].spec.num_frames / fps if task.train else (task.test[0].spec.num_frames / fps)
    videos, sentences = [], []
    for split, items in (("train", task.train), ("test", task.test)):
        for it in items:
            videos.append({"video_id": it.id, "id": int(it.id.removeprefix("video")), "split": split,
                           "category": 0, "url": "", "start time": 0.0, "end time": seconds})
            sentences += [{"caption": c, "video_id": it.id} for c in it.captions]
    for k, s in enumerate(sentences):
        s["sen_id"] = k
    _write_json(out / "MSRVTT_data.json", {
        "info": {"description": f"stanlib synthetic captions task (seed {task.seed})"},
        "videos": videos, "sentences": sentences})
    _write_csv(out / "MSRVTT_train.9k.csv", ["video_id"], [[it.id] for it in task.train])
    _write_csv(out / "MSRVTT_JSFUSION_test.csv", ["key", "vid_key", "video_id", "sentence"],
               [[f"ret{k}", f"msr{it.id.removeprefix('video')}", it.id, it.caption]
                for k, it in enumerate(task.test)])
    return ["MSRVTT_data.json", "MSRVTT_train.9k.csv", "MSRVTT_JSFUSION_test.csv"]


def _write_generic_label(task: SynthTask, out: Path) -> list[str]:
    """generic_label files: ``classes.txt`` (line = label id) and ``train.csv`` / ``test.csv`` with
    header ``video,label,twin`` (label: the class name; twin: the path of the clip's exact time
    reversal, empty for none)."""
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in task.classes))
    for name, items in (("train.csv", task.train), ("test.csv", task.test)):
        _write_csv(out / name, ["video", "label", "twin"],
                   [[f"videos/{it.id}.mp4", task.classes[it.label], f"videos/{it.twin}.mp4" if it.twin else ""]
                    for it in items])
    return list(GENERIC_LABEL_FILES)


GENERIC_LABEL_FILES = ("classes.txt", "train.csv", "test.csv")
ANNOTATION_FILES = ("labels.json", "something-something-v2-train.json", "something-something-v2-validation.json",
                    "train_list_videos.txt", "val_list_videos.txt", "label_map_k400.txt", "MSRVTT_data.json", "MSRVTT_train.9k.csv",
                    "MSRVTT_JSFUSION_test.csv", "synth_meta.json")


def _written_files(out: Path) -> set[Path]:
    """Files a previous ``stanlib synth`` run wrote into ``out``, from its manifest ``synth_meta.json``
    (every clip id, so ``videos/<id>.mp4``), plus the annotation files the generator writes."""
    meta = out / "synth_meta.json"
    ids: list[str] = []
    names = list(ANNOTATION_FILES)
    if meta.is_file() and not meta.is_symlink():
        try:
            data = json.loads(meta.read_text())
            ids = [str(item["id"]) for item in data.get("items", [])]
            if data.get("style") == "textured":
                names += GENERIC_LABEL_FILES
        except (ValueError, KeyError, TypeError, AttributeError):
            ids = []
    return {out / name for name in names} | {out / "videos" / f"{i}.mp4" for i in ids}


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse to mix with an earlier set (stale videos would be read as data) unless asked to.

    ``overwrite`` deletes only files an earlier run of the generator wrote (the clips its
    ``synth_meta.json`` lists and its annotation files); any other file in ``out`` or
    ``out/videos`` (a link, a folder, a video of yours) stops it with an error naming that file.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; expected a folder (new or empty)")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"output folder {out} is not empty; pass --overwrite to replace a previous "
                                  "synthetic set there, or choose another --out")
        ours = _written_files(out)
        found = [p for p in out.iterdir() if p.name not in ("videos", "README.md")]
        if (out / "videos").is_symlink() or ((out / "videos").exists() and not (out / "videos").is_dir()):
            found.append(out / "videos")
        elif (out / "videos").is_dir():
            found += list((out / "videos").iterdir())
        unknown = sorted(str(p) for p in found if p not in ours or p.is_symlink() or not p.is_file())
        if unknown:
            raise FileExistsError(f"--overwrite deletes only files `stanlib synth` wrote (listed in "
                                  f"{out / 'synth_meta.json'}), but {out} holds {len(unknown)} other file(s): "
                                  f"{unknown[:5]}; move them away or choose another --out")
        for path in found:
            path.unlink()
    (out / "videos").mkdir(parents=True, exist_ok=True)


def write_task(task: SynthTask, out: str | Path, fps: int = 8, crf: int = 10, overwrite: bool = False,
               progress: bool = True) -> dict[str, int]:
    """Write a task's clips to ``out/videos/<id>.mp4`` and its annotations; returns counts."""
    out = Path(out)
    _prepare_out(out, overwrite)
    items = task.train + task.test
    for it in tqdm(items, desc=f"write {task.name}", disable=not progress):
        write_mp4(out / "videos" / f"{it.id}.mp4", it.frames(), fps=fps, crf=crf)
    if task.name == "motion":
        _write_ssv2(task, out, MOTION_TEMPLATES, placeholder=True)
    elif task.name == "appearance":
        _write_ssv2(task, out, APPEARANCE_CLASSES, placeholder=False)
        _write_path_label_lists(task, out)
    elif task.name == "captions":
        _write_msrvtt(task, out, fps)
    elif task.name == "textured":
        _write_generic_label(task, out)
    else:
        raise ValueError(f"unknown task {task.name!r}; expected one of {[*TASKS, 'textured']}")
    meta = {"task": task.name, "seed": task.seed, "fps": fps, "classes": task.classes,
            **({"style": "textured"} if task.name == "textured" else {}),
            "items": [{"id": it.id, "split": split, "label": it.label, "caption": it.caption, "twin": it.twin,
                       "spec": it.spec.to_dict()}
                      for split, its in (("train", task.train), ("test", task.test)) for it in its]}
    _write_json(out / "synth_meta.json", meta)
    return {"train": len(task.train), "test": len(task.test)}


def load_meta(folder: str | Path) -> list[tuple[str, str, ClipSpec | TexturedSpec]]:
    """(id, split, spec) of every clip of a written set, from its ``synth_meta.json`` (a textured set's
    specs are :class:`TexturedSpec`, rendered by :func:`render_textured`)."""
    path = Path(folder) / "synth_meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} a folder written by `stanlib synth`?")
    meta = json.loads(path.read_text())
    spec_type = TexturedSpec if isinstance(meta, dict) and meta.get("style") == "textured" else ClipSpec
    try:
        return [(d["id"], d["split"], spec_type.from_dict(d["spec"])) for d in meta["items"]]
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: malformed item ({err!r}); expected items with id, split, spec") from None


def cli_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="stanlib synth",
        description="Write synthetic teaching videos (mp4) with annotations in the real datasets' formats: "
                    "motion and appearance in SSv2 format, captions in MSR-VTT format. --style textured "
                    "writes the textured world instead: 8 motion classes (4 reversal pairs) on noisy "
                    "backgrounds with distractors, camera jitter and lighting changes, in generic_label "
                    "format (train.csv, test.csv with a twin column, classes.txt).")
    parser.add_argument("task", nargs="?", choices=[*TASKS, "all"],
                        help="which task; 'all' writes OUT/<task> for each (--style plain). --style textured "
                             "has one task: leave it out (or say 'motion')")
    parser.add_argument("--style", choices=STYLES, default="plain",
                        help="plain (default): the teaching world; textured: the textured world")
    parser.add_argument("--out", required=True, help="output folder (must be empty or new, see --overwrite)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=None, help="default 400 (plain), 480 (textured)")
    parser.add_argument("--n-test", type=int, default=None,
                        help="default 100 (plain), 160 (textured); even for motion/captions/textured (reversed twins)")
    parser.add_argument("--size", type=int, default=64, help="frame side in pixels (even)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--crf", type=int, default=10, help="h264 quality (lower = better colours, bigger files)")
    parser.add_argument("--twin-train", action="store_true",
                        help="motion/captions/textured: build the train split from reversed twins too (each clip next "
                             "to its exact time reversal)")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous synthetic set in --out")
    args = parser.parse_args(argv)
    if args.style == "textured":
        if args.task not in (None, "motion"):
            parser.error(f"--style textured writes one task (8 motion classes); leave out {args.task!r}")
        return _textured_cli(args)
    if args.task is None:
        parser.error("the following arguments are required: task")
    args.n_train = 400 if args.n_train is None else args.n_train
    args.n_test = 100 if args.n_test is None else args.n_test
    if args.twin_train and args.task == "appearance":
        parser.error("--twin-train applies to the motion and captions tasks, not appearance")

    names = list(TASKS) if args.task == "all" else [args.task]
    for name in names:
        out = Path(args.out) / name if args.task == "all" else Path(args.out)
        try:
            extra = {"twin_train": args.twin_train} if name != "appearance" else {}
            task = TASKS[name](n_train=args.n_train, n_test=args.n_test, seed=args.seed,
                               size=args.size, num_frames=args.frames, **extra)
            counts = write_task(task, out, fps=args.fps, crf=args.crf, overwrite=args.overwrite)
        except (ValueError, OSError) as err:
            print(f"stanlib synth {name}: error: {err}", file=sys.stderr)
            return 2
        print(f"{name}: wrote {counts['train']} train + {counts['test']} test clips to {out}")
    return 0


def _textured_cli(args: argparse.Namespace) -> int:
    """``stanlib synth --style textured``: write :func:`textured_task` to ``--out``."""
    try:
        task = textured_task(n_train=480 if args.n_train is None else args.n_train,
                             n_test=160 if args.n_test is None else args.n_test, seed=args.seed,
                             size=args.size, num_frames=args.frames, twin_train=args.twin_train)
        counts = write_task(task, args.out, fps=args.fps, crf=args.crf, overwrite=args.overwrite)
    except (ValueError, OSError) as err:
        print(f"stanlib synth --style textured: error: {err}", file=sys.stderr)
        return 2
    print(f"textured: wrote {counts['train']} train + {counts['test']} test clips ({len(task.classes)} classes) "
          f"to {args.out} (generic_label: train.csv, test.csv, classes.txt)")
    return 0
