"""Matplotlib figures of attention maps. Every function returns a Figure (never ``plt.show()``).

* :func:`plot_overlay_strip`: one heatmap per frame, drawn over the frame, in a strip.
* :func:`plot_temporal_matrices`: T x T temporal attention, one panel per branch layer.
* :func:`plot_clip_vs_stan`: CLIP's CLS map (rollout) above the branch's video-CLS map, per frame.
* :func:`plot_patch_attention`: one patch's attention across frames, drawn on the frames.
* :func:`plot_saliency`: occlusion / gradient saliency (the conv variant's view).
* :func:`save_overlay_gif`: the overlays as an animated GIF (one GIF frame per video frame).

Frames are given as the model saw them (CLIP-normalised, (T, 3, H, W)); :func:`display_frames`
undoes the normalisation for display.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from stanlib.viz.capture import AttentionMaps
from stanlib.viz.views import (Head, cls_maps, patch_index, patch_spatial_maps, patch_temporal,
                               rollout_maps, select_heads)

try:  # the data pipeline's constants, so display always inverts what the transforms did
    from stanlib.data.transforms import CLIP_MEAN, CLIP_STD
except ImportError:  # pragma: no cover - data package absent in a stripped install
    from open_clip.constants import OPENAI_DATASET_MEAN as CLIP_MEAN
    from open_clip.constants import OPENAI_DATASET_STD as CLIP_STD

CMAP = "inferno"   # perceptually uniform, readable on colour frames
ALPHA = 0.55       # heatmap opacity over the frame
PANEL = 1.9        # inches per frame panel


def _head_label(head: Head) -> str:
    return "mean of heads" if head is None else f"head {head}"


def display_frames(frames: Union[torch.Tensor, np.ndarray], normalised: bool = True) -> np.ndarray:
    """Frames for display: (T, 3, H, W) CLIP-normalised tensor (or uint8 (T, H, W, 3)) -> float (T, H, W, 3) in [0, 1]."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"numpy frames must be (T, H, W, 3), got {frames.shape}")
        x = frames.astype(np.float32)
        return x / 255.0 if frames.dtype == np.uint8 else np.clip(x, 0, 1)
    if frames.ndim == 5 and frames.shape[0] == 1:
        frames = frames[0]
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be (T, 3, H, W) (one video), got {tuple(frames.shape)}")
    x = frames.detach().float().cpu()
    if frames.dtype == torch.uint8:
        x = x / 255.0
    elif normalised:
        mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
        std = torch.tensor(CLIP_STD).view(3, 1, 1)
        x = x * std + mean
    return x.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(T, h, w) patch maps -> (T, H, W) numpy, bilinear, for drawing over the frames."""
    x = torch.as_tensor(maps).detach().float().cpu()
    return F.interpolate(x[:, None], size=size, mode="bilinear", align_corners=False)[:, 0].numpy()


def _normalise_each(maps: np.ndarray) -> np.ndarray:
    """Scale each map to [0, 1] (attention values are tiny and vary per frame)."""
    lo = maps.reshape(len(maps), -1).min(axis=1)[:, None, None]
    hi = maps.reshape(len(maps), -1).max(axis=1)[:, None, None]
    return (maps - lo) / np.maximum(hi - lo, 1e-12)


def overlay_images(frames, maps: torch.Tensor, cmap: str = CMAP, alpha: float = ALPHA) -> np.ndarray:
    """Blend per-frame heatmaps into the frames: float (T, H, W, 3) in [0, 1]."""
    imgs = display_frames(frames)
    if len(maps) != len(imgs):
        raise ValueError(f"{len(maps)} maps for {len(imgs)} frames; pass one (h, w) map per frame")
    heat = colormaps[cmap](_normalise_each(upsample(maps, imgs.shape[1:3])))[..., :3]
    return (1 - alpha) * imgs + alpha * heat


def _strip(rows: int, cols: int, title: Optional[str], panel: float = PANEL) -> tuple[Figure, np.ndarray]:
    width = max(panel * cols, 4.0)  # room for the title even with 1-2 panels
    fig = Figure(figsize=(width, panel * rows + (0.5 * (title.count("\n") + 1) if title else 0)),
                 layout="constrained")
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, axes


def plot_overlay_strip(frames, maps: torch.Tensor, title: Optional[str] = None, cmap: str = CMAP,
                       alpha: float = ALPHA, frame_labels: Optional[Sequence[str]] = None) -> Figure:
    """One panel per frame: the frame with its (h, w) heatmap on top. ``maps``: (T, h, w)."""
    imgs = overlay_images(frames, maps, cmap, alpha)
    fig, axes = _strip(1, len(imgs), title)
    for t, ax in enumerate(axes[0]):
        ax.imshow(imgs[t])
        ax.set_title(frame_labels[t] if frame_labels else f"frame {t}", fontsize=9)
    return fig


def _one(att: AttentionMaps, sample: int) -> AttentionMaps:
    return att.sample(sample) if att.batch > 1 else att


def plot_temporal_matrices(att: AttentionMaps, sample: int = 0, patch=None, head: Head = None,
                           cmap: str = "viridis") -> Figure:
    """T x T temporal attention (query frame -> key frame), one panel per branch layer.

    ``patch=None`` averages over all patch positions; ``(row, col)`` shows that position.
    """
    if not att.stan_temporal:
        raise ValueError(f"this model has no temporal attention (arch={att.arch!r}, temporal={att.temporal!r}); "
                         "for STAN-conv use occlusion_saliency / plot_saliency instead")
    att = _one(att, sample)
    where = "mean over patches" if patch is None else f"patch {tuple(patch) if not isinstance(patch, int) else patch}"
    fig, axes = _strip(1, len(att.stan_temporal), f"temporal attention\n{where}, {_head_label(head)}", panel=2.6)
    for k, (ax, layer) in enumerate(zip(axes[0], att.stan_temporal)):
        if patch is None:
            mat = select_heads(layer[0], head, dim=1).mean(dim=0)
        else:
            mat = patch_temporal(layer, patch, att.grid, head)[0]
        t = mat.shape[-1]
        im = ax.imshow(mat.cpu().numpy(), cmap=cmap, vmin=0, vmax=1)
        ax.set_title(f"branch {k} (reads CLIP {att.branch_levels[k]})", fontsize=9)
        ax.set_xticks(range(t))
        ax.set_yticks(range(t))
        ax.set_xlabel("key frame", fontsize=9)
        ax.set_ylabel("query frame", fontsize=9)
        ax.tick_params(labelsize=9)
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label="attention")
    return fig


def plot_clip_vs_stan(frames, att: AttentionMaps, sample: int = 0, layer: int = -1, head: Head = None,
                      rollout: bool = True, cmap: str = CMAP, alpha: float = ALPHA) -> Figure:
    """Top row: CLIP's CLS -> patch map per frame (rollout through all CLIP layers, or ``layer``).
    Bottom row: the branch's video CLS -> patch map in branch ``layer`` (what STAN adds)."""
    att = _one(att, sample)
    if rollout:
        clip = rollout_maps(att.clip_spatial, att.grid, head)[0]
        clip_name = "CLIP rollout"
    else:
        clip = cls_maps(att.clip_spatial[layer], att.grid, head)[0]
        clip_name = f"CLIP layer {layer % len(att.clip_spatial)}"
    rows = [(clip, clip_name)]
    if att.stan_spatial:
        k = layer % len(att.stan_spatial)
        rows.append((cls_maps(att.stan_spatial[k], att.grid, head)[0], f"STAN layer {k}"))
    t = att.num_frames
    fig, axes = _strip(len(rows), t, f"CLS attention, CLIP vs STAN ({_head_label(head)})")
    for r, (maps, name) in enumerate(rows):
        imgs = overlay_images(frames, maps, cmap, alpha)
        for i, ax in enumerate(axes[r]):
            ax.imshow(imgs[i])
            ax.set_title(f"frame {i}", fontsize=9)
        axes[r, 0].set_ylabel(name, fontsize=9)
    if not att.stan_spatial:
        fig.suptitle(f"CLIP attention (this model has no STAN spatial module, arch={att.arch!r})")
    return fig


