"""Several processes (``torchrun``): joining the process group, and gathering features across it.

Used by the retrieval loss (:mod:`stanlib.engine.losses`: in-batch negatives from every process), the
evaluation (:mod:`stanlib.engine.evaluate`: each process encodes a share of the test set) and the trainer
(:mod:`stanlib.engine.trainer`). Every helper is a no-op in a single process, so the same code runs on one
CPU, one GPU or many GPUs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist


# --------------------------------------------------------------------------- processes
@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_ready() -> bool:
    """True when torch.distributed is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_distributed(backend: Optional[str] = None) -> DistInfo:
    """Join the process group when launched by ``torchrun`` (env ``WORLD_SIZE`` > 1); else single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)
    return info


def current_dist() -> DistInfo:
    if dist_ready():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


# --------------------------------------------------------------------------- gathering
def _batch_sizes(x: torch.Tensor) -> list[int]:
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    return [int(s) for s in sizes]


def _gather_padded(x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """all_gather rows of possibly different counts (collectives need equal shapes: pad, cut)."""
    longest = max(sizes)
    padded = x.new_zeros((longest, *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:n] for p, n in zip(parts, sizes)])


class _GatherWithGrad(torch.autograd.Function):
    """``all_gather`` whose backward sends every process the gradient of its own rows.

    Each process computes a loss over the gathered (global) tensor, so the gradient of a row is
    the SUM over processes of the gradients they computed for it: all-reduce, then keep our rows.
    (Written with all_reduce rather than reduce_scatter because gloo, the CPU backend, lacks the
    latter; processes may hold different row counts, e.g. after skipping unreadable videos.)
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        rank = dist.get_rank()
        ctx.start, ctx.stop = sum(sizes[:rank]), sum(sizes[: rank + 1])
        return _gather_padded(x, sizes)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.start:ctx.stop], None


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Concatenate ``x`` over processes in rank order, keeping autograd.

    Returns ``(all_rows, offset)`` where ``offset`` is the index of this process's first row in
    ``all_rows``; ``(x, 0)`` when not distributed.
    """
    if not dist_ready():
        return x, 0
    sizes = _batch_sizes(x)
    return _GatherWithGrad.apply(x, sizes), sum(sizes[: dist.get_rank()])


def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate tensors of possibly different lengths over processes (evaluation; no autograd)."""
    if not dist_ready():
        return x
    return _gather_padded(x.detach(), _batch_sizes(x))
