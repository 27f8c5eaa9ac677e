"""The paper's claims in miniature: fine-tune the tiny CLIP on three synthetic video tasks.

Tasks (from :mod:`stanlib.teaching.synth`, rendered in memory: no video decoding in the loop):

* ``motion``: SSv2-like, 10 classes in 5 time-reversed pairs (left/right, up/down, grow/shrink,
  rotate cw/ccw, fade in/out). The test split holds exact reversal twins, so **direction
  accuracy** (is the clip's own class scored above its reversed partner?) isolates temporal order.
* ``appearance``: K400-like, 24 colour x shape classes, motion random (image knowledge).
* ``captions``: MSR-VTT-like text->video retrieval; every test caption's reversed twin is in the
  set ("a red circle moves left" / "... moves right": the same frames backwards).

Rows (``ROWS``): zero-shot CLIP, CLIP mean pooling (CLIP4Clip meanP), seqTransf (posterior
transformer on frame embeddings), STAN-conv, STAN-self, and the Table 6 ablations (posterior,
branch single level, no cross-frame, no intra-frame; full = STAN-self).

:func:`train_model` trains on clips held in memory as uint8 tensors (no decoding), with batches
built from reversal twins (each clip next to its time reversal; about +4 points in the recipe
sweeps). Its optimiser, schedule, clipping and step are the training engine's
(:mod:`stanlib.engine`, shared with ``stanlib train``); heads, losses and metrics come from the
shared modules. ``stanlib train --preset tiny-motion`` trains the same recipe on the decoded video
files (:mod:`stanlib.engine.presets`).

Recipe (the paper's method on ``stan-tiny-v2``, the tiny CLIP that learnt the motion words from stills;
hyper-parameters chosen by the sweeps of docs/experiments.md section 2): recognition with the frozen
class-name text classifier (a trainable text tower collapses each reversed pair's class embeddings),
caption retrieval with plain symmetric InfoNCE, CLIP lr 5e-4 (fine-tuned: +5-8 points of direction over
a frozen CLIP), branch lr 5e-3, short warm-up, batch 16 of 8 frames, twin batches, K=4 (the branch reads
every level of the 4-layer tiny CLIP); captions train with batches of 32 and a branch lr of 3x
(:data:`TASK_RECIPES`; docs 2.7). :data:`FIRST_CLIP` is the recipe of the first tiny CLIP
(``stan-tiny``), whose text tower never saw a motion word: fixed orthonormal vectors for the motion
classes and two extra caption loss terms, verb-swapped hard negatives and verb anchors
(:func:`retrieval_loss`; docs 2.5, 2.6, 2.9).

::

    stanlib experiments run --quick                       # a smoke run (seconds)
    stanlib experiments run --tasks motion --rows meanpool stan-self --seeds 0 1 2
    stanlib experiments table                             # markdown table from the cached JSON
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from stanlib import assets
from stanlib.engine.evaluate import retrieval_metrics
from stanlib.engine.losses import ContrastiveLoss, RecognitionHead, class_text_embeddings, orthogonal_classes
from stanlib.engine.optim import Stepper, build_optimizer, flush_denormals, warmup_cosine
from stanlib.model import STANModel, create_model
from stanlib.teaching import synth
from stanlib.teaching.tiny import to_model_input

TASK_KINDS = {"motion": "recognition", "appearance": "recognition", "captions": "retrieval"}
# Recognition head of Recipe(head="task"), the first tiny CLIP's choice: the class names' text embeddings
# where it learnt the words (colours, shapes), fixed orthonormal vectors where it never saw them (motions:
# "moves up" / "moves right" embed at cosine 0.98 in stan-tiny; docs/experiments.md 2.5).
TASK_HEADS = {"motion": "orthogonal", "appearance": "text"}

# row name -> (label in tables, create_model keyword arguments, trained?)
ROWS: dict[str, tuple[str, dict, bool]] = {
    "zero-shot": ("zero-shot CLIP (mean pooling, no training)", {"arch": "meanpool"}, False),
    "meanpool": ("CLIP mean pooling (CLIP4Clip meanP)", {"arch": "meanpool"}, True),
    "seqtransf": ("seqTransf (posterior transformer)", {"arch": "seqtransf"}, True),
    "stan-conv": ("STAN-conv (dense 3x3x3)", {"temporal": "conv"}, True),
    "stan-self": ("STAN-self (= Table 6 full)", {"temporal": "attn"}, True),
    "posterior": ("Table 6: posterior (branch on final tokens)", {"arch": "posterior"}, True),
    "single-level": ("Table 6: branch, single level", {"single_level": True}, True),
    "no-cross-frame": ("Table 6: no cross-frame module", {"temporal": None}, True),
    "no-intra-frame": ("Table 6: no intra-frame module", {"spatial": False}, True),
    # the paper's Table 7: posterior, intermediate and branch structures (stanlib.model.baselines)
    "tdb": ("Table 7: TDB (CLIP2Video, posterior)", {"arch": "tdb"}, True),
    "st-adapter": ("Table 7: ST-Adapter (intermediate)", {"arch": "st-adapter"}, True),
    "xclip-msg": ("Table 7: X-CLIP Msg-Token + MIT (intermediate)", {"arch": "xclip-msg"}, True),
    # the paper's Table 8 in the miniature: which levels of the 4-layer tiny CLIP a K=2 branch reads
    "levels-3-4": ("Table 8: K=2, levels 3-4 (the last K, default)", {"levels": (3, 4), "depth": 2}, True),
    "levels-2-4": ("Table 8: K=2, levels 2, 4 (interval 2)", {"levels": (2, 4), "depth": 2}, True),
    "levels-1-2": ("Table 8: K=2, levels 1-2 (the first K)", {"levels": (1, 2), "depth": 2}, True),
}
MAIN_ROWS = ("zero-shot", "meanpool", "seqtransf", "stan-conv", "stan-self")
ABLATION_ROWS = ("meanpool", "posterior", "single-level", "no-cross-frame", "no-intra-frame", "stan-self")
# Table 7: posterior (on CLIP's frame embeddings), intermediate (inside CLIP's blocks), branch (STAN)
STRUCTURE_ROWS = ("meanpool", "seqtransf", "tdb", "st-adapter", "xclip-msg", "stan-self")
# Table 8: which CLIP levels the branch reads (K = 2 of the tiny CLIP's 4 layers)
LEVEL_ROWS = ("levels-3-4", "levels-2-4", "levels-1-2")
# the committed result files of the default recipes (shipped with the package: the course reads them)
RESULTS_DIR = assets.EXPERIMENTS
DEFAULT_OUT = Path("runs/experiments")     # where your own runs go


@dataclass
class Recipe:
    """Data size and optimisation of one run (saved with every result; part of its cache key).
    The defaults are the recognition tasks'; :func:`task_recipe` gives a task its own."""

    steps: int = 300
    batch_size: int = 16             # clips per step (twin batches: batch_size / 2 reversal pairs; captions: 32)
    num_frames: int = 8
    depth: int = 4                   # K branch layers = all 4 layers of the tiny CLIP (K=2: 76 -> K=4: 81.5)
    lr: float = 5e-4                 # CLIP parameters
    lr_mult: float = 10.0            # branch parameters: lr * lr_mult (captions: 3, TASK_RECIPES)
    weight_decay: float = 0.02
    warmup: int = 10
    grad_clip: float = 5.0
    logit_scale: float = 100.0
    twin_batches: bool = True        # each clip next to its exact time reversal (motion, captions)
    freeze_clip: bool = False        # train only the new layers (CLIP left exactly as pretrained)
    freeze_text: bool = False        # retrieval: keep the text tower as pretrained (recognition always does)
    head: str = "task"               # recognition: "text" (frozen class-name embeddings, the paper's head;
                                     # motion's TASK_RECIPES), "orthogonal" (frozen random orthonormal class
                                     # vectors), "linear" (trainable, from the text ones), "task" = TASK_HEADS
                                     # (text for appearance, orthogonal for motion: the first tiny CLIP's heads)
    verb_negatives: bool = False     # retrieval: also score each clip against its caption rewritten with every
                                     # motion phrase (hard negatives that differ only in the verb; FIRST_CLIP)
    verb_anchors: float = 0.0        # retrieval: weight of the verb-anchor loss: video and caption embeddings
                                     # are also classified against fixed orthonormal vectors, one per motion
                                     # (the verb read from the caption); 0 = plain InfoNCE, the paper (docs 2.6)
    same_appearance: int = 0         # retrieval: reversal pairs per batch group that share one colour x shape
                                     # (hard in-batch negatives that differ in the motion; 0 = random pairs)
    n_train: int = 800
    n_test: int = 200
    data_seed: int = 0               # the synthetic data is the same for every training seed
    pretrained: str = "bundled"      # tiny CLIP weights ("bundled", a path, or "none" for random)
    clip: str = "stan-tiny-v2"       # tiny CLIP config: stan-tiny-v2 (knows the motion words) or stan-tiny
    model_kwargs: dict = field(default_factory=dict)   # extra STANConfig fields for every row

    def key(self, task: Optional[str] = None) -> str:
        """Short hash of the recipe, of the CLIP weights file's bytes and of the synthetic world's
        version: results are cached per (task, row, seed, key), so re-training the tiny CLIP or
        changing the renderer never serves stale results. With ``task``, only the fields that
        task uses (a recognition task ignores the retrieval-only fields)."""
        kept = {k: v for k, v in asdict(self).items() if OMIT_FROM_KEY.get(k, object()) != v}
        if TASK_KINDS.get(task) == "recognition":
            kept = {k: v for k, v in kept.items() if k not in RETRIEVAL_ONLY}
        world = f"world{synth.WORLD_VERSION}" if synth.WORLD_VERSION > 1 else ""  # v1 keys had no version
        text = json.dumps(kept, sort_keys=True) + weights_digest(self.pretrained, self.clip) + world
        return hashlib.sha1(text.encode()).hexdigest()[:8]


