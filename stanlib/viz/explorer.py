"""An ipywidgets explorer of captured attention (JupyterLab, Colab, classic notebook).

::

    from stanlib.viz import AttentionExplorer
    AttentionExplorer.from_model(model, frames[0])      # last expression of a cell: shows the widget

Controls: frame slider, CLIP/STAN toggle, layer and head selectors, patch picker (row and column
sliders). Three panels: the frame with the CLS -> patch map (the picked patch boxed), where the
picked patch looks inside that frame, and the picked patch position's attention over frames
(STAN's temporal attention). The figure is rendered to PNG into an ``ipywidgets.Image`` that is
updated in place, which works in every front end and in tests without a display.
"""
from __future__ import annotations

import io
from typing import Optional

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from stanlib.viz.capture import AttentionMaps, capture_attention
from stanlib.viz.plots import overlay_images
from stanlib.viz.views import cls_maps, patch_spatial_maps, patch_temporal, rollout_maps

ROLLOUT = -1  # layer selector value for CLIP's attention rollout


class AttentionExplorer:
    """Interactive view of one video's :class:`AttentionMaps`.

    Args:
        frames: the clip the model saw, (T, 3, H, W) CLIP-normalised (or (1, T, 3, H, W)).
        att: its captured attention (batch 1, or ``sample`` picks the video).
        sample: which video of a captured batch to show.

    Attributes: ``frame``, ``source``, ``layer``, ``head``, ``row``, ``col`` (the widgets),
    ``image`` (the rendered figure), ``widget`` (the whole box to display).
    """

    def __init__(self, frames: torch.Tensor, att: AttentionMaps, sample: int = 0):
        import ipywidgets as w

        if att.empty:
            raise ValueError("the AttentionMaps are empty: capture a forward first")
        self.att = att.sample(sample) if att.batch > 1 else att
        self.frames = frames[sample] if frames.ndim == 5 else frames
        t, (gh, gw) = self.att.num_frames, self.att.grid
        if self.frames.shape[0] != t:
            raise ValueError(f"{self.frames.shape[0]} frames given but the attention covers {t}")
        sources = ["CLIP"] + (["STAN"] if self.att.stan_spatial else [])
        self.frame = w.IntSlider(0, 0, t - 1, description="frame")
        self.source = w.ToggleButtons(options=sources, value=sources[-1], description="model")
        self.layer = w.Dropdown(description="layer")
        self.head = w.Dropdown(options=[("mean", None)] + [(f"head {h}", h) for h in range(self.att.num_heads)],
                               value=None, description="head")
        self.row = w.IntSlider(gh // 2, 0, gh - 1, description="patch row")
        self.col = w.IntSlider(gw // 2, 0, gw - 1, description="patch col")
        self.image = w.Image(format="png")
        self._busy = False
        self._set_layer_options()
        self.source.observe(self._on_source, names="value")
        for ctl in (self.frame, self.layer, self.head, self.row, self.col):
            ctl.observe(lambda _change: None if self._busy else self.update(), names="value")
        controls = w.VBox([self.source, w.HBox([self.layer, self.head]), self.frame,
                           w.HBox([self.row, self.col])])
        self.widget = w.VBox([controls, self.image])
        self.renders = 0
        self.update()

    @classmethod
    def from_model(cls, model: torch.nn.Module, frames: torch.Tensor) -> "AttentionExplorer":
        """Run one forward of ``frames`` (T, 3, H, W) under capture and explore it."""
        clip = frames if frames.ndim == 5 else frames[None]
        with torch.no_grad(), capture_attention(model) as att:
            model.encode_video(clip)
        return cls(clip[0], att)

    # ------------------------------------------------------------------ state -> figure
    def _set_layer_options(self) -> None:
        if self.source.value == "CLIP":
            opts = [("rollout", ROLLOUT)] + [(f"CLIP {i}", i) for i in range(len(self.att.clip_spatial))]
        else:
            opts = [(f"branch {k} (CLIP {lvl})", k) for k, lvl in enumerate(self.att.branch_levels)]
        self.layer.options = opts
        self.layer.value = opts[-1][1]

    def _on_source(self, _change) -> None:
        self._busy = True  # changing the options fires the layer observer: render once, at the end
        try:
            self._set_layer_options()
        finally:
            self._busy = False
        self.update()

    def figure(self) -> Figure:
        """The current view as a Figure (also usable without widgets)."""
        att, t, patch = self.att, self.frame.value, (self.row.value, self.col.value)
        head, layer, stan = self.head.value, self.layer.value, self.source.value == "STAN"
        layers = att.stan_spatial if stan else att.clip_spatial
        if not stan and layer == ROLLOUT:
            cls_map, name = rollout_maps(att.clip_spatial, att.grid, head)[0, t], "CLIP rollout"
            spatial = layers[-1]
        else:
            spatial = layers[layer]
            cls_map, name = cls_maps(spatial, att.grid, head)[0, t], f"{self.source.value} layer {layer}"
        patch_map = patch_spatial_maps(spatial, patch, att.grid, head)[0, t]
        frame = self.frames[t:t + 1]

        fig = Figure(figsize=(9.5, 3.3), layout="constrained")
        axes = fig.subplots(1, 3)
        hl = "mean of heads" if head is None else f"head {head}"
        fig.suptitle(f"{name}, {hl}, frame {t}", fontsize=10)
        ph, pw = (s / g for s, g in zip(frame.shape[-2:], att.grid))
        for ax, m, title in ((axes[0], cls_map, "CLS -> patches"), (axes[1], patch_map, f"patch {patch} -> patches")):
            ax.imshow(overlay_images(frame, m[None])[0])
            ax.add_patch(Rectangle((patch[1] * pw - 0.5, patch[0] * ph - 0.5), pw, ph, fill=False, edgecolor="cyan"))
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        self._temporal_panel(axes[2], patch, t, head, layer if stan else None)
        return fig

    def _temporal_panel(self, ax, patch, t: int, head, layer: Optional[int]) -> None:
        att = self.att
        if not att.stan_temporal:
            why = "STAN-conv: see occlusion_saliency" if att.temporal == "conv" else "no temporal attention"
            ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=9)
            ax.set_axis_off()
            return
        k = layer if layer is not None else len(att.stan_temporal) - 1
        weights = patch_temporal(att.stan_temporal[k], patch, att.grid, head)[0, t].cpu().numpy()
        ax.bar(range(len(weights)), weights, color=["tab:orange" if i == t else "tab:blue" for i in range(len(weights))])
        ax.axhline(1 / len(weights), color="gray", linestyle="--", linewidth=1, label="uniform")
        ax.set_ylim(0, 1)
        ax.set_xlabel("key frame", fontsize=8)
        ax.set_title(f"patch {patch}, frame {t} -> frames (branch {k})", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")

    def update(self) -> None:
        """Re-render into the Image widget (called on every control change)."""
        buf = io.BytesIO()
        self.figure().savefig(buf, format="png", dpi=80)
        self.image.value = buf.getvalue()
        self.renders += 1

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
