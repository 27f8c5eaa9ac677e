"""Derived views of captured attention, and model-agnostic temporal saliency.

Attention views (inputs from :class:`stanlib.viz.AttentionMaps`):

* :func:`select_heads`: head-averaged (``head=None``), one head (``int``) or all heads (``"all"``).
* :func:`cls_maps`: CLS -> patch attention per frame, as (h, w) grids.
* :func:`attention_rollout`: attention flowed through all CLIP layers (Abnar & Zuidema, 2020):
  ``prod_l (0.5 A_l + 0.5 I)``, rows renormalised; the residual stream is the identity part.
* :func:`patch_spatial_maps`: where one patch looks inside each frame.
* :func:`patch_temporal`: a patch position's attention over the frames (T x T, query -> key frame).
* :func:`temporal_entropy`: how far temporal attention is from uniform (1 = uniform).

Saliency for any model (the conv variant has no attention to show):

* :func:`occlusion_saliency`: drop in the video-text score when one frame is replaced.
* :func:`gradient_saliency`: |d score / d pixel| per frame.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

Head = Union[None, int, str]


def select_heads(att: torch.Tensor, head: Head = None, dim: int = 2) -> torch.Tensor:
    """Average the heads (``None``), pick one (``int``) or keep them all (``"all"``) along ``dim``."""
    if head is None:
        return att.mean(dim=dim)
    if head == "all":
        return att
    if not isinstance(head, int) or not -att.shape[dim] <= head < att.shape[dim]:
        raise ValueError(f"head must be None (mean), 'all' or an index below {att.shape[dim]}, got {head!r}")
    return att.select(dim, head)


def _to_grid(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(..., L) -> (..., h, w) with a clear error if L does not match the grid."""
    h, w = grid
    if x.shape[-1] != h * w:
        raise ValueError(f"{x.shape[-1]} patch tokens do not fill a {h}x{w} grid")
    return x.reshape(*x.shape[:-1], h, w)


def patch_index(patch: Union[int, Sequence[int]], grid: tuple[int, int]) -> int:
    """Flat patch index from ``(row, col)`` or an int, checked against the grid (h, w)."""
    h, w = grid
    if isinstance(patch, int):
        idx = patch
    else:
        row, col = (int(v) for v in patch)
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"patch (row={row}, col={col}) is outside the {h}x{w} grid")
        idx = row * w + col
    if not 0 <= idx < h * w:
        raise ValueError(f"patch index {idx} is outside the {h}x{w} grid (0..{h * w - 1})")
    return idx


def cls_maps(layer: torch.Tensor, grid: tuple[int, int], head: Head = None) -> torch.Tensor:
    """CLS -> patch attention of one spatial layer (B, T, heads, 1+L, 1+L).

    Returns (B, T, h, w), or (B, T, heads, h, w) with ``head="all"``. Each map sums to
    ``1 - attention of CLS to itself``.
    """
    return _to_grid(select_heads(layer[..., 0, 1:], head), grid)


def attention_rollout(layers: Sequence[torch.Tensor], head: Head = None, residual: float = 0.5,
                      start: int = 0) -> torch.Tensor:
    """Attention rollout through ``layers[start:]``, each (B, T, heads, S, S) -> (B, T, S, S).

    Each layer's (head-averaged) map is mixed with the identity (``residual`` share, 0.5 as in
    the original method) for the skip connection, rows renormalised, and the layers multiplied
    in order, so ``out[..., 0, 1:]`` says how much the final CLS draws from each input patch.
    """
    if not layers:
        raise ValueError("attention_rollout needs at least one layer of maps")
    if head == "all":
        raise ValueError("attention_rollout mixes heads within each layer; use head=None or an index")
    out = None
    for att in layers[start:]:
        a = select_heads(att, head)
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = (1 - residual) * a + residual * eye
        a = a / a.sum(dim=-1, keepdim=True)
        out = a if out is None else a @ out  # later layers act on the mixture of earlier ones
    if out is None:
        raise ValueError(f"start={start} leaves no layers out of {len(layers)}")
    return out


def rollout_maps(layers: Sequence[torch.Tensor], grid: tuple[int, int], head: Head = None) -> torch.Tensor:
    """CLS row of :func:`attention_rollout` as (B, T, h, w) grids, renormalised to sum to 1."""
    cls = attention_rollout(layers, head)[..., 0, 1:]
    return _to_grid(cls / cls.sum(dim=-1, keepdim=True), grid)


def patch_spatial_maps(layer: torch.Tensor, patch: Union[int, Sequence[int]], grid: tuple[int, int],
                       head: Head = None) -> torch.Tensor:
    """Where one patch looks inside its own frame: (B, T, heads, 1+L, 1+L) -> (B, T, h, w)."""
    idx = patch_index(patch, grid)
    return _to_grid(select_heads(layer[..., 1 + idx, 1:], head), grid)


