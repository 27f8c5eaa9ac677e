"""Held-out direction accuracy per epoch of the textured-world runs (docs/experiments.md 2.9), one line per
run, one panel per learning-rate setting: the preset's (CLIP 5e-4, branch x10) and CLIP 2e-4 with branch x25.

    python tools/textured_curves.py    # writes docs/results/paper-method/textured_direction_by_epoch.png
"""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "docs" / "results" / "paper-method"
WORLD = "tiny-motion@textured-twins-1600"


def runs() -> list[dict]:
    """Every 12-epoch textured-world run: its result record and its per-epoch history."""
    out = []
    for f in sorted((FOLDER / "preset-results").glob(f"{WORLD}__*.json")):
        record = json.loads(f.read_text())
        history = FOLDER / "histories" / f"{f.stem}.metrics.json"
        if record["config"]["epochs"] == 12 and history.exists():
            out.append({**record, "history": json.loads(history.read_text())["epochs"]})
    return out


def main() -> Path:
    all_runs = runs()
    settings = sorted({(r["config"]["lr"], r["config"]["lr_mult"]) for r in all_runs}, reverse=True)
    fig, axes = plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 4), sharey=True, squeeze=False)
    for ax, (lr, mult) in zip(axes[0], settings):
        for r in (r for r in all_runs if (r["config"]["lr"], r["config"]["lr_mult"]) == (lr, mult)):
            points = [(e["epoch"], e["direction"]) for e in r["history"] if "direction" in e]
            style = "--" if r["row"] == "meanpool" else "-"       # one colour per seed, mean pooling dashed
            ax.plot(*zip(*points), style, color=f"C{r['seed']}", marker="o", label=f"{r['row']} seed {r['seed']}")
        ax.axhline(85, color="grey", lw=0.8, ls=":")                 # the target
        ax.axhline(50, color="grey", lw=0.8)                         # a guess between a clip and its reversal
        ax.set(title=f"CLIP lr {lr:g}, branch lr {lr * mult:g}", xlabel="epoch", ylim=(40, 101))
    axes[0][0].set_ylabel("held-out direction accuracy (%)")
    fig.suptitle("textured-twins-1600 through `stanlib train --preset tiny-motion`, 12 epochs")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=6, fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path = FOLDER / "textured_direction_by_epoch.png"
    fig.savefig(path, dpi=90)
    return path


if __name__ == "__main__":
    print(f"wrote {main()}")
