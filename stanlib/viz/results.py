"""Matplotlib figures of results: per-pair bars and model-comparison bars (each returns a Figure).

* :func:`plot_pair_bars`: one group of bars per motion pair, one bar per model (direction or twin
  accuracy), with the 50% line an order-blind model sits on.
* :func:`plot_model_bars`: one bar per model with its spread over seeds (mean ± std, the seeds as dots).
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

COLOURS = ("#9e9e9e", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def plot_pair_bars(per_pair: Mapping[str, Mapping[str, float]], pair_names: Sequence[str],
                   ylabel: str = "direction accuracy (%)", title: Optional[str] = None,
                   chance: float = 50.0) -> Figure:
    """Grouped bars: ``per_pair[model][pair]`` (a percentage) for every model and pair.

    The dashed line at ``chance`` is where a model blind to frame order must sit on reversal twins."""
    fig = Figure(figsize=(max(7.5, 1.3 * len(pair_names) + 3.5), 3.4), dpi=100)
    ax = fig.subplots()
    models = list(per_pair)
    width = 0.8 / max(1, len(models))
    x = np.arange(len(pair_names))
    for k, model in enumerate(models):
        values = [per_pair[model].get(p, np.nan) for p in pair_names]
        bars = ax.bar(x + (k - (len(models) - 1) / 2) * width, values, width, label=model,
                      color=COLOURS[k % len(COLOURS)])
        ax.bar_label(bars, fmt="%.0f", fontsize=8, padding=1)
    ax.axhline(chance, color="black", linestyle="--", linewidth=1, label=f"order-blind ({chance:.0f}%)")
    ax.set_xticks(x, pair_names, fontsize=9)
    ax.set_ylim(0, 112)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_model_bars(values: Mapping[str, Sequence[float]], ylabel: str, title: Optional[str] = None,
                    reference: Optional[Mapping[str, float]] = None, chance: Optional[float] = None) -> Figure:
    """One horizontal bar per model: the mean of ``values[model]`` (one value per seed), its std as an
    error bar and every seed as a dot. ``reference``: a second value per model drawn as a hollow
    marker (e.g. the paper's number); ``chance``: a dashed vertical line."""
    names = list(values)
    fig = Figure(figsize=(7.5, 0.45 * len(names) + 1.2), dpi=100)
    ax = fig.subplots()
    y = np.arange(len(names))[::-1]
    for k, (name, yy) in enumerate(zip(names, y)):
        vals = np.asarray([v for v in values[name] if v is not None], dtype=float)
        if vals.size == 0:
            continue
        std = vals.std(ddof=1) if vals.size > 1 else 0.0
        ax.barh(yy, vals.mean(), xerr=std, color=COLOURS[k % len(COLOURS)], alpha=0.85, capsize=3)
        ax.plot(vals, np.full(vals.size, yy), "k.", markersize=5)
        label = f"{vals.mean():.1f}" + (f" ± {std:.1f} ({vals.size} seeds)" if vals.size > 1 else " (1 seed)")
        ax.text(min(vals.mean() + std, 100) + 1, yy, label, va="center", fontsize=8)
        if reference and name in reference:
            ax.plot(reference[name], yy, "o", mfc="none", mec="black", markersize=7)
    if chance is not None:
        ax.axvline(chance, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(y, names, fontsize=9)
    ax.set_xlim(0, 125)
    ax.set_xlabel(ylabel, fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
