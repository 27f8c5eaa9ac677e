"""Record attention probabilities during a normal forward pass.

::

    with stanlib.capture_attention(model) as att:
        model.encode_video(frames)          # or model(frames, tokens)
    att.clip_spatial[-1].shape              # (B, T, heads, 1+L, 1+L), last CLIP layer
    att.stan_temporal[0].shape              # (B, L, heads, T, T), first branch layer
    att.frame_tokens[0].shape               # (B, heads, S, S): attention among per-frame tokens
                                            # (X-CLIP messages and MIT, CLIP2Video's TDB)

How it works: the model already has recording hooks (``model.clip_record`` for CLIP's blocks and
``Attention.record`` in the branch). Setting them to lists makes those modules take the explicit
``softmax(q k^T / sqrt(d)) v`` path and append the probabilities; the fused kernel stays the
default everywhere else. On exit every hook is put back exactly as it was (also on errors), so with
capture off nothing extra runs.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import torch
from einops import rearrange
from torch import nn

from stanlib.model.branch import Attention


@dataclass
class AttentionMaps:
    """Attention probabilities of one or more forwards (stacked along the batch).

    Token 0 of every spatial map is a CLS token: CLIP's frame CLS in ``clip_spatial``, the branch's
    shared *video* CLS (copied into each frame) in ``stan_spatial``. Patch ``i`` (token ``1 + i``)
    sits at row ``i // w``, column ``i % w`` of the ``grid`` (h, w). Rows sum to 1 (softmax).

    Attributes:
        clip_spatial: per CLIP layer, (B, T, heads, 1+L, 1+L).
        stan_spatial: per branch layer, (B, T, heads, 1+L, 1+L); empty without a spatial module.
        stan_temporal: per branch layer, (B, L, heads, T, T): each patch position over the frames;
            empty for the conv variant, ``temporal=None`` and baselines without a branch.
        grid: patch grid (h, w), L = h * w.
        branch_levels: for branch layer k, the index of the CLIP block whose output it reads.
        arch, temporal: the model's ``config.arch`` and ``config.temporal``.
        frame_tokens: per attention layer over per-frame tokens, (B, heads, S, S), in forward order:
            X-CLIP's message attention in each CLIP layer (S = T) then its MIT (S = T); CLIP2Video's
            difference attention (S = T - 1) then its temporal transformer over the interleaved
            frame / difference tokens (S = 2T - 1, frames at even positions). Empty otherwise.
        frame_token_names: one name per ``frame_tokens`` entry (e.g. ``"MIT layer 0"``).
        message_weight: X-CLIP only, per CLIP layer (B, T, heads, 1+L): the attention each token
            pays to its frame's message token. ``clip_spatial`` then holds the maps over the frame's
            own 1+L tokens, renormalised to sum to 1 (the message column removed).
    """

    clip_spatial: list[torch.Tensor] = field(default_factory=list)
    stan_spatial: list[torch.Tensor] = field(default_factory=list)
    stan_temporal: list[torch.Tensor] = field(default_factory=list)
    grid: tuple[int, int] = (0, 0)
    branch_levels: list[int] = field(default_factory=list)
    arch: str = "branch"
    temporal: Optional[str] = None
    frame_tokens: list[torch.Tensor] = field(default_factory=list)
    frame_token_names: list[str] = field(default_factory=list)
    message_weight: list[torch.Tensor] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.clip_spatial

    @property
    def batch(self) -> int:
        return self._first().shape[0]

    @property
    def num_frames(self) -> int:
        return self._first().shape[1]

    @property
    def num_heads(self) -> int:
        return self._first().shape[2]

    def _first(self) -> torch.Tensor:
        if self.empty:
            raise RuntimeError("no attention was captured: run model.encode_video(frames) (or model(frames, "
                               "tokens)) inside `with capture_attention(model) as att:`")
        return self.clip_spatial[0]

    def layers(self, source: str) -> list[torch.Tensor]:
        """Spatial maps of ``source``: ``"clip"`` (CLIP layers) or ``"stan"`` (branch layers)."""
        if source not in ("clip", "stan"):
            raise ValueError(f"source must be 'clip' or 'stan', got {source!r}")
        return self.clip_spatial if source == "clip" else self.stan_spatial

    def sample(self, index: int) -> "AttentionMaps":
        """The maps of one video (batch size 1), e.g. for plotting."""
        if not -self.batch <= index < self.batch:
            raise IndexError(f"sample {index} out of range for a batch of {self.batch}")
        pick = slice(index, index + 1) if index != -1 else slice(-1, None)
        return self._map(lambda x: x[pick])

    def _map(self, fn) -> "AttentionMaps":
        return AttentionMaps([fn(x) for x in self.clip_spatial], [fn(x) for x in self.stan_spatial],
                             [fn(x) for x in self.stan_temporal], self.grid, list(self.branch_levels),
                             self.arch, self.temporal, [fn(x) for x in self.frame_tokens],
                             list(self.frame_token_names), [fn(x) for x in self.message_weight])

    def extend(self, other: "AttentionMaps") -> None:
        """Append another forward's maps along the batch (same frames, grid and layers needed)."""
        if self.empty:
            self.clip_spatial, self.stan_spatial = other.clip_spatial, other.stan_spatial
            self.stan_temporal = other.stan_temporal
            self.frame_tokens, self.frame_token_names = other.frame_tokens, other.frame_token_names
            self.message_weight = other.message_weight
            return
        if (other.num_frames, other.grid) != (self.num_frames, self.grid):
            raise ValueError(f"cannot stack captures of different clips: {self.num_frames} frames / grid "
                             f"{self.grid} vs {other.num_frames} frames / grid {other.grid}; use one "
                             "capture_attention block per clip length")
        for name in ("clip_spatial", "stan_spatial", "stan_temporal", "frame_tokens", "message_weight"):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, [torch.cat([a, b]) for a, b in zip(mine, theirs)])

    def __repr__(self) -> str:
        def shapes(xs):
            return f"{len(xs)} x {tuple(xs[0].shape)}" if xs else "none"
        extra = f", frame_tokens={len(self.frame_tokens)} layers" if self.frame_tokens else ""
        return (f"AttentionMaps(clip_spatial={shapes(self.clip_spatial)}, stan_spatial={shapes(self.stan_spatial)}, "
                f"stan_temporal={shapes(self.stan_temporal)}{extra}, grid={self.grid}, arch={self.arch!r})")


