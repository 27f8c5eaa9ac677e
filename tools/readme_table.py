"""The README's teaching-world table from cached `stanlib experiments` results (default recipe).

    python tools/readme_table.py [runs/experiments]

One line per row: motion direction (mean +- std over seeds, per seed, per pair), motion top-1, appearance
top-1, captions R@1 and twin accuracy. Each task's results are read under the default recipe's key for that
task (`task_recipe(task).key(task)`: recognition tasks ignore the retrieval-only fields; captions trains
with its own batch size and branch lr, `TASK_RECIPES`).
"""
import glob
import json
import sys

import numpy as np

from stanlib.experiments import ROWS, TASK_KINDS, task_recipe

out = sys.argv[1] if len(sys.argv) > 1 else "runs/experiments"
res: dict = {}
for task in TASK_KINDS:
    for f in glob.glob(f"{out}/results/{task}__*__{task_recipe(task).key(task)}.json"):
        d = json.load(open(f))
        res.setdefault((d["task"], d["row"]), []).append(d)


def ms(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    return f"{np.mean(vals):.1f}" + (f" +- {np.std(vals, ddof=1):.1f}" if len(vals) > 1 else "")


print("| model | seeds (motion / appearance / captions) | motion direction | per seed | per pair: left/right, up/down, grow/shrink, "
      "rotate, fade | motion top-1 | appearance top-1 | captions t2v R@1 | captions twin acc. |")
print("|---|---|---|---|---|---|---|---|---|")
for row, (label, _, _) in ROWS.items():
    mo, ap, ca = (sorted(res.get((t, row), []), key=lambda d: d["seed"]) for t in ("motion", "appearance", "captions"))
    if not (mo or ap or ca):
        continue
    pp = "-"
    if mo:
        pairs = list(mo[0]["metrics"]["per_pair"])
        pp = " / ".join(f"{np.mean([d['metrics']['per_pair'][p]['direction'] for d in mo]):.0f}" for p in pairs)
    seeds = ", ".join("%.1f" % d["metrics"]["direction"] for d in mo) or "-"
    print(f"| {label} | {len(mo)} / {len(ap)} / {len(ca)} | {ms([d['metrics']['direction'] for d in mo])} | {seeds} | {pp} | "
          f"{ms([d['metrics']['top1'] for d in mo])} | {ms([d['metrics']['top1'] for d in ap])} | "
          f"{ms([d['metrics']['t2v']['R@1'] for d in ca])} | {ms([d['metrics']['twin'] for d in ca])} |")
