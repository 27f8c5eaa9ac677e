"""The trainer: one loop for one CPU, one GPU, or many GPUs (``torchrun``), and ``stanlib train``.

::

    stanlib train --preset tiny-motion                          # CPU, minutes
    stanlib train --preset msrvtt-b32 --data-root /data/msrvtt  # one GPU
    torchrun --nproc_per_node=8 -m stanlib train --preset msrvtt-b32 --data-root /data/msrvtt

In Python (a notebook)::

    trainer = Trainer(model, train_set, val_set, config, callbacks=[live_curves()])
    history = trainer.fit()

What one optimiser step does (docs/architecture.md section 7):

- AdamW (betas 0.9/0.98, eps 1e-8); parameters whose name starts with ``branch.`` (the STAN
  branch) train at ``lr * lr_mult`` (10x); norms, biases and embeddings get no weight decay.
- Linear warm-up then cosine decay, updated every optimiser step.
- Mixed precision: bf16 where the GPU supports it, else fp16 with a GradScaler; off on CPU.
- Gradients clipped at L2 norm 5.
- Gradient accumulation (``grad_accum``) sums the gradients of several micro-batches before a
  step. It saves memory but does NOT add in-batch negatives: each micro-batch's InfoNCE only
  compares clips inside that micro-batch. More GPUs do add negatives (features are gathered).

Checkpoints (``last.pt`` every epoch and on Ctrl-C, ``best.pt`` at the best evaluation) are
written atomically (temporary file, then rename) and read with ``torch.load(weights_only=True)``.
The temporary file is always created new: a file or symbolic link already at its name is removed,
never written through. Resuming restores model, optimiser, scheduler, grad scaler, epoch/step and
every RNG state.

Faults never cost finished training: ``last.pt`` is written when an epoch's training ends, before
its evaluation. A test video that cannot be decoded at evaluation time stops the run with an
:class:`EvaluationError` naming the file and the saved checkpoint; with ``skip_bad_eval`` (CLI
``--skip-bad-eval``) that evaluation is skipped with a warning and training goes on. A training
batch in which every clip failed to load stops the run with a :class:`DataError` naming the files,
after saving ``last.pt`` (state at the start of that step).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import random
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, DistributedSampler

from stanlib.data.transforms import CLIP_MEAN, CLIP_STD, frames_to_device, pixel_stats
from stanlib.engine.distributed import DistInfo, current_dist, dist_ready, init_distributed
from stanlib.engine.evaluate import default_collate_fn, evaluate_recognition, evaluate_retrieval, flatten_rows
from stanlib.engine.losses import ContrastiveLoss, RecognitionHead, class_text_embeddings, orthogonal_classes
from stanlib.engine.optim import (  # noqa: F401
    NO_DECAY_KEYWORDS,
    Stepper,
    amp_settings,
    autocast,
    flush_denormals,
    no_weight_decay,
    param_groups,
    warmup_cosine,
)
from stanlib.engine.optim import build_optimizer as _build_optimizer
from stanlib.engine.presets import Config

CHECKPOINT_FORMAT = "stanlib-checkpoint-v1"
Callback = Callable[[str, "TrainState"], None]


# =========================================================================== processes and seeds


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: derive NumPy/Python seeds from the worker's torch seed.

    torch seeds each worker with ``base_seed + worker_id`` (base_seed comes from the loader's
    generator, which the trainer re-seeds every epoch), but NumPy and ``random`` would otherwise
    start identical in every worker.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def capture_rng() -> dict:
    """All RNG states as tensors and plain types (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Inverse of :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def build_optimizer(model: nn.Module, config: Config, extra: Optional[dict[str, nn.Module]] = None
                    ) -> torch.optim.AdamW:
    """AdamW over :func:`stanlib.engine.param_groups` with a config's lr, weight decay, lr_mult, betas, eps."""
    return _build_optimizer(model, config.lr, config.weight_decay, config.lr_mult, extra, config.betas, config.eps)


# =========================================================================== checkpoints
class CheckpointError(RuntimeError):
    """A checkpoint file could not be read or does not fit the model."""


class DataError(RuntimeError):
    """Training cannot go on with the data: e.g. every clip of a batch failed to load."""


class EvaluationError(RuntimeError):
    """An evaluation failed (e.g. a test video cannot be decoded); the message names the file and
    the checkpoint that holds the training done so far."""


def _open_new(path: Path, mode: str = "wb"):
    """Open a new file at ``path`` for writing; a file or symbolic link already there is removed
    first, so the write never goes through a link to somewhere else."""
    if path.is_symlink() or path.exists():
        path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, 0o644), mode, **({} if "b" in mode else {"newline": "", "encoding": "utf-8"}))


def save_checkpoint(obj: dict, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically: write ``path.tmp``, then ``os.replace``.

    If anything fails mid-write, the previous file at ``path`` is untouched and the temporary
    file is removed. The temporary file is created new (never written through a link).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with _open_new(tmp) as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a stanlib checkpoint with ``weights_only=True`` (no arbitrary unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). "
            "The file is corrupt or truncated (e.g. the disk filled up or the copy was interrupted). "
            "Use another checkpoint of the run (last.pt / best.pt) or start again.") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a stanlib training checkpoint (expected a dict with "
                              f"format={CHECKPOINT_FORMAT!r}); for plain weights use stanlib.weights")
    return ckpt