def plot_patch_attention(frames, att: AttentionMaps, patch: Sequence[int], query_frame: int = 0,
                         sample: int = 0, layer: int = -1, head: Head = None, source: str = "stan",
                         cmap: str = CMAP, alpha: float = ALPHA) -> Figure:
    """A chosen patch across the frames: in every frame, where that patch looks (its spatial
    attention in ``source`` layer ``layer``, heatmap), and how much the patch at ``query_frame``
    attends to that frame (temporal attention of the matching branch layer, box and title).
    """
    att = _one(att, sample)
    row, col = (int(v) for v in patch)
    patch_index(patch, att.grid)  # validates
    layers = att.layers(source)
    if not layers:
        raise ValueError(f"no {source!r} spatial attention was captured for arch={att.arch!r}; use source='clip'")
    k = layer % len(layers)
    maps = patch_spatial_maps(layers[k], patch, att.grid, head)[0]
    weights = None
    if att.stan_temporal:
        kt = k if source == "stan" else -1
        weights = patch_temporal(att.stan_temporal[kt], patch, att.grid, head)[0, query_frame].cpu().numpy()
    imgs = overlay_images(frames, maps, cmap, alpha)
    h_px, w_px = imgs.shape[1:3]
    ph, pw = h_px / att.grid[0], w_px / att.grid[1]
    title = f"patch (row {row}, col {col}): where it looks in each frame ({source.upper()} layer {k}, {_head_label(head)})"
    if weights is not None:
        title += f"\nnumbers and box: its attention from frame {query_frame} to each frame (branch layer {kt % len(att.stan_temporal)})"
    fig, axes = _strip(1, len(imgs), title)
    for t, ax in enumerate(axes[0]):
        ax.imshow(imgs[t])
        strength = 1.0 if weights is None else float(weights[t] / max(weights.max(), 1e-12))
        ax.add_patch(Rectangle((col * pw - 0.5, row * ph - 0.5), pw, ph, fill=False, edgecolor="cyan",
                               linewidth=0.5 + 2.5 * strength, alpha=0.3 + 0.7 * strength))
        label = f"frame {t}" + ("" if weights is None else f": {weights[t]:.2f}")
        ax.set_title(label + (" (query)" if weights is not None and t == query_frame else ""), fontsize=9)
    return fig


