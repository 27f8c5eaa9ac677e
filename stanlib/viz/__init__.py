"""Seeing where STAN looks: attention capture, derived views, plots, a notebook explorer.

::

    import stanlib
    with stanlib.capture_attention(model) as att:    # records; outputs unchanged
        model.encode_video(frames)                   # frames (B, T, 3, H, W)
    from stanlib.viz import rollout_maps, plot_overlay_strip
    fig = plot_overlay_strip(frames[0], rollout_maps(att.clip_spatial, att.grid)[0])

Modules: :mod:`~stanlib.viz.capture` (the context manager and :class:`AttentionMaps`),
:mod:`~stanlib.viz.views` (rollout, CLS maps, per-patch views, saliency),
:mod:`~stanlib.viz.plots` (matplotlib figures, GIF), :mod:`~stanlib.viz.explorer` (ipywidgets),
:mod:`~stanlib.viz.cli` (``stanlib attention``).
"""
from __future__ import annotations

from stanlib.viz.capture import AttentionMaps, capture_attention
from stanlib.viz.plots import (display_frames, overlay_images, plot_clip_vs_stan, plot_overlay_strip,
                               plot_patch_attention, plot_saliency, plot_temporal_matrices, save_figure,
                               save_overlay_gif)
from stanlib.viz.views import (attention_rollout, cls_maps, gradient_saliency, occlusion_saliency,
                               patch_index, patch_spatial_maps, patch_temporal, rollout_maps, select_heads,
                               temporal_entropy)


def __getattr__(name: str):
    if name == "AttentionExplorer":  # ipywidgets imported only when the explorer is used
        from stanlib.viz.explorer import AttentionExplorer

        return AttentionExplorer
    raise AttributeError(f"module 'stanlib.viz' has no attribute {name!r}")


__all__ = ["AttentionMaps", "capture_attention", "attention_rollout", "rollout_maps", "cls_maps",
           "patch_index", "patch_spatial_maps", "patch_temporal", "select_heads", "temporal_entropy",
           "occlusion_saliency", "gradient_saliency", "display_frames", "overlay_images", "plot_overlay_strip",
           "plot_temporal_matrices", "plot_clip_vs_stan", "plot_patch_attention", "plot_saliency",
           "save_figure", "save_overlay_gif", "AttentionExplorer"]