# =========================================================================== data
class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (works single-process too) that can start mid-epoch.

    The order of epoch ``e`` depends only on ``(seed, e)``, so after ``set_epoch(e, skip=n)`` the
    sampler yields exactly the indices an uninterrupted run would still have drawn in that epoch.
    """

    def __init__(self, dataset, info: DistInfo, shuffle: bool = True, seed: int = 0, drop_last: bool = True):
        super().__init__(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle,
                         seed=seed, drop_last=drop_last)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip


class TwinSampler(ResumableSampler):
    """Twin batches: each clip is followed by its declared time reversal, so a batch of B clips holds
    B/2 reversal pairs whose only difference is the order of the frames (the experiments' batching;
    about +4 points of direction in the recipe sweeps, docs/experiments.md 2). Clips without a twin are
    not drawn. Pairs are shuffled per epoch from ``(seed, epoch)`` and split between processes whole."""

    def __init__(self, twins: Sequence[int], info: DistInfo, seed: int = 0):
        self.pairs = [(i, t) for i, t in enumerate(twins) if 0 <= t and i < t]
        if not self.pairs:
            raise ValueError("twin_batches: the training split declares no reversal pairs")
        self.info, self.seed, self.epoch, self.skip = info, seed, 0, 0
        per_rank = len(self.pairs) // info.world_size
        self.num_samples = 2 * per_rank

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.pairs), generator=g).tolist()
        mine = order[self.info.rank::self.info.world_size][:self.num_samples // 2]
        indices = [i for k in mine for i in self.pairs[k]]
        return iter(indices[self.skip:])


def _to_device(batch: dict, device: torch.device, stats: tuple = (CLIP_MEAN, CLIP_STD)) -> dict:
    """The batch's tensors on ``device``; uint8 frames (``normalise_on="device"``) are normalised there."""
    return {k: frames_to_device(v, device, *stats) if k == "frames" else
            v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def normalise_on_device(config: Config) -> bool:
    """Whether the run copies uint8 frames and normalises them on its device (``Config.normalise_on``)."""
    if config.normalise_on != "auto":
        return config.normalise_on == "device"
    return config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available())


# =========================================================================== the training module
class TrainModule(nn.Module):
    """Model + recognition head in one module, so DDP sees (and synchronises) every parameter.

    ``forward(frames, tokens)`` -> (video, text, logit_scale) (retrieval; the scale goes through
    the forward so a learnable one is synchronised like every other parameter);
    ``forward(frames)`` -> class logits (recognition).
    """

    def __init__(self, model: nn.Module, head: Optional[RecognitionHead] = None,
                 class_tokens: Optional[torch.Tensor] = None):
        super().__init__()
        self.model = model
        self.head = head
        # trainable text tower for recognition: class embeddings recomputed every step
        self.register_buffer("class_tokens", class_tokens, persistent=False)

    def forward(self, frames: torch.Tensor, tokens: Optional[torch.Tensor] = None):
        video = self.model.encode_video(frames)
        if self.head is None:
            return video, self.model.encode_text(tokens), self.model.logit_scale
        if self.class_tokens is not None:
            emb = nn.functional.normalize(self.model.encode_text(self.class_tokens).float(), dim=-1)
            return self.head.scale * nn.functional.normalize(video.float(), dim=-1) @ emb.t()
        return self.head.logits(video)


@dataclass
class TrainState:
    """What callbacks see. ``history``: one dict per epoch; ``steps``: logged training steps."""

    epoch: int = 0                  # current epoch (0-based); after an epoch ends: epochs done
    step_in_epoch: int = 0          # optimiser steps done in the current epoch
    global_step: int = 0            # optimiser steps done in total
    steps_per_epoch: int = 0
    total_steps: int = 0
    loss: float = float("nan")      # last step's loss
    lr: float = 0.0                 # last step's CLIP learning rate
    clips_per_s: float = 0.0
    metrics: dict = field(default_factory=dict)   # last evaluation
    best: Optional[float] = None
    best_epoch: Optional[int] = None
    history: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    epoch_losses: list = field(default_factory=list)   # losses of the current epoch's steps
    skipped: list = field(default_factory=list)   # bad videos skipped in the current epoch
    finished: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def lower_is_better(metric: str) -> bool:
    return metric.endswith(("MdR", "MnR")) or "loss" in metric