# fields added after results were cached: their default value leaves the cache key unchanged
OMIT_FROM_KEY = {"head": "text", "freeze_text": False, "verb_negatives": False, "verb_anchors": 0.0,
                 "same_appearance": 0, "clip": "stan-tiny"}
RETRIEVAL_ONLY = ("freeze_text", "verb_negatives", "verb_anchors", "same_appearance")


@functools.lru_cache(maxsize=8)
def _file_digest(path: str, mtime: float) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()[:12]


def weights_digest(pretrained: Optional[str], clip: str = "stan-tiny") -> str:
    """Content hash of the CLIP weights a recipe names ("" for random init); ``"bundled"`` is the
    tiny CLIP ``clip``'s shipped file."""
    if pretrained in (None, "", "none"):
        return ""
    if pretrained == "bundled" and clip not in assets.TINY_CLIPS:
        raise ValueError(f"pretrained='bundled' exists only for the tiny CLIPs {sorted(assets.TINY_CLIPS)}, not {clip}")
    path = assets.TINY_CLIPS[clip] if pretrained == "bundled" else Path(pretrained)
    if not path.is_file():
        raise FileNotFoundError(f"tiny CLIP weights {path} not found; run `stanlib pretrain-tiny` or pass --pretrained")
    return _file_digest(str(path), path.stat().st_mtime)


def recipe_overrides(recipe: Recipe, text: str) -> Recipe:
    """``recipe`` with fields changed by ``"KEY=VALUE KEY=VALUE"`` (e.g. ``"steps=600 verb_anchors=2"``;
    booleans as 0/1/true/false). Used by the probe and sweep tools."""
    names = {f.name for f in fields(Recipe)}
    changes = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if not sep or key not in names or key == "model_kwargs":
            raise ValueError(f"bad recipe override {item!r}: expected KEY=VALUE with KEY one of "
                             f"{[n for n in names if n != 'model_kwargs']}")
        typ = type(getattr(recipe, key))
        try:
            changes[key] = value.lower() in ("1", "true", "yes") if typ is bool else typ(value)
        except ValueError:
            raise ValueError(f"bad recipe override {item!r}: {key} takes a {typ.__name__}") from None
    return replace(recipe, **changes)


QUICK_SIZES = dict(steps=3, batch_size=4, num_frames=4, n_train=16, n_test=20, warmup=1)   # --quick: a smoke run
QUICK = Recipe(**QUICK_SIZES)

# Per-task changes to the default recipe, as the paper's recipes differ per dataset (docs/architecture.md 7).
# motion: the class-name text head (the paper's), written out so that cached results keep their key.
# captions: batches of 32 clips (16 reversal pairs) and a branch lr of 3x CLIP's, not 10x: over 5 seeds
# on a GPU, R@1 67.8 -> 94.4 (docs/experiments.md 2.7, tools/sweep_captions.py).
TASK_RECIPES: dict[str, dict] = {"motion": {"head": "text"}, "captions": {"batch_size": 32, "lr_mult": 3.0}}

# The recipe of the first tiny CLIP (stan-tiny, motion-blind text tower): TASK_HEADS (orthonormal motion
# classes) and the two extra caption loss terms. ``task_recipe(task, FIRST_CLIP)``; the zoo's models without
# a version suffix were trained with it (docs/experiments.md 2.5, 2.6).
FIRST_CLIP: dict = {"clip": "stan-tiny", "head": "task", "verb_negatives": True, "verb_anchors": 1.0}
RECIPE_SETS: dict[str, dict] = {"paper": {}, "first-clip": FIRST_CLIP}


def task_recipe(task: str, changes: Optional[dict] = None) -> Recipe:
    """The recipe ``task`` trains with: :class:`Recipe`'s defaults, the task's :data:`TASK_RECIPES`
    entry, then ``changes`` (explicit changes win: ``task_recipe("captions", {"batch_size": 16})``)."""
    if task not in TASK_KINDS:
        raise ValueError(f"unknown task {task!r}; expected one of {list(TASK_KINDS)}")
    return replace(Recipe(), **{**TASK_RECIPES.get(task, {}), **(changes or {})})


# =========================================================================== data
@dataclass
class TaskData:
    """A task rendered in memory. Frames are uint8 (N, T, H, W, 3); ``twin[i]`` is the index of
    clip i's exact time reversal in the same split (-1 if none)."""

    name: str
    kind: str                        # "recognition" | "retrieval"
    classes: list[str]
    train_frames: torch.Tensor
    train_labels: torch.Tensor
    train_twin: torch.Tensor
    train_captions: list[list[str]]
    test_frames: torch.Tensor
    test_labels: torch.Tensor
    test_twin: torch.Tensor
    test_captions: list[str]
    train_appearance: Optional[torch.Tensor] = None   # colour x shape id of every training clip
    test_appearance: Optional[torch.Tensor] = None

    @property
    def pair_names(self) -> tuple[str, ...]:
        return synth.PAIR_NAMES


def _twin_index(items: list[synth.SynthItem]) -> torch.Tensor:
    where = {it.id: i for i, it in enumerate(items)}
    return torch.tensor([where.get(it.twin, -1) if it.twin else -1 for it in items], dtype=torch.long)