def patch_temporal(temporal: torch.Tensor, patch: Union[int, Sequence[int]], grid: tuple[int, int],
                   head: Head = None) -> torch.Tensor:
    """A patch position's attention over frames: (B, L, heads, T, T) -> (B, T, T) (query, key frame)."""
    return select_heads(temporal[:, patch_index(patch, grid)], head, dim=1)


def temporal_entropy(temporal: torch.Tensor) -> torch.Tensor:
    """Entropy of each temporal attention row divided by log T: 1 = uniform over frames, 0 = one frame.

    (B, L, heads, T, T) -> (B, L, heads, T).
    """
    t = temporal.shape[-1]
    if t < 2:
        raise ValueError("temporal entropy needs at least 2 frames")
    ent = -(temporal * temporal.clamp_min(1e-12).log()).sum(dim=-1)
    return ent / math.log(t)


# ----------------------------------------------------------------------------------------------
# Model-agnostic saliency (works for STAN-conv, mean pooling, anything with encode_video)


def _text_embedding(model: nn.Module, text, batch: int) -> Optional[torch.Tensor]:
    """Normalised text embedding (B, E) from None / str / list[str] / token tensor."""
    if text is None:
        return None
    tokens = text if isinstance(text, torch.Tensor) else model.tokenize([text] if isinstance(text, str) else list(text))
    emb = F.normalize(model.encode_text(tokens.to(next(model.parameters()).device)), dim=-1)
    if emb.shape[0] == 1 and batch > 1:
        emb = emb.expand(batch, -1)
    if emb.shape[0] != batch:
        raise ValueError(f"got {emb.shape[0]} texts for {batch} videos; pass one text or one per video")
    return emb


def _score(model: nn.Module, frames: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cosine similarity (B,) between each video's embedding and its target embedding."""
    return (F.normalize(model.encode_video(frames), dim=-1) * target).sum(dim=-1)


def _fill(frames: torch.Tensor, fill: str) -> torch.Tensor:
    """The replacement frame (B, 3, H, W) for occlusion."""
    if fill == "mean":  # the clip's average frame: removes what is specific to one moment
        return frames.mean(dim=1)
    if fill == "zero":  # zero after CLIP normalisation = the dataset's mean colour (grey)
        return torch.zeros_like(frames[:, 0])
    raise ValueError(f"fill must be 'mean' or 'zero', got {fill!r}")


@torch.no_grad()
def occlusion_saliency(model: nn.Module, frames: torch.Tensor, text=None, fill: str = "mean",
                       progress: bool = False, target: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Importance of each frame: score drop when that frame alone is replaced. (B, T, ...) -> (B, T).

    The score is the cosine similarity between the video and ``text`` (a string, one per video, or
    tokens), or ``target`` (embeddings (E,) or (B, E), e.g. a recognition head's class vector);
    without either it is the similarity to the unmasked video's own embedding (so the drop is how
    much that frame changes the representation). Positive = the frame helped the match.
    """
    was_training = model.training
    model.eval()
    try:
        b, t = frames.shape[:2]
        if target is not None:
            target = F.normalize(torch.as_tensor(target, dtype=torch.float32).to(frames.device), dim=-1)
            target = target.expand(b, -1) if target.ndim == 1 else target
        else:
            target = _text_embedding(model, text, b)
        if target is None:
            target = F.normalize(model.encode_video(frames), dim=-1)
        base = _score(model, frames, target)
        filler = _fill(frames, fill)
        drops = []
        for i in tqdm(range(t), desc="occlusion", disable=not progress, leave=False):
            masked = frames.clone()
            masked[:, i] = filler
            drops.append(base - _score(model, masked, target))
        return torch.stack(drops, dim=1)
    finally:
        model.train(was_training)


def gradient_saliency(model: nn.Module, frames: torch.Tensor, text=None) -> torch.Tensor:
    """|d score / d pixel| (max over colour channels) per frame: (B, T, 3, H, W) -> (B, T, H, W).

    Score as in :func:`occlusion_saliency` (text similarity; without text the norm of the video
    embedding). Sum over (H, W) for a per-frame importance.
    """
    was_training = model.training
    model.eval()
    try:
        x = frames.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            target = _text_embedding(model, text, frames.shape[0])
            if target is None:
                score = model.encode_video(x).norm(dim=-1)
            else:
                score = _score(model, x, target.detach())
            (grad,) = torch.autograd.grad(score.sum(), x)
        return grad.abs().amax(dim=2)
    finally:
        model.train(was_training)