class Trainer:
    """Train and evaluate a STAN model on a retrieval or recognition dataset.

    Args:
        model: a :class:`stanlib.model.STANModel` (or anything with ``encode_video``,
            ``encode_text``, ``tokenize``, ``logit_scale`` and its new layers under ``branch.``).
        train_set: items ``{"frames": (T,3,H,W), "tokens": (C,)}`` (retrieval) or
            ``{"frames", "label"}`` (recognition; ``train_set.classes`` names the classes).
        val_set: retrieval: a ``VideoTextDataset`` in mode ``"videos"`` (``tokens()``,
            ``caption_video``); recognition: a ``VideoLabelDataset`` (``labels``), frames
            (V,T,3,H,W) for multi-view testing. ``None``: no evaluation.
        config: a :class:`stanlib.engine.presets.Config` (optimiser, schedule, AMP, batch...).
        out_dir: where checkpoints, ``config.json``, ``metrics.json/.csv`` and ``curves.png`` go
            (default ``config.run_dir``).
        callbacks: functions ``fn(event, state)`` called on ``"train_start"``, ``"step_end"``,
            ``"eval_end"``, ``"epoch_end"``, ``"train_end"`` (see :func:`live_curves`).
        class_names: recognition class names (default ``train_set.classes``).
        collate_fn: batch collation (default ``stanlib.data.collate``).
        quiet: no tqdm bars or prints.
    """

    def __init__(self, model: nn.Module, train_set, val_set, config: Config, *, out_dir=None,
                 callbacks: Sequence[Callback] = (), class_names: Optional[Sequence[str]] = None,
                 collate_fn=None, quiet: bool = False):
        self.config = config
        self.info = current_dist()
        self.device = self._pick_device(config.device)
        self.out_dir = Path(out_dir) if out_dir is not None else config.run_dir
        self.callbacks = list(callbacks)
        self.quiet = quiet or not self.info.is_main
        self.collate_fn = collate_fn or default_collate_fn()
        self.train_set, self.val_set = train_set, val_set
        self._pixel_stats = pixel_stats(train_set)  # uint8 frames are normalised with the dataset's statistics
        self.amp_dtype, use_scaler = amp_settings(self.device, config.amp)
        self.state = TrainState()

        self.model = model.to(self.device)
        self._freeze_unused(model)
        if config.grad_checkpointing:
            model.set_grad_checkpointing(True)
        self._check_vocabulary(class_names)
        self.head, class_tokens = self._build_head(class_names)
        self.module = TrainModule(self.model, self.head, class_tokens).to(self.device)
        self.ddp = None
        if self.info.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = nn.parallel.DistributedDataParallel(self.module, device_ids=ids)
        self.criterion = ContrastiveLoss(config.model.logit_scale).to(self.device)

        extra = {"head": self.head} if self.head is not None and self.head.linear is not None else None
        self.optimizer = build_optimizer(self.model, config, extra)
        self.loader, self.sampler = self._build_loader()
        self.micro_batch = config.batch_size // (self.info.world_size * config.grad_accum)
        self.state.steps_per_epoch = len(self.sampler) // (self.micro_batch * config.grad_accum)
        if self.state.steps_per_epoch == 0:
            raise ValueError(f"the training set ({len(train_set)} clips) is smaller than one optimiser step "
                             f"({config.batch_size} clips); lower batch_size")
        total = config.epochs * self.state.steps_per_epoch
        self.state.total_steps = min(total, config.max_steps) if config.max_steps else total
        warmup = config.warmup_steps if config.warmup_steps is not None else \
            round(config.warmup_epochs * self.state.steps_per_epoch)
        warmup = max(1, min(warmup, self.state.total_steps))
        self.stepper = Stepper(self.optimizer, warmup_cosine(warmup, self.state.total_steps, config.min_lr_ratio),
                               grad_clip=config.grad_clip, scaler=use_scaler)
        self.scheduler, self.scaler = self.stepper.scheduler, self.stepper.scaler
        self._rng_at_step_start: Optional[dict] = None

    # ------------------------------------------------------------------ set-up helpers
    def _pick_device(self, name: str) -> torch.device:
        if name != "auto":
            return torch.device(name)
        if torch.cuda.is_available():
            return torch.device("cuda", self.info.local_rank)
        return torch.device("cpu")

    def _freeze_unused(self, model: nn.Module) -> None:
        """Freeze what the loss never touches (DDP needs every trainable parameter used)."""
        clip = getattr(model, "clip", None)
        for name in ("logit_scale", "logit_bias"):  # CLIP's own scale: STAN uses a fixed one
            p = getattr(clip, name, None)
            if isinstance(p, nn.Parameter):
                p.requires_grad_(False)
        if self.config.freeze_text and clip is not None:
            for name, p in clip.named_parameters():
                if not name.startswith("visual."):
                    p.requires_grad_(False)

    def _check_vocabulary(self, class_names) -> None:
        """Class names (recognition) and captions (retrieval, both splits) with words the tokenizer maps
        to ``<unk>``: :class:`stanlib.model.tokenizer.UnknownWordsError` naming them, or a warning with
        ``config.allow_unknown_words``. BPE tokenizers know every word: nothing to check."""
        from stanlib.model.tokenizer import check_words

        allow = self.config.allow_unknown_words
        tokenizer = getattr(self.model, "tokenizer", None)
        if self.config.task == "recognition":
            if self.config.head == "orthogonal":   # fixed class vectors: the class names are never tokenized
                return
            names = class_names if class_names is not None else getattr(self.train_set, "classes", None)
            if names and tokenizer is not None:
                prompts = [self.config.class_prompt.format(n) for n in names]
                check_words(prompts, tokenizer, "the class names", allow=allow)
            return
        for split, dataset in (("training", self.train_set), ("validation", self.val_set)):
            captions = getattr(dataset, "captions", None)
            tok = getattr(dataset, "tokenizer", None) or tokenizer
            if captions and tok is not None:
                check_words(captions, tok, f"the {split} captions", allow=allow)

    def _build_head(self, class_names) -> tuple[Optional[RecognitionHead], Optional[torch.Tensor]]:
        if self.config.task != "recognition":
            return None, None
        names = list(class_names if class_names is not None else getattr(self.train_set, "classes", []))
        if not names:
            raise ValueError("recognition needs class names: pass class_names= or a dataset with .classes")
        if self.config.head == "orthogonal":   # fixed class vectors: no text involved
            emb = orthogonal_classes(len(names), self.model.embed_dim)
        else:
            emb = class_text_embeddings(self.model, names, self.config.class_prompt, warn_unknown=False)
        head = RecognitionHead(emb, scale=self.config.model.logit_scale, linear=self.config.head == "linear",
                               label_smoothing=self.config.label_smoothing).to(self.device)
        self.class_names = names
        tokens = None
        if not self.config.freeze_text and self.config.head == "text":
            tokens = self.model.tokenize([self.config.class_prompt.format(n) for n in names]).to(self.device)
        return head, tokens

    def _build_loader(self) -> tuple[DataLoader, ResumableSampler]:
        cfg = self.config
        per_process = cfg.batch_size // self.info.world_size
        if cfg.batch_size % (self.info.world_size * cfg.grad_accum):
            raise ValueError(f"batch_size={cfg.batch_size} must be divisible by world_size x grad_accum = "
                             f"{self.info.world_size} x {cfg.grad_accum}")
        if cfg.twin_batches:
            twins = getattr(self.train_set, "twins", None)
            if twins is None:
                raise ValueError("twin_batches=true needs reversal twins declared in the training split (a twin "
                                 "column, twins.csv or synth_meta.json; `stanlib synth --twin-train` writes them); "
                                 "or set twin_batches=false")
            sampler = TwinSampler(twins, self.info, seed=cfg.seed)
        else:
            sampler = ResumableSampler(self.train_set, self.info, shuffle=True, seed=cfg.seed, drop_last=True)
        self._loader_gen = torch.Generator()
        loader = DataLoader(self.train_set, batch_size=per_process // cfg.grad_accum, sampler=sampler,
                            num_workers=cfg.num_workers, collate_fn=self.collate_fn, drop_last=True,
                            worker_init_fn=seed_worker, generator=self._loader_gen,
                            pin_memory=self.device.type == "cuda", persistent_workers=False)
        return loader, sampler

    def _log(self, *args) -> None:
        if not self.quiet:
            print(*args, flush=True)

    def _emit(self, event: str) -> None:
        for fn in self.callbacks:
            fn(event, self.state)

    def describe(self) -> str:
        """Batch arithmetic, printed at start: per-GPU and total batch, negatives, warning."""
        cfg, world = self.config, self.info.world_size
        negatives = cfg.batch_size // cfg.grad_accum
        kind = "GPU" if self.device.type == "cuda" else "process"
        kinds = kind + ("" if world == 1 else "s" if kind == "GPU" else "es")
        text = (f"batch: {self.micro_batch} clips per {kind} x {world} {kinds} x {cfg.grad_accum} accumulation "
                f"= {cfg.batch_size} clips per step (recipe {cfg.recipe_batch}); "
                f"{self.state.steps_per_epoch} steps/epoch, {self.state.total_steps} steps; device {self.device}, "
                f"amp {self.amp_dtype or 'off'}")
        if cfg.task == "retrieval":
            text += f"; in-batch negatives {negatives - 1}"
            if negatives < cfg.recipe_batch / 2:
                text += (f"\nWARNING: {negatives} clips per contrastive batch is far below the recipe's "
                         f"{cfg.recipe_batch}: fewer negatives usually mean lower R@1. More GPUs raise it "
                         "(features are gathered); gradient accumulation does not.")
        elif cfg.batch_size < cfg.recipe_batch / 2:
            text += f"\nWARNING: total batch {cfg.batch_size} is far below the recipe's {cfg.recipe_batch}."
        return text

    # ------------------------------------------------------------------ one step
    def _loss(self, batch: dict) -> torch.Tensor:
        if "frames" not in batch or batch["frames"].shape[0] == 0:
            failed = list(batch.get("skipped") or [])
            shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
            raise DataError(f"every clip of a training batch failed to load ({len(failed)}: {shown}). Run "
                            "`stanlib data check <dataset> --root ... --write-clean clean.csv` and train on the "
                            "clean list")
        frames = batch["frames"]
        net = self.ddp or self.module
        with autocast(self.device, self.amp_dtype):
            if self.config.task == "retrieval":
                video, text, scale = net(frames, batch["tokens"])
                return self.criterion(video, text, scale)
            logits = net(frames)
        labels = batch["label"]
        return nn.functional.cross_entropy(logits.float(), labels, label_smoothing=self.config.label_smoothing)

    def _note_skipped(self, batch: dict) -> None:
        skipped = batch.get("skipped") if isinstance(batch, dict) else None
        if skipped:
            self.state.skipped.extend(str(p) for p in skipped)

    def train_step(self, batches: Sequence[dict]) -> float:
        """One optimiser step over ``grad_accum`` micro-batches; returns the mean loss."""
        self.stepper.zero_grad()
        total = 0.0
        for i, batch in enumerate(batches):
            self._note_skipped(batch)
            batch = _to_device(batch, self.device, self._pixel_stats)
            last = i == len(batches) - 1
            sync = contextlib.nullcontext() if (self.ddp is None or last) else self.ddp.no_sync()
            with sync:
                loss = self._loss(batch)
                if not torch.isfinite(loss):
                    idx = batch.get("video_idx")
                    idx = idx.tolist() if torch.is_tensor(idx) else idx
                    raise FloatingPointError(
                        f"loss is {loss.item()} at step {self.state.global_step} (videos {idx}). "
                        "Check the data (`stanlib data check`), lower lr, or use amp=off.")
                self.stepper.backward(loss, divide=len(batches))
            total += loss.item()
        self.stepper.update()
        loss = torch.tensor(total / len(batches), device=self.device)
        if self.info.world_size > 1:
            dist.all_reduce(loss)
            loss /= self.info.world_size
        return float(loss)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, dataset=None, **kwargs) -> dict[str, float]:
        """Metrics of the current model on ``dataset`` (default: the validation set), flat dict."""
        dataset = dataset if dataset is not None else self.val_set
        bs = self.config.eval_batch_size or max(1, self.micro_batch)
        common = dict(batch_size=bs, device=self.device, num_workers=self.config.num_workers,
                      amp_dtype=self.amp_dtype, collate_fn=self.collate_fn)
        if self.config.task == "retrieval":
            rows, _ = evaluate_retrieval(self.model, dataset, **common, **kwargs)
            self.last_rows = rows
            return flatten_rows(rows)
        if self.head is not None and self.module.class_tokens is not None:  # trainable text: refresh classes
            self.head.class_embeddings.copy_(class_text_embeddings(self.model, self.class_names,
                                                                   self.config.class_prompt, warn_unknown=False))
        metrics, logits = evaluate_recognition(self.model, dataset, self.head, **common)
        self.last_logits = logits
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, *, full: bool = True, rng: Optional[dict] = None) -> dict:
        """The checkpoint dict (tensors and plain types only)."""
        ckpt = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "model_config": self.model.config.to_dict() if hasattr(self.model, "config") else {},
            "model": self.model.state_dict(),
            "head": self.head.state_dict() if self.head is not None else None,
            "class_names": list(getattr(self, "class_names", []) or []),
            "state": {k: v for k, v in self.state.to_dict().items() if k != "skipped"},
        }
        if full:
            ckpt.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                        scaler=self.scaler.state_dict(), rng=rng or capture_rng(),
                        world_size=self.info.world_size)
        return ckpt

    def save(self, name: str = "last.pt", *, full: bool = True, rng: Optional[dict] = None) -> Optional[Path]:
        if not self.info.is_main:
            return None
        return save_checkpoint(self.checkpoint(full=full, rng=rng), self.out_dir / name)

    def load(self, path: str | Path) -> None:
        """Restore a full checkpoint written by :meth:`save` (model, optimiser, scheduler, scaler,
        epoch/step, history and RNG states)."""
        ckpt = load_checkpoint(path)
        if "optimizer" not in ckpt:
            raise CheckpointError(f"{path} holds weights only (best.pt?); resume from last.pt")
        try:
            self.model.load_state_dict(ckpt["model"])
            if self.head is not None and ckpt.get("head") is not None:
                self.head.load_state_dict(ckpt["head"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"{path} does not fit this model/config: {err}") from err
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        if ckpt.get("world_size", 1) != self.info.world_size:
            warnings.warn(f"{path} was written by {ckpt.get('world_size')} processes, resuming with "
                          f"{self.info.world_size}: the data order of the interrupted epoch changes")
        changed = {k for k, v in ckpt.get("config", {}).items()
                   if k not in ("out_dir", "epochs", "max_steps", "num_workers", "device", "data_root",
                                "skip_bad_eval")
                   and v != self.config.to_dict().get(k)}
        if changed:
            warnings.warn(f"resuming {path} with a different config for {sorted(changed)}")
        saved = ckpt["state"]
        for key in ("epoch", "step_in_epoch", "global_step", "best", "best_epoch", "history", "steps",
                    "epoch_losses", "metrics", "loss", "lr"):
            setattr(self.state, key, saved[key])
        self._resume_rng = ckpt["rng"]
        self._log(f"resumed from {path}: epoch {self.state.epoch}, step {self.state.step_in_epoch}/"
                  f"{self.state.steps_per_epoch} (global {self.state.global_step})")

    # ------------------------------------------------------------------ the loop
    def fit(self, resume: Optional[str | Path] = None) -> list[dict]:
        """Train for ``config.epochs`` (or ``max_steps``); returns the per-epoch history.

        Ctrl-C saves ``last.pt`` (state as of the last finished step) before re-raising, so
        ``fit(resume=".../last.pt")`` continues where it stopped.
        """
        cfg = self.config
        self._resume_rng = None
        if resume is not None:
            self.load(resume)
        if self.info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.out_dir / "config.json")
        self._log(self.describe())
        self._last_plot = time.monotonic()      # first redraw of curves.png after a minute (or at the end)
        if self._resume_rng is not None:
            restore_rng(self._resume_rng)       # last: set-up above must not consume resumed randomness
        self._emit("train_start")
        try:
            with flush_denormals(self.device.type == "cpu"):
                while self.state.epoch < cfg.epochs and self.state.global_step < self.state.total_steps:
                    self._train_epoch()
                    if self.state.step_in_epoch < self.state.steps_per_epoch:
                        break                    # max_steps reached mid-epoch
                    self._end_epoch()
                if self.state.step_in_epoch:     # stopped mid-epoch by max_steps: evaluate once more
                    self._end_epoch()
        except KeyboardInterrupt:
            path = self.save("last.pt", rng=self._rng_at_step_start)
            self._log(f"\ninterrupted: saved {path} (epoch {self.state.epoch}, step {self.state.step_in_epoch}). "
                      f"Resume with fit(resume='{path}') or `stanlib train ... --resume {path}`")
            raise
        except DataError as err:  # keep the steps done so far, then stop with the message
            path = self.save("last.pt", rng=self._rng_at_step_start)
            raise DataError(f"{err} (training so far saved in {path}: epoch {self.state.epoch}, step "
                            f"{self.state.step_in_epoch})") from None
        self.state.finished = True
        self.write_metrics(plot=True)
        self._emit("train_end")
        return self.state.history

    def _train_epoch(self) -> None:
        from tqdm.auto import tqdm

        cfg, st = self.config, self.state
        skip = st.step_in_epoch * cfg.grad_accum * self.micro_batch
        self.sampler.set_epoch(st.epoch, skip=skip)
        self._loader_gen.manual_seed(cfg.seed * 100_003 + st.epoch * 1_009 + st.step_in_epoch)
        self.module.train()
        batches = iter(self.loader)
        left = min(st.steps_per_epoch - st.step_in_epoch, st.total_steps - st.global_step)
        bar = tqdm(total=st.steps_per_epoch, initial=st.step_in_epoch, desc=f"epoch {st.epoch + 1}/{cfg.epochs}",
                   disable=self.quiet, leave=False, dynamic_ncols=True)
        t_epoch = time.perf_counter()
        self._rng_at_step_start = capture_rng()
        for _ in range(left):
            t0 = time.perf_counter()
            micro = [next(batches) for _ in range(cfg.grad_accum)]
            st.loss = self.train_step(micro)
            st.lr = self.optimizer.param_groups[0]["lr"] / self.optimizer.param_groups[0]["lr_mult"]
            st.clips_per_s = cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
            st.step_in_epoch += 1
            st.global_step += 1
            st.epoch_losses.append(st.loss)
            if st.global_step % cfg.log_every == 0 or st.step_in_epoch == st.steps_per_epoch:
                st.steps.append({"step": st.global_step, "epoch": st.epoch + st.step_in_epoch / st.steps_per_epoch,
                                 "loss": st.loss, "lr": st.lr})
            bar.set_postfix(loss=f"{st.loss:.4f}", lr=f"{st.lr:.2e}", clips_s=f"{st.clips_per_s:.1f}")
            bar.update(1)
            self._rng_at_step_start = capture_rng()   # what a resume from this step boundary restores
            self._emit("step_end")
        bar.close()
        self._epoch_time = time.perf_counter() - t_epoch

    def _end_epoch(self) -> None:
        cfg, st = self.config, self.state
        self._report_skipped()
        epoch = st.epoch + 1
        row = {"epoch": epoch, "step": st.global_step,
               "train_loss": float(np.mean(st.epoch_losses)) if st.epoch_losses else float("nan"),
               "lr": st.lr, "clips_per_s": st.clips_per_s, "epoch_time_s": getattr(self, "_epoch_time", 0.0)}
        last_epoch = epoch >= cfg.epochs or st.global_step >= st.total_steps
        evaluate = self.val_set is not None and (epoch % cfg.eval_every == 0 or last_epoch)
        st.history.append(row)
        st.epoch += 1
        st.step_in_epoch = 0
        st.epoch_losses = []
        improved = False
        if evaluate:
            self.save("last.pt")  # the epoch's training is safe whatever the evaluation does
            metrics = self._evaluate_or_skip(epoch)
            if metrics is not None:
                st.metrics = metrics
                row.update(metrics)
                improved = self._track_best(metrics, epoch)
                shown = {k: v for k, v in metrics.items() if k.endswith(("R@1", "top1", "top5", "MdR"))}
                self._log(f"epoch {epoch}: loss {row['train_loss']:.4f}  " +
                          "  ".join(f"{k} {v:.2f}" for k, v in shown.items()))
                self._emit("eval_end")
        else:
            self._log(f"epoch {epoch}: loss {row['train_loss']:.4f}")
        if improved:
            self.save("best.pt", full=False)
        self.save("last.pt")
        self.write_metrics()
        self._emit("epoch_end")

    def _evaluate_or_skip(self, epoch: int) -> Optional[dict]:
        """Evaluate after ``epoch``; a test video that cannot be decoded raises :class:`EvaluationError`
        (naming the file and ``last.pt``), or with ``config.skip_bad_eval`` skips this evaluation."""
        from stanlib.data.video import VideoDecodeError

        try:
            return self.evaluate()
        except VideoDecodeError as err:
            last = self.out_dir / "last.pt"
            if not self.config.skip_bad_eval:
                raise EvaluationError(
                    f"evaluation after epoch {epoch} failed: {err}. The training so far is saved in {last}. "
                    "Fix or remove the video (`stanlib data check ... --write-clean`), then resume with "
                    f"--resume {last}; or pass --skip-bad-eval (config skip_bad_eval=true) to train on "
                    "without that evaluation") from err
            warnings.warn(f"evaluation after epoch {epoch} skipped (skip_bad_eval): {err}. Training goes on; "
                          "fix the video with `stanlib data check` to get metrics again")
            self.state.history[-1]["eval_error"] = err.path
            return None

    def _track_best(self, metrics: dict, epoch: int) -> bool:
        key = self.config.metric
        if key not in metrics:
            raise KeyError(f"best_metric {key!r} is not among the evaluation metrics {sorted(metrics)}")
        value = metrics[key]
        best = self.state.best
        better = best is None or (value < best if lower_is_better(key) else value > best)
        if better:
            self.state.best, self.state.best_epoch = value, epoch
        return better

    def _report_skipped(self) -> None:
        skipped = self.state.skipped
        count = torch.tensor(len(skipped))
        if self.info.world_size > 1:
            count = count.to(self.device)
            dist.all_reduce(count)
        if int(count):
            unique = sorted(set(skipped))
            warnings.warn(f"epoch {self.state.epoch + 1}: skipped {int(count)} clip loads that failed "
                          f"({len(unique)} distinct videos on this process), e.g. {unique[:5]}. "
                          "Run `stanlib data check` and train on the cleaned list.")
        self.state.skipped = []

    # ------------------------------------------------------------------ outputs
    def write_metrics(self, plot: Optional[bool] = None) -> None:
        """``metrics.json`` (epochs + logged steps), ``metrics.csv`` (epochs) and ``curves.png``.

        Drawing takes ~1 s, so during training the PNG is redrawn at most once a minute
        (``plot=None``); it is always drawn at the end of training.
        """
        if not self.info.is_main:
            return
        now = time.monotonic()
        if plot is None:
            plot = now - getattr(self, "_last_plot", -math.inf) > 60
        st = self.state
        payload = {"config": self.config.name, "best_metric": self.config.metric, "best": st.best,
                   "best_epoch": st.best_epoch, "epochs": st.history, "steps": st.steps}
        _atomic_text(self.out_dir / "metrics.json", json.dumps(payload, indent=2))
        keys = list(dict.fromkeys(k for row in st.history for k in row))
        with _open_new(self.out_dir / "metrics.csv.tmp", "w") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(st.history)
        os.replace(self.out_dir / "metrics.csv.tmp", self.out_dir / "metrics.csv")
        if plot:
            plot_curves(st, self.config.metric, self.out_dir / "curves.png")
            self._last_plot = now


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with _open_new(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def plot_curves(state: TrainState, metric: str, path=None):
    """Training loss (logged steps), learning rate and the evaluation metric per epoch.

    Uses a bare ``matplotlib.figure.Figure`` (no pyplot state, safe in threads and on servers).
    Returns the figure; saves it to ``path`` when given.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.4))
    ax_loss, ax_lr, ax_metric = fig.subplots(1, 3)
    steps = [s["step"] for s in state.steps]
    ax_loss.plot(steps, [s["loss"] for s in state.steps], lw=1)
    ax_loss.set(title="training loss", xlabel="step")
    ax_lr.plot(steps, [s["lr"] for s in state.steps], lw=1)
    ax_lr.set(title="learning rate (CLIP)", xlabel="step")
    rows = [r for r in state.history if metric in r]
    ax_metric.plot([r["epoch"] for r in rows], [r[metric] for r in rows], marker="o")
    ax_metric.set(title=f"eval {metric}", xlabel="epoch")
    for ax in (ax_loss, ax_lr, ax_metric):
        ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.16, top=0.9, wspace=0.3)  # tight_layout is slow
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def live_curves(every: int = 10, metric: Optional[str] = None) -> Callback:
    """A callback that redraws the curves in a notebook every ``every`` steps and after evaluations."""
    def callback(event: str, state: TrainState) -> None:
        if event == "step_end" and state.global_step % every:
            return
        if event not in ("step_end", "eval_end", "train_end"):
            return
        from IPython.display import clear_output, display

        key = metric or next((k for k in ("t2v/R@1", "top1") if k in state.metrics), "top1")
        clear_output(wait=True)
        display(plot_curves(state, key))
    return callback


# =========================================================================== building from a config
def resolve_path(path: str) -> str:
    """A relative path as given if it exists, else relative to the repository when stanlib runs from a
    clone (the presets' ``data_samples/...``; :func:`stanlib.assets.repo_root`)."""
    from stanlib.assets import repo_root

    if not path or os.path.isabs(path) or os.path.exists(path):
        return path
    root = repo_root()
    return str(root / path) if root is not None and (root / path).exists() else path


def build_model(config: Config) -> nn.Module:
    """``stanlib.create_model`` from a config's model fields."""
    from stanlib.model import STANModel

    pretrained = config.model.pretrained
    if pretrained and (os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".safetensors", ".bin"))):
        pretrained = resolve_path(pretrained)
        if not os.path.exists(pretrained):
            raise FileNotFoundError(
                f"pretrained CLIP weights {config.model.pretrained!r} not found (preset {config.name!r}). "
                "Pass an existing weights file, --set pretrained=bundled for the tiny CLIP shipped with stanlib "
                "(stan-tiny and stan-tiny-v2), or --set pretrained=none to start from random weights.")
    return STANModel(replace(config.model, pretrained=pretrained, extra=dict(config.model.extra)))