@functools.lru_cache(maxsize=4)
def load_task(name: str, n_train: int = 800, n_test: int = 200, seed: int = 0, num_frames: int = 8,
              size: int = 64, progress: bool = True) -> TaskData:
    """Render a synthetic task in memory (cached per process). Motion and captions training splits
    are made of reversal twins, so twin batches can be drawn."""
    if name not in TASK_KINDS:
        raise ValueError(f"unknown task {name!r}; expected one of {list(TASK_KINDS)}")
    kwargs = {} if name == "appearance" else {"twin_train": True}
    n_train += n_train % 2 if name != "appearance" else 0
    task = synth.TASKS[name](n_train=n_train, n_test=n_test, seed=seed, size=size, num_frames=num_frames, **kwargs)
    # the motion and captions labels are motion classes (pair = label // 2); appearance: colour x shape
    labels = {s: torch.as_tensor(task.labels(s)) for s in ("train", "test")}
    return TaskData(
        name=name, kind=TASK_KINDS[name], classes=list(task.classes),
        train_frames=torch.from_numpy(task.frames("train", progress=progress)),
        train_labels=labels["train"], train_twin=_twin_index(task.train),
        train_captions=[list(it.captions) for it in task.train],
        test_frames=torch.from_numpy(task.frames("test", progress=progress)),
        test_labels=labels["test"], test_twin=_twin_index(task.test),
        test_captions=[it.caption for it in task.test],
        train_appearance=_appearance(task.train), test_appearance=_appearance(task.test))


def _appearance(items: list[synth.SynthItem]) -> torch.Tensor:
    return torch.tensor([synth.appearance_label(it.spec.colour, it.spec.shape) for it in items], dtype=torch.long)