def _branch_attention(model: nn.Module) -> tuple[list[Attention], list[Attention]]:
    """The branch's (temporal, spatial) attention modules, in layer order (empty if absent)."""
    branch = getattr(model, "branch", None)
    if branch is None or not hasattr(branch, "temporal"):  # meanpool / seqtransf: no STAN branch
        return [], []
    temporal = [m.attn for m in branch.temporal if isinstance(getattr(m, "attn", None), Attention)]
    spatial = [m.attn for m in getattr(branch, "spatial", [])]
    return temporal, spatial


def _frame_attention(model: nn.Module) -> list[tuple[str, Attention]]:
    """(name, module) of every attention over per-frame tokens (X-CLIP messages / MIT, TDB), in order."""
    branch = getattr(model, "branch", None)
    return list(branch.attention_layers()) if hasattr(branch, "attention_layers") else []


def _branch_levels(model: nn.Module) -> list[int]:
    branch = getattr(model, "branch", None)
    if branch is None or not hasattr(branch, "temporal"):
        return []
    n, k = len(model.clip.visual.transformer.resblocks), len(branch.temporal)
    if model.config.arch == "posterior":  # stacked on the final tokens: every layer reads block N-1
        return [n - 1] * k
    levels = list(getattr(model, "branch_levels", None) or range(n - k, n))  # config.levels or the last K
    return [levels[0]] * k if branch.single_level else levels