def build_datasets(config: Config, model: nn.Module, splits: Iterable[str] = ("train", "val")) -> dict:
    """``{"train": ..., "val": ...}`` datasets for a config via ``stanlib.data.build_dataset``."""
    try:
        from stanlib.data import build_dataset
    except ImportError:  # the data package's __init__ may not re-export it
        from stanlib.data.datasets import build_dataset

    root = resolve_path(config.data_root)
    if not root or not os.path.isdir(root):
        synth = (config.data_root or "").startswith("data_samples/synth/")
        raise FileNotFoundError(f"data root {config.data_root!r} (preset {config.name!r}) is not a folder. "
                                "Pass --data-root DIR" + (", or write the synthetic videos into the current folder "
                                                          "with `stanlib synth all --out data_samples/synth` (a clone "
                                                          "of the repository has them)" if synth else ""))
    common = dict(tokenizer=model.tokenizer, context_length=config.model.context_length, num_frames=config.model.num_frames,
                  image_size=model.image_size, **config.dataset_kwargs)
    if "normalise" not in config.dataset_kwargs:
        common["normalise"] = not normalise_on_device(config)
    if tuple(config.crop_scale) != (0.08, 1.0) and "crop_scale" not in config.dataset_kwargs:
        common["crop_scale"] = tuple(config.crop_scale)   # training crops only; test crops are fixed
    out = {}
    for split in splits:
        if split == "train":
            mode = "pairs" if config.task == "retrieval" else None
            out[split] = _build(build_dataset, config, root, config.train_split, mode, train=True, **common)
        else:
            mode = "videos" if config.task == "retrieval" else None
            extra = {"num_views": config.test_views} if config.task == "recognition" and config.test_views > 1 else {}
            out[split] = _build(build_dataset, config, root, config.val_split, mode, train=False, **common, **extra)
    return out