def batch_order(data: TaskData, batch_size: int, steps: int, rng: np.random.Generator,
                twins: bool = True, same_appearance: int = 0) -> list[np.ndarray]:
    """Indices of the training clips for every step: epochs of a random permutation.

    ``twins``: a batch holds ``batch_size / 2`` reversal pairs (clip i and clip ``twin[i]``), so
    the only difference between some clips of a batch is the order of their frames.
    ``same_appearance`` > 0 (with twins): the pairs come in groups of that many that share one
    colour x shape, so some clips of a batch differ only in their motion.
    """
    n = len(data.train_labels)
    twin = data.train_twin.numpy()
    use_twins = twins and (twin >= 0).all()
    if use_twins:
        firsts = np.flatnonzero(np.arange(n) < twin)   # one index per pair
        per_batch = max(1, batch_size // 2)
    else:
        firsts, per_batch = np.arange(n), batch_size
    if per_batch > len(firsts):
        raise ValueError(f"batch of {batch_size} clips needs more training clips than {n}; lower batch_size")
    if use_twins and same_appearance > 0:
        if data.train_appearance is None:
            raise ValueError("same_appearance batches need the training clips' appearance (TaskData.train_appearance)")
        picks = _grouped_pairs(firsts, data.train_appearance.numpy()[firsts], per_batch, same_appearance, steps, rng)
        return [np.stack([pick, twin[pick]], 1).reshape(-1) for pick in picks]
    out, pool = [], []
    while len(out) < steps:
        if len(pool) < per_batch:
            pool = list(rng.permutation(firsts))
        pick = np.array(pool[:per_batch])
        pool = pool[per_batch:]
        out.append(np.stack([pick, twin[pick]], 1).reshape(-1) if use_twins else pick)
    return out


def _grouped_pairs(firsts: np.ndarray, groups: np.ndarray, per_batch: int, group_size: int, steps: int,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """``steps`` batches of ``per_batch`` distinct items of ``firsts``, drawn ``group_size`` at a
    time from one random group (each group's items cycle through shuffled epochs)."""
    members = {g: firsts[groups == g] for g in np.unique(groups)}
    pools = {g: [] for g in members}
    keys = list(members)
    out = []
    for _ in range(steps):
        pick: list[int] = []
        while len(pick) < per_batch:
            g = keys[rng.integers(len(keys))]
            take = []
            for _ in range(min(group_size, per_batch - len(pick))):
                if not pools[g]:
                    pools[g] = list(rng.permutation(members[g]))
                item = pools[g].pop()
                if item not in pick and item not in take:
                    take.append(item)
            pick += take
        out.append(np.array(pick))
    return out


# =========================================================================== models
def build_model(row: str, recipe: Recipe) -> STANModel:
    """The model of one row, on the tiny CLIP (``recipe.pretrained``)."""
    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; expected one of {list(ROWS)}")
    kwargs = {"temporal": "attn", **ROWS[row][1], **recipe.model_kwargs}
    pretrained = None if recipe.pretrained in ("none", "", None) else recipe.pretrained
    depth = kwargs.pop("depth", recipe.depth)  # a row may fix its own K (the Table 8 rows: K=2 of 4 layers)
    return create_model(recipe.clip, pretrained=pretrained, depth=depth, num_frames=recipe.num_frames,
                        logit_scale=recipe.logit_scale, **kwargs)


def _freeze(model: STANModel, recipe: Recipe, kind: str) -> None:
    """CLIP's own logit scale is unused (fixed scale); recognition keeps the text tower frozen."""
    for name, p in model.clip.named_parameters():
        if name in ("logit_scale", "logit_bias"):
            p.requires_grad_(False)
        elif recipe.freeze_clip or ((kind == "recognition" or recipe.freeze_text) and not name.startswith("visual.")):
            p.requires_grad_(False)


HEADS = ("task", "orthogonal", "text", "linear")


def recognition_head(model: STANModel, data: TaskData, recipe: Recipe) -> RecognitionHead:
    """The cosine classifier: ``"text"`` (frozen class-name text embeddings, the paper's
    head), ``"orthogonal"`` (frozen random orthonormal class vectors,
    :func:`stanlib.engine.losses.orthogonal_classes`), ``"linear"`` (trainable, initialised from the text
    ones) or ``"task"`` (default: :data:`TASK_HEADS`, text for appearance, orthogonal for motion)."""
    head = resolve_head(recipe, data.name)
    if head == "orthogonal":
        emb = orthogonal_classes(len(data.classes), model.embed_dim)
    else:
        emb = class_text_embeddings(model, data.classes)
    return RecognitionHead(emb, scale=recipe.logit_scale,
                           linear=head == "linear").to(next(model.parameters()).device)


def resolve_head(recipe: Recipe, task: str) -> str:
    """The head a recipe uses on a task (``"task"`` -> :data:`TASK_HEADS`)."""
    if recipe.head not in HEADS:
        raise ValueError(f"recipe.head must be one of {HEADS}, got {recipe.head!r}")
    return TASK_HEADS.get(task, "text") if recipe.head == "task" else recipe.head


# =========================================================================== training
def train_model(model: STANModel, data: TaskData, recipe: Recipe, seed: int = 0, *, progress: bool = True,
                desc: str = "train", eval_every: int = 0,
                callback: Optional[Callable[[int, float], None]] = None) -> dict:
    """Fine-tune ``model`` on ``data`` for ``recipe.steps`` steps. Returns the training record:
    ``{"loss": [per step], "eval": [(step, metrics)], "seconds": ..., "cpu_seconds": ..., "head": ...}``
    (``head``: the trained recognition head, None for retrieval; pass it to :func:`evaluate_model`).

    Recognition: cross-entropy of the cosine classifier over frozen class vectors (:func:`recognition_head`).
    Retrieval: :func:`retrieval_loss` with one random caption per clip (text tower trained).
    ``eval_every`` > 0 evaluates on the test split during training (for curves), always including
    the last step, so ``record["eval"][-1][1]`` is the final :func:`evaluate_model` result.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    _freeze(model, recipe, data.kind)
    model.train()
    head = recognition_head(model, data, recipe) if data.kind == "recognition" else None
    anchors = verb_anchors(model, recipe) if data.kind == "retrieval" else None
    criterion = ContrastiveLoss(recipe.logit_scale).to(device)
    extra = {"head": head} if head is not None and head.linear is not None else None
    try:
        opt = build_optimizer(model, recipe.lr, recipe.weight_decay, recipe.lr_mult, extra)
    except ValueError:  # nothing to train (frozen CLIP without a branch)
        return {"loss": [], "eval": [], "seconds": 0.0, "cpu_seconds": 0.0, "trainable": 0}
    stepper = Stepper(opt, warmup_cosine(max(1, recipe.warmup), recipe.steps), grad_clip=recipe.grad_clip)
    params = stepper.clip_params
    order = batch_order(data, recipe.batch_size, recipe.steps, rng, recipe.twin_batches,
                        recipe.same_appearance if data.kind == "retrieval" else 0)
    record = {"loss": [], "eval": [], "trainable": sum(p.numel() for p in params), "head": head}
    t0, cpu0 = time.time(), time.process_time()
    bar = tqdm(order, desc=desc, disable=not progress, leave=False)
    # CPU: flush denormal floats to zero while training (docs/experiments.md 2.2: a run without it
    # slowed from 1.5 to 7-13 s per step late in training; with it, 1.5-2 s throughout).
    with flush_denormals(device.type == "cpu"):
        for step, idx in enumerate(bar):
            frames = to_model_input(data.train_frames[idx], device)
            if head is not None:
                loss = head(model.encode_video(frames), data.train_labels[idx].to(device))
            else:
                caps = [data.train_captions[i][rng.integers(len(data.train_captions[i]))] for i in idx]
                loss = retrieval_loss(model, frames, caps, data.train_labels[idx].to(device), recipe, criterion,
                                      anchors)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: loss {loss.item()} at step {step}; lower the learning rate")
            stepper.step(loss)
            record["loss"].append(round(loss.item(), 5))
            if callback is not None:
                callback(step, record["loss"][-1])
            if step % 10 == 0:
                bar.set_postfix(loss=f"{np.mean(record['loss'][-10:]):.3f}")
            if eval_every and ((step + 1) % eval_every == 0 or step + 1 == recipe.steps):
                record["eval"].append((step + 1, evaluate_model(model, data, recipe, head=head)))
                model.train()
    model.eval()
    record["seconds"] = round(time.time() - t0, 1)
    record["cpu_seconds"] = round(time.process_time() - cpu0, 1)  # all threads: the cost on a free machine
    return record


def verb_anchors(model: STANModel, recipe: Recipe) -> Optional[RecognitionHead]:
    """The verb anchors of captions training: a frozen cosine classifier over fixed random
    orthonormal vectors, one per motion (None when ``recipe.verb_anchors`` is 0)."""
    if recipe.verb_anchors <= 0:
        return None
    vectors = orthogonal_classes(len(synth.MOTIONS), model.embed_dim)
    return RecognitionHead(vectors, scale=recipe.logit_scale).to(next(model.parameters()).device)


def retrieval_loss(model: STANModel, frames: torch.Tensor, captions: list[str], motions: torch.Tensor,
                   recipe: Recipe, criterion: ContrastiveLoss, anchors: Optional[RecognitionHead] = None
                   ) -> torch.Tensor:
    """The captions training loss of one batch: clips ``frames``, one caption each; ``motions``
    is the motion class each caption names. docs/experiments.md 2.6 measures every term.

    * symmetric InfoNCE of clips and captions (CLIP4Clip / STAN);
    * ``recipe.verb_negatives``: + cross-entropy of every clip over its caption rewritten with each
      motion phrase (:func:`stanlib.teaching.synth.motion_swaps`). In-batch negatives almost never
      differ only in the verb, so without them the text tower never learns the motion words;
    * ``anchors`` (:func:`verb_anchors`): + ``recipe.verb_anchors`` x the cross-entropy of the
      video AND of the caption embedding against the fixed vector of the caption's motion. Without
      fixed targets the twins deadlock: an order-blind start gives a clip and its reversal the same
      embedding, and the loss is then lowest when "moves left" and "moves right" embed alike, which
      removes the very signal the video side needs to learn order.
    """
    device = frames.device
    video = model.encode_video(frames)
    if not recipe.verb_negatives:
        own = model.encode_text(model.tokenize(captions).to(device))
        loss = criterion(video, own)
    else:
        swaps = [c for cap, m in zip(captions, motions.tolist()) for c in synth.motion_swaps(cap, synth.MOTIONS[m])]
        text = model.encode_text(model.tokenize(swaps).to(device)).view(len(captions), len(synth.MOTIONS), -1)
        own = text[torch.arange(len(captions), device=device), motions]        # the true captions
        v, t = F.normalize(video.float(), dim=-1), F.normalize(text.float(), dim=-1)
        verb_logits = recipe.logit_scale * torch.einsum("be,bke->bk", v, t)
        loss = criterion(video, own) + F.cross_entropy(verb_logits, motions)
    if anchors is not None:
        loss = loss + recipe.verb_anchors * (anchors(video, motions) + anchors(own, motions))
    return loss


# =========================================================================== evaluation
@torch.no_grad()
def encode_clips(model: STANModel, frames: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Video embeddings (N, E) of uint8 clips (N, T, H, W, 3), in eval mode, on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model.encode_video(to_model_input(frames[i:i + batch_size], device)).float().cpu()
                      for i in range(0, len(frames), batch_size)])


def direction_metrics(logits: torch.Tensor, labels: torch.Tensor, pair_names: Sequence[str]) -> dict:
    """Recognition with classes in reversed pairs (class 2k and 2k+1 are time reversals).

    direction: own class scored strictly above its partner (ties count as wrong); pair: the
    predicted class is in the right pair; both overall and per pair. An order-blind model gives
    a clip and its reversal the same scores, so on twin test sets its direction is exactly 50%.
    """
    own = logits.gather(1, labels[:, None])[:, 0]
    partner = logits.gather(1, (labels ^ 1)[:, None])[:, 0]
    direction = (own > partner).float()
    pred = logits.argmax(dim=1)
    pair_ok = (pred // 2 == labels // 2).float()
    out = {"top1": 100 * (pred == labels).float().mean().item(), "direction": 100 * direction.mean().item(),
           "pair": 100 * pair_ok.mean().item(), "per_pair": {}}
    for p, name in enumerate(pair_names):
        m = labels // 2 == p
        if m.any():
            out["per_pair"][name] = {"direction": 100 * direction[m].mean().item(),
                                     "pair": 100 * pair_ok[m].mean().item(), "n": int(m.sum())}
    return out


def evaluate_model(model: STANModel, data: TaskData, recipe: Recipe, head: Optional[RecognitionHead] = None,
                   batch_size: int = 32) -> dict:
    """Test-split metrics of a model on a task (plus predictions for a confusion matrix)."""
    video = encode_clips(model, data.test_frames, batch_size)
    labels = data.test_labels
    if data.kind == "recognition":
        head = head if head is not None else recognition_head(model, data, recipe)
        logits = head.logits(video.to(head.class_embeddings.device)).cpu()
        if data.name == "motion":
            out = direction_metrics(logits, labels, data.pair_names)
        else:
            out = {"top1": 100 * (logits.argmax(1) == labels).float().mean().item()}
        out["preds"] = logits.argmax(1).tolist()
        return out
    with torch.no_grad():
        text = model.encode_text(model.tokenize(data.test_captions).to(next(model.parameters()).device)).cpu()
    sim = F.normalize(text.float(), dim=-1) @ F.normalize(video.float(), dim=-1).t()   # (captions, videos)
    ranks = retrieval_metrics(sim)
    out = {"t2v": ranks["t2v"], "v2t": ranks["v2t"]}
    twin = data.test_twin
    has = twin >= 0
    idx = torch.arange(len(sim))
    # twin accuracy: the video scores its own caption strictly above its reversed twin's caption
    # ("moves left" vs "moves right"). An order-blind video encoder gives both twins the same
    # embedding, so exactly one twin of each pair is right: 50%.
    ok = (sim[idx[has], idx[has]] > sim[twin[has], idx[has]]).float()
    out["twin"] = 100 * ok.mean().item()
    # R@1 up to order: the top video is the caption's own or its reversal (an order-blind model's
    # best R@1 is half of this); R@1 / this = how often order is then right
    top = sim.argmax(dim=1)
    out["r1_or_twin"] = 100 * ((top == idx) | ((top == twin) & has)).float().mean().item()
    pairs = labels[has] // 2
    out["per_pair"] = {name: {"twin": 100 * ok[pairs == p].mean().item(), "n": int((pairs == p).sum())}
                       for p, name in enumerate(data.pair_names) if (pairs == p).any()}
    if data.test_appearance is not None:
        out["top1_errors"] = top1_errors(top, labels, data.test_appearance)
    return out


def top1_errors(top: torch.Tensor, labels: torch.Tensor, appearance: torch.Tensor) -> dict:
    """Why a caption's top-1 video (``top``) is wrong, in % of all captions: ``appearance`` (another
    colour x shape), ``pair`` (same look, another motion pair: e.g. "moves left" finds a rotation),
    ``direction`` (same look and pair, reversed motion; mostly the caption's own reversed twin),
    ``other`` (same look and motion, another clip). The four add up to 100 - R@1 unless scores tie
    (:func:`retrieval_metrics` counts an own video tied at the top as a miss; ``argmax`` may not)."""
    idx = torch.arange(len(top))
    wrong = top != idx
    look = appearance[top] != appearance
    pair = ~look & (labels[top] // 2 != labels // 2)
    direction = ~look & ~pair & (labels[top] != labels)
    other = wrong & ~look & ~pair & ~direction
    return {name: 100 * (wrong & m).float().mean().item()
            for name, m in (("appearance", look), ("pair", pair), ("direction", direction), ("other", other))}


def summary(metrics: dict) -> dict:
    """The headline numbers of a metrics dict (for curves and logs)."""
    keys = ("top1", "direction", "pair", "twin", "r1_or_twin")
    out = {k: round(metrics[k], 2) for k in keys if k in metrics}
    if "t2v" in metrics:
        out["R@1"] = round(metrics["t2v"]["R@1"], 2)
    return out


# =========================================================================== one run, a sweep
def run_one(task: str, row: str, seed: int, recipe: Recipe, out_dir: Path = DEFAULT_OUT, *,
            progress: bool = True, force: bool = False, device: str = "cpu",
            save_model: Optional[Path] = None) -> dict:
    """Train and evaluate one (task, row, seed); cached as JSON under ``out_dir/results``.
    ``save_model``: also write the trained model there (fp16 ``save_pretrained`` folder whose
    ``config.extra`` holds the task, row, seed, recipe, head and held-out scores)."""
    key = recipe.key(task)
    path = Path(out_dir) / "results" / f"{task}__{row}__seed{seed}__{key}.json"
    if path.is_file() and not force and (save_model is None or (Path(save_model) / "config.json").is_file()):
        return json.loads(path.read_text())
    data = load_task(task, recipe.n_train, recipe.n_test, recipe.data_seed, recipe.num_frames, progress=progress)
    torch.manual_seed(seed)  # branch initialisation (time embedding, temporal attention)
    model = build_model(row, recipe).to(device)
    trained = ROWS[row][2]
    record = train_model(model, data, recipe, seed, progress=progress, desc=f"{task}/{row}/s{seed}") if trained \
        else {"loss": [], "eval": [], "seconds": 0.0, "cpu_seconds": 0.0}
    metrics = evaluate_model(model, data, recipe, head=record.get("head"))
    metrics.pop("preds", None)
    result = {"task": task, "row": row, "seed": seed, "recipe": asdict(recipe), "recipe_key": key,
              "weights_sha1": weights_digest(recipe.pretrained, recipe.clip),
              "metrics": metrics, "train_seconds": record["seconds"], "train_cpu_seconds": record.get("cpu_seconds", 0.0),
              "trainable": record.get("trainable", 0),
              "loss": record["loss"], "torch_threads": torch.get_num_threads(), "device": _device_name(device),
              "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "versions": _versions()}
    write_atomic(path, json.dumps(result) + "\n")
    if save_model is not None:
        model.config.extra = {"task": task, "row": row, "seed": seed, "recipe": asdict(recipe), "recipe_key": key,
                              "head": resolve_head(recipe, task) if data.kind == "recognition" else None,
                              "classes": list(data.classes), "held_out": summary(metrics),
                              "result_file": path.name}
        model.cpu().save_pretrained(save_model, dtype=torch.float16)
    return result


def _device_name(device: str) -> str:
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    import platform

    model = ""
    try:  # Linux: the CPU's model name ("AMD EPYC ...")
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return f"cpu ({model or platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _versions() -> dict:
    """Versions that can change a run's numbers."""
    import platform

    from stanlib.version import __version__

    return {"stanlib": __version__, "torch": torch.__version__, "python": platform.python_version()}


def run_sweep(tasks: Sequence[str], rows: Sequence[str], seeds: Sequence[int],
              recipe: Union[Recipe, Mapping[str, Recipe]], out_dir: Path = DEFAULT_OUT, progress: bool = True,
              device: str = "cpu", save_models: Optional[Path] = None) -> list[dict]:
    """Every (task, row, seed), cached; prints one line per finished run. ``recipe``: one for
    every task, or one per task (e.g. ``{t: task_recipe(t) for t in tasks}``)."""
    results = []
    for task in tasks:
        task_rec = recipe if isinstance(recipe, Recipe) else recipe[task]
        for seed in seeds:
            for row in rows:
                t0 = time.time()
                dest = None if save_models is None or not ROWS[row][2] else Path(save_models) / task / row / f"seed{seed}"
                res = run_one(task, row, seed, task_rec, out_dir, progress=progress, device=device, save_model=dest)
                results.append(res)
                print(f"[{time.strftime('%H:%M:%S')}] {task:<10} {row:<15} seed {seed}: {summary(res['metrics'])} "
                      f"({res['train_seconds']:.0f} s train, {time.time() - t0:.0f} s total)", flush=True)
    return results


# =========================================================================== presets on any dataset
PRESET_RESULTS = "preset-results"    # subfolder of --out for runs of a preset (stanlib train's path)


def preset_config(preset: str, row: str, seed: int, *, data: Optional[str] = None, data_root: Optional[str] = None,
                  overrides: Sequence[str] = (), out_dir: Optional[Path] = None, quick: bool = False):
    """The :class:`stanlib.engine.presets.Config` of one (preset, row, seed): the preset (the recipe), the row's
    model (``ROWS``: e.g. ``meanpool`` -> ``arch=meanpool``), the seed, then the data and ``overrides``
    (``KEY=VALUE`` as for ``stanlib train --set``). ``data``: ``"FORMAT:DIR"`` (e.g.
    ``"generic_label:worlds/textured"``; the validation split becomes ``test``); ``data_root``: another
    folder in the preset's own format. ``quick``: 2 steps of 4 clips (a smoke run)."""
    from stanlib.engine.presets import apply_overrides, get_preset

    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; expected one of {list(ROWS)}")
    if not ROWS[row][2]:
        raise ValueError(f"row {row!r} is not trained; preset sweeps train every row (use a trained row)")
    cfg = get_preset(preset)
    cfg = replace(cfg, seed=seed, model=replace(cfg.model, **{"temporal": "attn", "arch": "branch", **ROWS[row][1]}))
    items = []
    if data:
        fmt, sep, root = data.partition(":")
        if not sep or not root:
            raise ValueError(f"--data {data!r}: expected FORMAT:DIR, e.g. generic_label:path/to/folder")
        items += [f"dataset={fmt}", f"data_root={root}", "val_split=test"]
    if data_root:
        items.append(f"data_root={data_root}")
    if quick:
        items += ["max_steps=2", "batch_size=4", "eval_every=1000"]
    if out_dir is not None:
        items.append(f"out_dir={out_dir}")
    return apply_overrides(cfg, items + list(overrides))


def preset_key(config) -> str:
    """Short hash of a run's config (without where it writes) and the CLIP weights' bytes.

    The hash is taken over the config's flat form (model fields beside the others; model fields off their
    defaults under ``model_kwargs``), so a cached run keeps its key whatever the nesting of the config."""
    from stanlib.model.config import STANConfig

    d = config.to_dict()
    model = d.pop("model")
    top = ("clip", "pretrained", "arch", "temporal", "depth", "num_frames", "context_length", "logit_scale",
           "learnable_logit_scale")
    defaults = STANConfig().to_dict()
    d.update({k: model[k] for k in top})
    d["model_kwargs"] = {k: v for k, v in model.items() if k not in top and v != defaults[k]}
    d = {k: v for k, v in d.items() if k not in ("out_dir", "num_workers", "device", "name", "description", "seed")}
    return hashlib.sha1((json.dumps(d, sort_keys=True, default=str) + weights_digest(
        config.model.pretrained or "none", config.model.clip)
                         ).encode()).hexdigest()[:8]


def run_preset(preset: str, row: str, seed: int, out_dir: Path = DEFAULT_OUT, *, data: Optional[str] = None,
               data_root: Optional[str] = None, overrides: Sequence[str] = (), quick: bool = False) -> dict:
    """Train one (preset, row, seed) with ``stanlib train``'s trainer (cached by config), evaluate the
    last model on the validation split and write ``out_dir/preset-results/<name>.json``. Recognition with
    declared twins adds direction accuracy, overall and per class pair."""
    from stanlib.engine.evaluate import direction_metrics_from_twins
    from stanlib.engine.trainer import build_trainer, seed_everything

    tag = (data or data_root or "").rstrip("/").split("/")[-1].split(":")[-1]
    name = f"{preset}{'@' + tag if tag else ''}"
    cfg = preset_config(preset, row, seed, data=data, data_root=data_root, overrides=overrides, quick=quick)
    key = preset_key(cfg)
    path = Path(out_dir) / PRESET_RESULTS / f"{name}__{row}__seed{seed}__{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    cfg = replace(cfg, out_dir=str(Path(out_dir) / "preset-runs" / f"{name}__{row}__seed{seed}__{key}"))
    seed_everything(seed)
    trainer = build_trainer(cfg)
    t0, cpu0 = time.time(), time.process_time()
    trainer.fit()
    seconds, cpu = time.time() - t0, time.process_time() - cpu0
    metrics = dict(trainer.state.metrics)
    twins = getattr(trainer.val_set, "twins", None)
    if cfg.task == "recognition" and twins is not None and getattr(trainer, "last_logits", None) is not None:
        logits = trainer.last_logits
        logits = logits.mean(1) if logits.ndim == 3 else logits
        d = direction_metrics_from_twins(logits, torch.as_tensor(trainer.val_set.labels), twins,
                                         class_names=trainer.val_set.classes)
        metrics.update(direction=d["direction"], direction_n=d["n"], per_pair=d["per_pair"])
    result = {"preset": preset, "data": data or data_root or cfg.data_root, "task": name, "row": row, "seed": seed,
              "config": cfg.to_dict(), "config_key": key, "weights_sha1": weights_digest(
                  cfg.model.pretrained or "none", cfg.model.clip),
              "metrics": metrics, "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu, 1),
              "steps": trainer.state.global_step, "loss": [s["loss"] for s in trainer.state.steps],
              "torch_threads": torch.get_num_threads(), "device": _device_name(str(trainer.device)),
              "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "versions": _versions()}
    write_atomic(path, json.dumps(result) + "\n")
    return result


def run_preset_sweep(preset: str, rows: Sequence[str], seeds: Sequence[int], out_dir: Path = DEFAULT_OUT,
                     **kwargs) -> list[dict]:
    """Every (row, seed) of one preset on one dataset (:func:`run_preset`); one line per finished run."""
    results = []
    for seed in seeds:
        for row in rows:
            t0 = time.time()
            res = run_preset(preset, row, seed, out_dir, **kwargs)
            results.append(res)
            m = res["metrics"]
            shown = {k: round(v, 1) for k, v in m.items() if k in ("top1", "direction", "t2v/R@1")}
            print(f"[{time.strftime('%H:%M:%S')}] {res['task']:<22} {row:<12} seed {seed}: {shown} "
                  f"({res['train_seconds']:.0f} s train, {time.time() - t0:.0f} s total)", flush=True)
    return results


def preset_table(results: list[dict]) -> str:
    """Markdown: one line per (dataset, row): seeds, top-1, direction (mean ± std), per-pair direction and the
    mean training time (wall seconds) per run."""
    lines = ["| data | model | seeds | top-1 | direction | per seed | per pair | train s |",
             "|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in sorted(results, key=lambda r: (r["task"], list(ROWS).index(r["row"]), r["seed"])):
        groups.setdefault((r["task"], r["row"]), []).append(r)
    for (task, row), rs in groups.items():
        dirs = [r["metrics"].get("direction") for r in rs]
        pairs = rs[0]["metrics"].get("per_pair") or {}
        pp = ", ".join(f"{_short_pair(p)} {np.mean([r['metrics']['per_pair'][p]['direction'] for r in rs]):.0f}"
                       for p in pairs)
        lines.append(f"| {task} | {ROWS[row][0]} | {len(rs)} | {_mean_std([r['metrics'].get('top1') for r in rs])} "
                     f"| {_mean_std(dirs)} | {', '.join(f'{d:.1f}' for d in dirs if d is not None) or '-'} "
                     f"| {pp or '-'} | {np.mean([r['train_seconds'] for r in rs]):.0f} |")
    return "\n".join(lines)


def _short_pair(name: str) -> str:
    """ "Something moves left / Something moves right" -> "moves left / moves right" (table cells)."""
    return " / ".join(side.strip().removeprefix("Something ").removeprefix("The video ") for side in name.split(" / "))


def load_preset_results(out_dir: Path) -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted((Path(out_dir) / PRESET_RESULTS).glob("*.json"))]


# =========================================================================== tables
def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``: runs that share an
    output folder (several processes side by side) never read a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load_results(out_dir: Path = DEFAULT_OUT, recipe_key: Optional[str] = None) -> list[dict]:
    files = sorted((Path(out_dir) / "results").glob("*.json"))
    results = [json.loads(f.read_text()) for f in files]
    return [r for r in results if recipe_key is None or r["recipe_key"] == recipe_key]


def _mean_std(values: Sequence[Optional[float]]) -> str:
    """"mean ± std" over seeds (sample std), "mean" for one value, "-" for none (None values skipped)."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not v.size:
        return "-"
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}" if len(v) > 1 else f"{v.mean():.1f}"


def _pick(metrics: dict, path: tuple[str, ...]) -> Optional[float]:
    cur = metrics
    for part in path:
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return float(cur)


TABLE_COLUMNS = {
    "motion": [("top-1", ("top1",)), ("direction", ("direction",)), ("pair id", ("pair",))]
    + [(f"dir. {n}", ("per_pair", n, "direction")) for n in synth.PAIR_NAMES],
    "appearance": [("top-1", ("top1",))],
    "captions": [("t2v R@1", ("t2v", "R@1")), ("t2v R@5", ("t2v", "R@5")), ("twin acc.", ("twin",)),
                 ("R@1 own or twin", ("r1_or_twin",))]
    + [(f"twin {n}", ("per_pair", n, "twin")) for n in synth.PAIR_NAMES],
}


def results_table(results: list[dict], task: str, rows: Sequence[str]) -> str:
    """Markdown table (mean ± std over seeds) of one task, one line per row present."""
    cols = TABLE_COLUMNS[task]
    lines = ["| model | seeds | " + " | ".join(c for c, _ in cols) + " | train CPU s |",
             "|---|---|" + "---|" * len(cols) + "---|"]
    for row in rows:
        runs = [r for r in results if r["task"] == task and r["row"] == row]
        if not runs:
            continue
        cells = [_mean_std([v for r in runs if (v := _pick(r["metrics"], key)) is not None]) for _, key in cols]
        secs = np.mean([r.get("train_cpu_seconds", r["train_seconds"]) for r in runs])
        lines.append(f"| {ROWS[row][0]} | {len(runs)} | " + " | ".join(cells) + f" | {secs:.0f} |")
    return "\n".join(lines)


def markdown_report(results: list[dict]) -> str:
    """All tables: main rows and ablations per task, with the recipe of the runs."""
    parts = []
    for key in sorted({r["recipe_key"] for r in results}):
        rs = [r for r in results if r["recipe_key"] == key]
        sha = rs[0].get("weights_sha1", "?")
        parts.append(f"### Recipe `{key}` (CLIP weights sha1 `{sha}`)\n\n```json\n{json.dumps(rs[0]['recipe'])}\n```\n")
        for task in TASK_KINDS:
            if any(r["task"] == task for r in rs):
                parts.append(f"**{task}** (main rows)\n\n{results_table(rs, task, MAIN_ROWS)}\n")
                ablations = [a for a in ABLATION_ROWS if a not in MAIN_ROWS or a == "stan-self"]
                if any(r["task"] == task and r["row"] in ablations[:-1] for r in rs):
                    parts.append(f"**{task}** (Table 6 ablation)\n\n{results_table(rs, task, ABLATION_ROWS)}\n")
                if any(r["task"] == task and r["row"] in ("tdb", "st-adapter", "xclip-msg") for r in rs):
                    parts.append(f"**{task}** (Table 7 structures)\n\n{results_table(rs, task, STRUCTURE_ROWS)}\n")
                if any(r["task"] == task and r["row"] in LEVEL_ROWS for r in rs):
                    parts.append(f"**{task}** (Table 8 levels)\n\n{results_table(rs, task, LEVEL_ROWS)}\n")
    return "\n".join(parts)


def write_report(results: list[dict], out_dir: Path = DEFAULT_OUT) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "results.json", json.dumps(
        [{k: v for k, v in r.items() if k != "loss"} for r in results], indent=1) + "\n")
    path = out_dir / "results.md"
    write_atomic(path, markdown_report(results) + "\n")
    return path


# =========================================================================== command line
def _recipes_from_args(args) -> dict[str, Recipe]:
    """One recipe per task: :func:`task_recipe` (``--quick``: with :data:`QUICK_SIZES`) with ``--recipe``'s changes
    (:data:`RECIPE_SETS`), then the flags' changes."""
    changes = dict(RECIPE_SETS[args.recipe])
    changes |= {k: getattr(args, k) for k in ("steps", "batch_size", "num_frames", "depth", "n_train", "n_test", "lr",
                                             "lr_mult", "pretrained", "clip") if getattr(args, k, None) is not None}
    if args.freeze_clip:
        changes["freeze_clip"] = True
    if args.no_twins:
        changes["twin_batches"] = False
    if args.head:
        changes["head"] = args.head
    if args.freeze_text:
        changes["freeze_text"] = True
    if args.verb_negatives is not None:
        changes["verb_negatives"] = args.verb_negatives
    if args.verb_anchors is not None:
        changes["verb_anchors"] = args.verb_anchors
    if args.same_appearance is not None:
        changes["same_appearance"] = args.same_appearance
    if args.set:
        extra = {}
        for item in args.set:
            key, _, text = item.partition("=")
            try:
                extra[key] = json.loads(text)
            except json.JSONDecodeError:
                extra[key] = text
        changes["model_kwargs"] = extra
    return {t: task_recipe(t, {**QUICK_SIZES, **changes} if args.quick else changes) for t in args.tasks}


def _describe(recipe: Recipe) -> str:
    """The fields that differ from :class:`Recipe`'s defaults."""
    default = asdict(Recipe())
    diff = [f"{k}={v}" for k, v in asdict(recipe).items() if default[k] != v]
    return " ".join(diff) or "the default recipe"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="stanlib experiments", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="train + evaluate (cached per task/row/seed/recipe), then write the tables")
    run.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every row in seconds")
    run.add_argument("--tasks", nargs="+", default=list(TASK_KINDS), choices=list(TASK_KINDS))
    run.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    run.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    run.add_argument("--out", default=str(DEFAULT_OUT))
    run.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    run.add_argument("--device", default="cpu", help="cpu | cuda (results record the device they ran on)")
    run.add_argument("--recipe", choices=list(RECIPE_SETS), default="paper",
                     help="paper (default: stan-tiny-v2, class-name head, plain InfoNCE) | first-clip (stan-tiny, "
                          "orthonormal motion head, verb negatives and anchors for captions); flags change it further")
    run.add_argument("--save-models", default=None, metavar="DIR",
                     help="also save every trained model (fp16) as DIR/TASK/ROW/seedS (the zoo's source)")
    for name, typ in (("steps", int), ("batch-size", int), ("num-frames", int), ("depth", int), ("n-train", int),
                      ("n-test", int), ("lr", float), ("lr-mult", float), ("pretrained", str)):
        run.add_argument(f"--{name}", type=typ, default=None, help="override the recipe")
    run.add_argument("--clip", default=None, choices=sorted(assets.TINY_CLIPS),
                     help="tiny CLIP config (default stan-tiny-v2; stan-tiny: the first one, motion-blind; "
                          "--pretrained DIR/FILE.safetensors for your own weights)")
    run.add_argument("--freeze-clip", action="store_true", help="train only the new layers")
    run.add_argument("--freeze-text", action="store_true", help="retrieval: keep the text tower frozen")
    run.add_argument("--no-twins", action="store_true", help="plain random batches (no reversal twins)")
    run.add_argument("--verb-negatives", action=argparse.BooleanOptionalAction, default=None,
                     help="captions: score each clip against its caption with every motion phrase (default off; "
                          "on in --recipe first-clip)")
    run.add_argument("--verb-anchors", type=float, default=None, metavar="W",
                     help="captions: weight of the verb-anchor loss (video and caption classified against a fixed "
                          "orthonormal vector per motion; default 0 = off; 1 in --recipe first-clip)")
    run.add_argument("--same-appearance", type=int, default=None, metavar="N",
                     help="captions: batches made of groups of N reversal pairs that share one colour x shape "
                          "(default 0: random pairs)")
    run.add_argument("--head", choices=HEADS, default=None,
                     help="recognition head (default text: the class names' text embeddings, the paper's head; "
                          "orthogonal: frozen random orthonormal class vectors; linear: trainable; task: text for "
                          "appearance, orthogonal for motion, the first tiny CLIP's heads)")
    run.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="extra create_model arguments for every row")
    run.add_argument("--preset", default=None,
                     help="train each row with this `stanlib train` preset (its recipe, on its data or --data) "
                          "instead of the in-memory tasks; results go to OUT/preset-results")
    run.add_argument("--data", default=None, metavar="FORMAT:DIR",
                     help="with --preset: another dataset, e.g. generic_label:path/to/folder (split test)")
    run.add_argument("--data-root", default=None, help="with --preset: the preset's format in another folder")
    run.add_argument("--config", dest="config_set", action="append", default=[], metavar="KEY=VALUE",
                     help="with --preset: override a config field (repeatable), as `stanlib train --set`")
    table = sub.add_parser("table", help="print / write the markdown tables from result files")
    table.add_argument("--out", default=str(RESULTS_DIR),
                       help="folder of a run's results (default: the committed results shipped with stanlib)")
    table.add_argument("--teaching", action="store_true",
                       help="print the README's teaching-world table (default recipes, every seed) instead")
    table.add_argument("--recipe", choices=list(RECIPE_SETS), default="paper",
                       help="with --teaching: the table of this recipe's runs (paper or first-clip)")
    table.add_argument("--presets", action="store_true",
                       help="the table of preset runs (`run --preset`) under OUT/preset-results")
    zoo_cmd = sub.add_parser("zoo", help="train (cached) and pack the teaching zoo: the course's trained tiny models")
    zoo_cmd.add_argument("--out", default=str(RESULTS_DIR), help="where the runs' result files go (default: the "
                         "committed results shipped with stanlib)")
    zoo_cmd.add_argument("--models", default="runs/zoo-src", help="where the full trained models are saved first")
    zoo_cmd.add_argument("--zoo", default=None, help="zoo folder (default: the package's stanlib/assets/zoo)")
    zoo_cmd.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    zoo_cmd.add_argument("--device", default="cpu")
    sub.add_parser("list", help="the rows and tasks")
    return ap


def cli_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)

    if args.cmd == "list":
        for name, (label, kwargs, trained) in ROWS.items():
            print(f"{name:<15} {label:<45} {kwargs}{'' if trained else ' (not trained)'}")
        print("tasks:", ", ".join(f"{t} ({k})" for t, k in TASK_KINDS.items()))
        return 0
    out = Path(args.out)
    if args.cmd == "zoo":
        return _zoo_main(args)
    if args.cmd == "table":
        presets = args.presets
        results = load_preset_results(out) if presets else load_results(out)
        if not results:
            print(f"stanlib experiments: no results under {out / (PRESET_RESULTS if presets else 'results')}; run "
                  f"`stanlib experiments run{' --preset ...' if presets else ''}` first", file=sys.stderr)
            return 2
        if presets or args.teaching:
            print(preset_table(results) if presets else teaching_table(results, RECIPE_SETS[args.recipe]))
            return 0
        print(markdown_report(results))
        print(f"wrote {write_report(results, out)}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.preset or args.data or args.data_root or args.config_set:
        return _preset_main(args, out)
    recipes = _recipes_from_args(args)
    for task, recipe in recipes.items():
        print(f"{task} recipe (cache key {recipe.key(task)}): {_describe(recipe)}")
    t0 = time.time()
    try:
        results = run_sweep(args.tasks, args.rows, args.seeds, recipes, out, device=args.device,
                            save_models=args.save_models)
    except FileNotFoundError as err:
        print(f"stanlib experiments: {err}", file=sys.stderr)
        return 2
    path = write_report(load_results(out), out)
    print(markdown_report(results))
    print(f"wrote {path} and {out / 'results.json'}; wall time {time.time() - t0:.0f} s")
    return 0


def _preset_main(args, out: Path) -> int:
    """``stanlib experiments run --preset P [--data FORMAT:DIR]``: rows x seeds through ``stanlib train``."""
    from stanlib.engine.presets import ConfigError

    if not args.preset:
        print("stanlib experiments: --data, --data-root and --config need --preset (e.g. --preset tiny-motion)",
              file=sys.stderr)
        return 2
    rows = [r for r in args.rows if ROWS[r][2]] if args.rows == list(ROWS) else args.rows
    t0 = time.time()
    try:
        results = run_preset_sweep(args.preset, rows, args.seeds, out, data=args.data, data_root=args.data_root,
                                   overrides=args.config_set, quick=args.quick)
    except (ConfigError, KeyError, ValueError, FileNotFoundError) as err:
        print(f"stanlib experiments: {err.args[0] if isinstance(err, KeyError) and err.args else err}",
              file=sys.stderr)
        return 2
    print(preset_table(results))
    print(f"results in {out / PRESET_RESULTS}; wall time {time.time() - t0:.0f} s")
    return 0


def _zoo_main(args) -> int:
    """``stanlib experiments zoo``: the zoo's runs (seed 0; :data:`FIRST_CLIP` for ``ZOO_MODELS``, the default
    recipes with the named changes for ``PAPER_MODELS``; cached), then :func:`stanlib.weights.zoo.build`."""
    from stanlib.weights import zoo

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    for task, rows in zoo.ZOO_MODELS.items():
        run_sweep([task], list(rows), [0], {task: task_recipe(task, FIRST_CLIP)}, Path(args.out), device=args.device,
                  save_models=Path(args.models))
    for task, row, changes in zoo.PAPER_MODELS.values():
        run_sweep([task], [row], [0], {task: replace(task_recipe(task), **changes)}, Path(args.out),
                  device=args.device, save_models=Path(args.models) / zoo.PAPER_SOURCE)
    root = Path(args.zoo) if args.zoo else zoo.ZOO_DIR
    for name, stats in zoo.build(Path(args.models), root):
        print(f"zoo:{name}: {stats['stored']} tensors stored, {stats['from_base']} from the tiny CLIP, "
              f"{stats['bytes'] / 1e6:.2f} MB")
    print(f"zoo written to {root}; wall time {time.time() - t0:.0f} s")
    return 0


# =========================================================================== the README's table
TEACHING_ROWS = tuple(ROWS)


def default_results(results: list[dict], changes: Optional[dict] = None) -> dict[tuple[str, str], list[dict]]:
    """Results of each task's default recipe (:func:`task_recipe`; with ``changes``, e.g. :data:`FIRST_CLIP`),
    grouped by (task, row), sorted by seed."""
    keys = {task: task_recipe(task, changes).key(task) for task in TASK_KINDS}
    out: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        if keys.get(r["task"]) == r["recipe_key"]:
            out.setdefault((r["task"], r["row"]), []).append(r)
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in out.items()}