def _split_message(p: torch.Tensor, n_tokens: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """A CLIP map over [1+L tokens; X-CLIP message] -> (renormalised 1+L map, weight on the message)."""
    if p.shape[-1] == n_tokens:
        return p, None
    weight = p[..., :n_tokens, n_tokens:].sum(dim=-1)            # (..., 1+L): the rows' message share
    return p[..., :n_tokens, :n_tokens] / (1 - weight).unsqueeze(-1), weight


def _reshape_call(model: nn.Module, b: int, t: int, clip_new: list, temporal_new: list[list],
                  spatial_new: list[list], frame_new: Optional[list[list]] = None,
                  frame_names: Sequence[str] = ()) -> AttentionMaps:
    """Probabilities recorded in one encode_video call -> an :class:`AttentionMaps` of batch ``b``."""
    grid = tuple(int(g) for g in model.clip.visual.grid_size)
    split = [_split_message(p, 1 + grid[0] * grid[1]) for p in clip_new]
    frames = [rearrange(p, "(b t) h q k -> b t h q k", b=b, t=t) for p, _ in split]
    message = [rearrange(w, "(b t) h q -> b t h q", b=b, t=t) for _, w in split if w is not None]
    per_frame = [rearrange(p, "(b t) h q k -> b t h q k", b=b, t=t) for rec in spatial_new for p in rec]
    per_patch = [rearrange(p, "(b l) h q k -> b l h q k", b=b) for rec in temporal_new for p in rec]
    tokens = [(name, p) for name, rec in zip(frame_names, frame_new or []) for p in rec]
    return AttentionMaps(frames, per_frame, per_patch, grid, _branch_levels(model), model.config.arch,
                         model.config.temporal, [p for _, p in tokens], [name for name, _ in tokens], message)


@contextlib.contextmanager
def capture_attention(model: nn.Module) -> Iterator[AttentionMaps]:
    """Record every attention map of the video encoder while the block is active.

    Each ``model.encode_video`` call inside the block (``model(frames, tokens)`` included) adds its
    maps to the yielded :class:`AttentionMaps`, stacked along the batch. Outputs are unchanged
    (the explicit softmax path equals the fused kernel to fp32 rounding, ~1e-7). Works for every
    architecture: the conv variant has no temporal attention (``stan_temporal == []``), mean pooling,
    seqTransf and ST-Adapter only CLIP's maps, X-CLIP and TDB add ``frame_tokens`` (X-CLIP also
    ``message_weight``). For the conv variant use :func:`stanlib.viz.occlusion_saliency`.

    Raises:
        RuntimeError: if ``model`` is already being captured (nested blocks on one model).
    """
    if not hasattr(model, "clip_record") or not hasattr(model, "encode_video"):
        raise TypeError(f"capture_attention needs a stanlib STANModel, got {type(model).__name__}")
    if model.clip_record is not None or "encode_video" in vars(model):
        raise RuntimeError("this model is already inside a capture_attention block; leave it first")
    temporal, spatial = _branch_attention(model)
    named = _frame_attention(model)
    frame_mods = [m for _, m in named]
    saved = [(m, m.record) for m in temporal + spatial + frame_mods]
    att = AttentionMaps(grid=tuple(int(g) for g in model.clip.visual.grid_size),
                        branch_levels=_branch_levels(model), arch=model.config.arch,
                        temporal=model.config.temporal)
    original = model.encode_video  # the bound method

    @functools.wraps(original)
    def recording_encode_video(frames: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        # note where each list stands, so only this call's maps are taken (a checkpointed backward
        # may append recomputed maps later; those are ignored)
        clip_start = len(model.clip_record)
        starts = [len(m.record) for m in temporal + spatial + frame_mods]
        out = original(frames, *args, **kwargs)
        b, t = frames.shape[:2]
        new = [m.record[s:] for m, s in zip(temporal + spatial + frame_mods, starts)]
        n_t, n_s = len(temporal), len(spatial)
        att.extend(_reshape_call(model, b, t, model.clip_record[clip_start:], new[:n_t], new[n_t:n_t + n_s],
                                 new[n_t + n_s:], [name for name, _ in named]))
        return out

    model.clip_record = []
    for m in temporal + spatial + frame_mods:
        m.record = []
    model.encode_video = recording_encode_video  # instance attribute: shadows the method while active
    try:
        yield att
    finally:
        del model.encode_video
        model.clip_record = None
        for m, old in saved:
            m.record = old
