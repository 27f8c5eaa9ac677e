"""The training engine: what one optimiser step does, for every training loop in stanlib.

``stanlib train`` (:class:`stanlib.engine.trainer.Trainer`), the teaching experiments
(:func:`stanlib.teaching.experiments.train_model`, ``stanlib demo``), tiny-CLIP pretraining
(:func:`stanlib.teaching.tiny.pretrain`) and the benchmarks all build their optimiser, schedule and step
here, so the recipe below is written once:

- AdamW (betas 0.9/0.98, eps 1e-8); parameters whose name starts with ``branch.`` (the STAN
  branch, and any extra new module such as a linear head) train at ``lr * lr_mult``; norms, biases,
  scalars and embedding tables get no weight decay (:func:`param_groups`).
- Linear warm-up, then cosine decay, updated after every optimiser step (:func:`warmup_cosine`).
- Mixed precision on CUDA: bf16 where supported, else fp16 with a gradient scaler; off on the CPU
  (:func:`amp_settings`).
- Gradients clipped by their global L2 norm (:class:`Stepper`).
- On the CPU, denormal floats are flushed to zero while training (:func:`flush_denormals`).

A loop then reads::

    opt = build_optimizer(model, lr, weight_decay, lr_mult)
    stepper = Stepper(opt, warmup_cosine(warmup, steps), grad_clip=5.0)
    with flush_denormals(device.type == "cpu"):
        for batch in batches:
            loss = loss_fn(model, batch)
            stepper.step(loss)
"""
from __future__ import annotations

import contextlib
import math
import warnings
from typing import Callable, Iterable, Optional, Sequence

import torch
import torch.nn as nn

NO_DECAY_KEYWORDS = ("embedding", "positional", "class_embedding", "time_embed")
BETAS = (0.9, 0.98)
EPS = 1e-8


def no_weight_decay(name: str, param: torch.Tensor) -> bool:
    """Norm weights, biases, scalars and embedding tables are not decayed."""
    return param.ndim < 2 or any(k in name for k in NO_DECAY_KEYWORDS)


def param_groups(model: nn.Module, lr: float, weight_decay: float, lr_mult: float = 10.0,
                 extra: Optional[dict[str, nn.Module]] = None) -> list[dict]:
    """AdamW parameter groups: {CLIP, branch} x {decay, no decay}.

    ``branch.*`` parameters (and every parameter of the ``extra`` modules, e.g. a new linear
    head) train at ``lr * lr_mult``. Frozen parameters are left out. Every group carries ``name``
    and ``lr_mult`` so a notebook can inspect it.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    for prefix, module in (extra or {}).items():
        named += [(f"{prefix}.{n}", p) for n, p in module.named_parameters() if p.requires_grad]
    new_prefixes = ("branch.",) + tuple(f"{k}." for k in (extra or {}))
    groups: dict[str, dict] = {}
    for name, p in named:
        is_new = name.startswith(new_prefixes)
        decay = not no_weight_decay(name, p)
        key = f"{'branch' if is_new else 'clip'}_{'decay' if decay else 'no_decay'}"
        group = groups.setdefault(key, {"name": key, "params": [], "param_names": [],
                                        "lr_mult": lr_mult if is_new else 1.0,
                                        "lr": lr * (lr_mult if is_new else 1.0),
                                        "weight_decay": weight_decay if decay else 0.0})
        group["params"].append(p)
        group["param_names"].append(name)
    order = ("clip_decay", "clip_no_decay", "branch_decay", "branch_no_decay")
    return [groups[k] for k in order if k in groups]


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, lr_mult: float = 10.0,
                    extra: Optional[dict[str, nn.Module]] = None, betas: Sequence[float] = BETAS,
                    eps: float = EPS, fused: bool = False) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`. ``fused``: one kernel per step where the device supports it
    (falls back to the multi-tensor implementation elsewhere)."""
    groups = param_groups(model, lr, weight_decay, lr_mult, extra)
    if not groups:
        raise ValueError("no trainable parameters (is everything frozen?)")
    if fused:
        try:
            return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=True)
        except (RuntimeError, TypeError):
            return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, foreach=True)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps)


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """LR factor for step s: linear ramp (s+1)/warmup, then cosine from 1 to ``min_ratio``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def amp_settings(device: torch.device, mode: str = "auto") -> tuple[Optional[torch.dtype], bool]:
    """``(autocast dtype or None, use a gradient scaler)`` for a device and an ``amp`` mode
    (``auto`` | ``bf16`` | ``fp16`` | ``off``)."""
    if mode == "off" or device.type != "cuda":
        if mode in ("bf16", "fp16") and device.type != "cuda":
            warnings.warn(f"amp={mode!r} requested on {device}; mixed precision is only used on CUDA, running fp32")
        return None, False
    if mode == "auto":
        mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return (torch.bfloat16, False) if mode == "bf16" else (torch.float16, True)


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    """``torch.autocast`` for ``dtype``, or a no-op context when ``dtype`` is None."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def flush_denormals(enabled: bool = True):
    """Treat denormal floats as zero inside the block (x86 CPUs with SSE3), then restore the default.

    x86 arithmetic on denormal floats is many times slower, and CPU training can produce them late
    in a run: a tiny-STAN run slowed from 1.5 to 7-13 s per step, while the same recipe with this
    flush (another seed) held 1.5-2 s (docs/experiments.md 2.2). Only values below 1.2e-38 change.
    """
    if not (enabled and torch.set_flush_denormal(True)):
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


class Stepper:
    """One optimiser step: (scaled) backward, unscale, clip the global gradient norm, AdamW step,
    schedule step.

    ``schedule``: an LR factor function of the step (e.g. :func:`warmup_cosine`), a ready
    ``LRScheduler``, or None. ``grad_clip`` > 0 clips the L2 norm of ``clip_params`` (default: every
    parameter the optimiser updates). ``scaler``: fp16 gradient scaling (see :func:`amp_settings`).

    :meth:`step` does all of it for one loss; loops that accumulate several micro-batches call
    :meth:`zero_grad`, :meth:`backward` per micro-batch, then :meth:`update`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedule=None, *, grad_clip: float = 0.0,
                 scaler: bool = False, clip_params: Optional[Iterable[torch.Tensor]] = None):
        self.optimizer = optimizer
        if callable(schedule) and not isinstance(schedule, torch.optim.lr_scheduler.LRScheduler):
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        self.scheduler = schedule
        self.grad_clip = grad_clip
        self.scaler = torch.amp.GradScaler("cuda", enabled=scaler)
        self.clip_params = list(clip_params) if clip_params is not None else \
            [p for g in optimizer.param_groups for p in g["params"]]

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def backward(self, loss: torch.Tensor, divide: int = 1) -> None:
        self.scaler.scale(loss / divide if divide != 1 else loss).backward()

    def update(self) -> None:
        """Clip, step the optimiser and the schedule (after the micro-batches' backward passes)."""
        self.scaler.unscale_(self.optimizer)
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.clip_params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()

    def step(self, loss: torch.Tensor) -> None:
        """Zero the gradients, backward ``loss``, clip, step."""
        self.zero_grad()
        self.backward(loss)
        self.update()

    @property
    def lr(self) -> float:
        """The current learning rate of the first parameter group, without its ``lr_mult``."""
        group = self.optimizer.param_groups[0]
        return group["lr"] / group.get("lr_mult", 1.0)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict()}