def teaching_table(results: list[dict], changes: Optional[dict] = None) -> str:
    """The README's teaching-world table: one line per row with results under the default recipes (with
    ``changes``: e.g. :data:`FIRST_CLIP`'s), mean ± std over seeds; per seed and per pair for motion direction."""
    res = default_results(results, changes)
    head = ("| model | seeds (motion / appearance / captions) | motion direction | per seed | per pair: "
            + ", ".join(synth.PAIR_NAMES) + " | motion top-1 | appearance top-1 | captions t2v R@1 | captions twin acc. |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for row in TEACHING_ROWS:
        mo, ap, ca = (res.get((t, row), []) for t in ("motion", "appearance", "captions"))
        if not (mo or ap or ca):
            continue
        pp = " / ".join(f"{np.mean([r['metrics']['per_pair'][p]['direction'] for r in mo]):.0f}"
                        for p in synth.PAIR_NAMES) if mo else "-"
        seeds = ", ".join(f"{r['metrics']['direction']:.1f}" for r in mo) or "-"
        lines.append(
            f"| {ROWS[row][0]} | {len(mo)} / {len(ap)} / {len(ca)} | {_mean_std([r['metrics']['direction'] for r in mo])} "
            f"| {seeds} | {pp} | {_mean_std([r['metrics']['top1'] for r in mo])} | {_mean_std([r['metrics']['top1'] for r in ap])} "
            f"| {_mean_std([r['metrics']['t2v']['R@1'] for r in ca])} | {_mean_std([r['metrics']['twin'] for r in ca])} |")
    return "\n".join(lines)