def _build(build_dataset, config: Config, root: str, split: str, mode: Optional[str], train: bool, **kwargs):
    if mode is not None:
        kwargs["mode"] = mode
    return build_dataset(config.dataset, root, split, train=train, **kwargs)


def build_trainer(config: Config, *, callbacks: Sequence[Callback] = ()) -> Trainer:
    """Build model, data and :class:`Trainer` from ``config`` (no training yet)."""
    info = init_distributed()
    seed_everything(config.seed)              # identical initial weights on every process
    model = build_model(config)
    data = build_datasets(config, model)
    seed_everything(config.seed + info.rank)  # different drop-path / augmentation draws per process
    return Trainer(model, data["train"], data["val"], config, callbacks=callbacks)


def run(config: Config, *, resume: Optional[str] = None, callbacks: Sequence[Callback] = ()) -> Trainer:
    """Build model and data from ``config``, train, and return the trainer (CLI and notebooks)."""
    trainer = build_trainer(config, callbacks=callbacks)
    trainer.fit(resume=resume)
    return trainer


# =========================================================================== `stanlib train`
def cli_main(argv: list[str]) -> int:
    from stanlib.engine.presets import apply_overrides, get_preset, presets_table

    parser = argparse.ArgumentParser(
        prog="stanlib train", description="Train STAN from a preset (`stanlib presets` lists them). "
        "Multi-GPU: torchrun --nproc_per_node=N -m stanlib train ...")
    parser.add_argument("--preset", help="preset name, e.g. tiny-motion, msrvtt-b32")
    parser.add_argument("--config", help="a config.json to start from instead of a preset")
    parser.add_argument("--data-root", help="dataset folder (overrides the preset's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (repeatable), e.g. --set batch_size=32 --set temporal=conv")
    parser.add_argument("--out", help="output folder (default runs/<preset>)")
    parser.add_argument("--resume", help="continue from a checkpoint (e.g. runs/<preset>/last.pt)")
    parser.add_argument("--skip-bad-eval", action="store_true",
                        help="an evaluation that meets an undecodable test video is skipped with a warning "
                             "(default: stop, naming the video; last.pt is saved either way)")
    args = parser.parse_args(argv)
    if not args.preset and not args.config:
        parser.print_usage(sys.stderr)
        print("stanlib train: give --preset NAME or --config FILE. Presets:\n" + presets_table(), file=sys.stderr)
        return 2
    try:
        from stanlib.engine.presets import Config as _Config

        config = _Config.load(args.config) if args.config else get_preset(args.preset)
        overrides = list(args.overrides)
        if args.data_root:
            overrides.append(f"data_root={args.data_root}")
        if args.out:
            overrides.append(f"out_dir={args.out}")
        if args.skip_bad_eval:
            overrides.append("skip_bad_eval=true")
        config = apply_overrides(config, overrides)
    except (KeyError, ValueError, OSError) as err:
        print(f"stanlib train: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 2
    try:  # set-up: weights, annotations, dataset sizes
        trainer = build_trainer(config)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, CheckpointError, ValueError, KeyError, OSError) as err:
        print(f"stanlib train: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 2
    from stanlib.data.video import VideoDecodeError

    try:
        trainer.fit(resume=args.resume)
    except KeyboardInterrupt:
        return 130
    except (CheckpointError, DataError, EvaluationError) as err:
        print(f"stanlib train: {err}", file=sys.stderr)
        return 1
    except VideoDecodeError as err:  # a custom evaluation hook: the file is named all the same
        print(f"stanlib train: {err}. Evaluation needs every test video: run `stanlib data check`.",
              file=sys.stderr)
        return 1
    if trainer.info.is_main:
        print(f"done: {trainer.out_dir} (last.pt, best.pt, config.json, metrics.json, metrics.csv, curves.png)")
        if trainer.state.metrics:
            print("final metrics: " + json.dumps({k: round(v, 4) for k, v in trainer.state.metrics.items()}))
    return 0