def plot_saliency(frames, occlusion: Optional[torch.Tensor] = None, gradient: Optional[torch.Tensor] = None,
                  cmap: str = CMAP, alpha: float = ALPHA) -> Figure:
    """Frame saliency for one video: a bar per frame (occlusion drop) and/or gradient overlays.

    ``occlusion``: (T,) score drops; ``gradient``: (T, H, W) maps (from :mod:`stanlib.viz.views`).
    """
    if occlusion is None and gradient is None:
        raise ValueError("pass occlusion (T,) and/or gradient (T, H, W) saliency")
    imgs = display_frames(frames)
    t = len(imgs)
    rows = int(occlusion is not None) + int(gradient is not None)
    fig = Figure(figsize=(PANEL * t, PANEL * rows + 0.4), layout="constrained")
    grid = fig.add_gridspec(rows, t)
    r = 0
    if occlusion is not None:
        occ = torch.as_tensor(occlusion).detach().cpu().reshape(-1).numpy()
        if len(occ) != t:
            raise ValueError(f"occlusion has {len(occ)} values for {t} frames")
        ax = fig.add_subplot(grid[r, :])
        ax.bar(range(t), occ, color=["tab:red" if v > 0 else "tab:blue" for v in occ])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(t))
        ax.set_xlabel("masked frame")
        ax.set_ylabel("score drop")
        ax.set_title("occlusion: drop in the score when the frame is replaced")
        ax.legend(handles=[Rectangle((0, 0), 1, 1, color="tab:red", label="> 0: the frame supported the score"),
                           Rectangle((0, 0), 1, 1, color="tab:blue", label="< 0: masking it raised the score")],
                  fontsize=8, loc="best")
        r += 1
    if gradient is not None:
        grad = torch.as_tensor(gradient).detach().cpu()
        imgs_g = overlay_images(frames, grad, cmap, alpha)
        per_frame = grad.flatten(1).sum(1)
        per_frame = per_frame / per_frame.sum().clamp_min(1e-12)
        for i in range(t):
            ax = fig.add_subplot(grid[r, i])
            ax.imshow(imgs_g[i])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"frame {i}: {per_frame[i]:.2f}", fontsize=9)
    fig.suptitle("temporal saliency (model-agnostic)")
    return fig


def save_figure(fig: Figure, path: Union[str, Path], dpi: int = 110) -> Path:
    """Write a Figure to ``path`` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def save_overlay_gif(frames, maps: torch.Tensor, path: Union[str, Path], fps: float = 4.0, scale: int = 4,
                     cmap: str = CMAP, alpha: float = ALPHA) -> Path:
    """Animated GIF of the heatmap overlays: one GIF frame per video frame, looping.

    ``scale`` enlarges small frames (64 px for the tiny model) with nearest-neighbour pixels; a
    white bar along the bottom edge grows with the frame index.
    """
    from PIL import Image

    imgs = (overlay_images(frames, maps, cmap, alpha) * 255).round().astype(np.uint8)
    t, h, w = imgs.shape[:3]
    pics = []
    for i, im in enumerate(imgs):
        big = np.asarray(Image.fromarray(im).resize((w * scale, h * scale), Image.NEAREST)).copy()
        # a progress bar along the bottom edge: shows which frame plays, and keeps identical
        # frames distinct (GIF encoders merge repeated frames, which would drop video frames)
        big[-scale:, : round(w * scale * (i + 1) / t)] = 255
        pics.append(Image.fromarray(big))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pics[0].save(path, save_all=True, append_images=pics[1:], duration=int(1000 / fps), loop=0)
    return path
