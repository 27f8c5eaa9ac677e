"""The README's result tables, generated from the committed result files.

    python tools/readme_table.py            # print the tables
    python tools/readme_table.py --write    # rewrite them in README.md and docs/experiments.md (between markers)

* ``teaching-table``: :func:`stanlib.teaching.experiments.teaching_table` of ``stanlib/assets/experiments/results/``
  (each task's default recipe, the paper's method on ``stan-tiny-v2``, every seed); ``teaching-table-first-clip``:
  the same for the first tiny CLIP's recipe (``FIRST_CLIP``); ``committed-results`` /
  ``committed-results-first-clip``: the per-task tables of docs/experiments.md 2.0;
* ``preset-table`` / ``textured-table``: :func:`stanlib.teaching.experiments.preset_table` of the ``stanlib train``
  runs of the tiny-motion preset (``stanlib experiments run --preset ...``) in ``docs/results/paper-method/`` on the
  bundled motion set and on the 1600-clip textured world (``TEXTURED_CONFIG``: 12 epochs, CLIP lr 2e-4, branch
  x25); ``-first-clip``: the first tiny CLIP's
  runs in ``docs/results/preset-results/`` (bundled set; the 480-clip textured world).

* ``paper-method`` / ``paper-method-demo``: docs/experiments.md 2.9, the paper's method on ``stan-tiny-v2``: mean
  pooling and STAN-self of the default recipes, the textured-world runs of ``docs/results/paper-method/preset-results/``
  and the ``stanlib demo`` runs of ``docs/results/paper-method/demo/``.

* ``gpu-check``: the README's GPU section, from the reports of ``python tools/gpu_check.py`` in
  ``docs/results/gpu_check/`` (train step, input pipeline, notebook 07's GPU profile).

``tests/test_results.py`` checks that README.md (and docs/experiments.md, for the preset tables) hold exactly
these tables.
"""
import argparse
import json
import re
from pathlib import Path

import numpy as np

from stanlib.teaching.experiments import (ABLATION_ROWS, FIRST_CLIP, LEVEL_ROWS, MAIN_ROWS, RESULTS_DIR, ROWS,
                                          STRUCTURE_ROWS,
                                          _mean_std, _short_pair, default_results, load_preset_results, load_results,
                                          preset_table, results_table, teaching_table)

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs" / "experiments.md"            # holds the preset blocks too
PRESET_RESULTS = REPO / "docs" / "results"          # holds preset-results/
PAPER_METHOD = REPO / "docs" / "results" / "paper-method"  # stanlib train and demo runs of the paper's method
# the README's textured-world recipe: --config epochs=12 --config lr=2e-4 --config lr_mult=25
TEXTURED_CONFIG = {"epochs": 12, "lr": 2e-4, "lr_mult": 25.0}


GPU_CHECK = REPO / "docs" / "results" / "gpu_check"      # tools/gpu_check.py reports
README_BLOCKS = ("teaching-table", "teaching-table-first-clip", "preset-table", "textured-table", "gpu-check")
DOCS_BLOCKS = ("committed-results", "committed-results-first-clip", "preset-table-first-clip",
               "textured-table-first-clip", "paper-method", "paper-method-demo")


def _block(name: str) -> re.Pattern:
    return re.compile(re.escape(f"<!-- {name}:start -->") + r"\n(.*?)\n?" + re.escape(f"<!-- {name}:end -->"), re.S)


SECTIONS = (("main rows", MAIN_ROWS), ("Table 6 ablation", ABLATION_ROWS), ("Table 7 structures", STRUCTURE_ROWS),
            ("Table 8 levels (K = 2 of the 4 layers)", LEVEL_ROWS))


def committed_results(results: list[dict], changes: dict | None = None) -> str:
    """docs/experiments.md 2.0: per task and group of rows, the runs of the default recipes (with ``changes``:
    e.g. ``FIRST_CLIP``'s), mean ± std over seeds."""
    runs = [r for rs in default_results(results, changes).values() for r in rs]
    parts = []
    for task in ("motion", "appearance", "captions"):
        for title, rows in SECTIONS:
            present = [row for row in rows if any(r["task"] == task and r["row"] == row for r in runs)]
            if title != "main rows" and not set(present) - {"meanpool", "stan-self"}:
                continue
            parts.append(f"**{task}, {title}** (mean ± std over seeds; last column: training CPU seconds)\n\n"
                         + results_table(runs, task, rows))
    return "\n\n".join(parts)


PAPER_TASKS = {"motion": "motion, class-name head", "appearance": "appearance, class-name head",
               "captions": "captions, plain InfoNCE"}


def _paper_line(title: str, rs: list[dict]) -> str:
    """One row of the paper-method table: the task's headline metric(s) over seeds, per seed, per pair."""
    m = [r["metrics"] for r in rs]
    if "t2v" in m[0]:  # captions
        result = (f"t2v R@1 {_mean_std([x['t2v']['R@1'] for x in m])}, v2t R@1 {_mean_std([x['v2t']['R@1'] for x in m])}"
                  f", twin {_mean_std([x['twin'] for x in m])}")
        seeds = ", ".join(f"{x['t2v']['R@1']:.1f}" for x in m)
        detail = "top-1 errors: " + ", ".join(f"{k} {np.mean([x['top1_errors'][k] for x in m]):.1f}"
                                               for k in m[0]["top1_errors"])
    elif "direction" in m[0]:  # motion: direction against the reversal, per pair
        result = f"direction {_mean_std([x['direction'] for x in m])}, top-1 {_mean_std([x['top1'] for x in m])}"
        seeds = ", ".join(f"{x['direction']:.1f}" for x in m)
        detail = ", ".join(f"{_short_pair(p)} {np.mean([x['per_pair'][p]['direction'] for x in m]):.0f}"
                           for p in m[0]["per_pair"])
    else:  # appearance
        result = f"top-1 {_mean_std([x['top1'] for x in m])}"
        seeds, detail = ", ".join(f"{x['top1']:.1f}" for x in m), "-"
    train = np.mean([r["train_seconds"] for r in rs])
    return f"| {title} | {ROWS[rs[0]['row']][0]} | {len(rs)} | {result} | {seeds} | {detail} | {train:.0f} |"


def _lr_change(run: dict) -> str:
    """", CLIP lr 2e-4, branch x25" where a preset run changed the preset's learning rates, else ""."""
    from stanlib.engine.presets import get_preset

    cfg, preset = run["config"], get_preset(run["preset"])
    if (cfg["lr"], cfg["lr_mult"]) == (preset.lr, preset.lr_mult):
        return ""
    lr = f"{cfg['lr']:.1e}".replace(".0e", "e").replace("e-0", "e-")       # 0.0002 -> "2e-4"
    return f", CLIP lr {lr}, branch x{cfg['lr_mult']:g}"


def paper_method(folder: Path = PAPER_METHOD) -> str:
    """docs/experiments.md 2.9: mean pooling and STAN-self of the default recipes (the committed results) and
    every preset run in ``folder/preset-results`` (``stanlib experiments run --preset ...``), one row per task
    and model, mean ± std over seeds (sample std)."""
    lines = ["| task (paper's method) | model | seeds | result (mean ± std) | per seed | per pair (mean) | train s |",
             "|---|---|---|---|---|---|---|"]
    first = ["stan-self", "meanpool"]
    order = {row: k for k, row in enumerate(first + [row for row in ROWS if row not in first])}
    runs = [r for (_, row), rs in default_results(load_results(RESULTS_DIR)).items() if row in first for r in rs]
    runs = sorted(runs, key=lambda r: (list(PAPER_TASKS).index(r["task"]), order[r["row"]], r["seed"]))
    presets = sorted(load_preset_results(folder), key=lambda r: (r["task"], r["config"]["epochs"],
                                                                 -r["config"]["lr"], order[r["row"]], r["seed"]))
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((PAPER_TASKS[r["task"]], r["row"]), []).append(r)
    for r in presets:
        world = f"`{r['task'].split('@', 1)[1]}` world" if "@" in r["task"] else "bundled motion clips"
        title = (f"{world}, `stanlib train --preset {r['preset']}`, {r['config']['epochs']} epochs"
                 f"{_lr_change(r)}, class-name head")
        groups.setdefault((title, r["row"]), []).append(r)
    return "\n".join(lines + [_paper_line(title, rs) for (title, _), rs in groups.items()])


def paper_method_demo(folder: Path = PAPER_METHOD / "demo") -> str:
    """docs/experiments.md 2.9: the ``stanlib demo`` runs (``seedS.json``: 1 thread beside another run;
    ``seedS_2threads.json``: 2 threads on the quiet machine)."""
    lines = ["| seed | threads | wall min | CPU s | STAN-self direction | per pair | mean pooling direction |",
             "|---|---|---|---|---|---|---|"]
    runs = [json.loads(f.read_text()) for f in sorted(folder.glob("seed*.json"))]
    for d in sorted(runs, key=lambda d: (d["torch_threads"], d["seed"])):
        stan, meanpool = d["results"]["STAN-self"], d["results"]["mean pooling"]
        pairs = ", ".join(f"{p} {v['direction']:.0f}" for p, v in stan["per_pair"].items())
        lines.append(f"| {d['seed']} | {d['torch_threads']} | {d['wall_time_s'] / 60:.1f} | {d['cpu_time_s']:.0f} "
                     f"| {stan['direction']:.1f} | {pairs} | {meanpool['direction']:.1f} |")
    return "\n".join(lines)


def gpu_check_table(folder: Path = GPU_CHECK) -> str:
    """Train step (eager vs compiled), input pipeline beside the train step, and notebook 07 on a GPU."""
    train = json.loads((folder / "h200_train_step.json").read_text())
    inputs = json.loads((folder / "h200_input_pipeline.json").read_text())
    notebook = json.loads((folder / "h200_notebook07.json").read_text())
    info = train["info"]
    models = [("ViT-B-32", 12), ("ViT-B-16", 8)]
    name = {("ViT-B-32", 12): "B/32, 12 frames", ("ViT-B-16", 8): "B/16, 8 frames"}

    def step(rows: list[dict], model, batch) -> dict | None:
        found = [r for r in rows if (r["model"], r["frames"], r["batch"]) == (*model, batch) and r.get("clips_per_s")]
        return found[0] if found else None

    def cell(r: dict | None) -> str:
        if r is None:
            return "not measured (time budget)"
        return f"{r['train_step_s'] * 1000:.0f} ms, {r['clips_per_s']:.0f} clips/s, MFU {r['mfu']:.1%}"

    lines = [f"{info['device']} ({info['gpu_memory_gib']} GiB), torch {info['versions']['torch']}, bf16 autocast, "
             f"fused attention, fused AdamW, STAN-self K=4, random-init weights; {info['date'][:10]}. Train step "
             "(`python tools/gpu_check.py`, `docs/results/gpu_check/h200_train_step.json`):", "",
             "| model | batch | eager | torch.compile | peak memory eager / compiled |", "|---|---|---|---|---|"]
    best = {}
    for model in models:
        for batch in sorted({r["batch"] for r in train["train_step"] if (r["model"], r["frames"]) == model}):
            eager, comp = step(train["train_step"], model, batch), step(train["train_step_compiled"], model, batch)
            mem = " / ".join("-" if r is None else f"{r['peak_mib'] / 1024:.1f} GiB" for r in (eager, comp))
            lines.append(f"| {name[model]} | {batch} | {cell(eager)} | {cell(comp)} | {mem} |")
            for r in (eager, comp):
                if r is not None and r["clips_per_s"] > best.get(model, {"clips_per_s": 0})["clips_per_s"]:
                    best[model] = r
    rows = inputs["input_pipeline"]
    data = inputs["data"]
    lines += ["", f"Input pipeline: the training dataset (TSN sampling, random resized crop to 224 px) in a DataLoader "
              f"with {rows[0]['workers']} workers ({inputs['info']['cpus']} CPUs, decord), batch {rows[0]['batch']}, "
              f"pinned memory, on {data['raw']['videos']} generated {data['raw']['size']} {data['raw']['fps']} fps "
              f"videos of {data['raw']['seconds']:.0f} s and on their `stanlib data compress` copy "
              f"({data['compressed']['short_side']} px, {data['compressed']['fps']} fps); clips/s "
              "and, in brackets, as a multiple of the fastest train step's clips/s "
              "(`docs/results/gpu_check/h200_input_pipeline.json`):", "",
              "| videos | frames normalised | " + " | ".join(name[m] for m in models) + " |",
              "|---|---|" + "---|" * len(models)]
    where = {"workers": "in the workers (float32)", "device": "on the GPU (uint8 copied)"}
    for videos in ("raw", "compressed"):
        for normalise_on in ("workers", "device"):
            values = []
            for model in models:
                r = [x for x in rows if (x["videos"], x.get("normalise_on"), x["model"], x["frames"])
                     == (videos, normalise_on, *model)]
                v = r[0]["clips_per_s"] if r else None
                values.append("-" if v is None else f"{v:.0f} ({v / best[model]['clips_per_s']:.2f}x)")
            lines.append(f"| {videos} | {where[normalise_on]} | " + " | ".join(values) + " |")
    lines.append("| train step (fastest above) | | " + " | ".join(
        f"{best[m]['clips_per_s']:.0f} (batch {best[m]['batch']}{', compiled' if best[m]['compiled'] else ''})"
        for m in models) + " |")
    nb = notebook["notebook"]
    cells = [c for c in nb["cells"] if c["status"] == "ok"]
    params = nb["parameters"]
    lines += ["", f"`{nb['notebook']}`, GPU profile (CLIP with random weights, `pretrained=none`; "
              f"{params['STEPS']} steps at batch {params['BATCH']} on the compressed videos): "
              f"{'ran end to end' if nb['ran_end_to_end'] else 'FAILED'}, {len(cells)} of {len(nb['cells'])} cells "
              f"ok in {nb['total_s']:.0f} s (`docs/results/gpu_check/h200_notebook07.json`)."]
    return "\n".join(lines)


def tables() -> dict[str, str]:
    """Every generated block: marker name -> markdown."""
    presets, paper = load_preset_results(PRESET_RESULTS), load_preset_results(PAPER_METHOD)
    results = load_results(RESULTS_DIR)
    return {
        "committed-results": committed_results(results),
        "committed-results-first-clip": committed_results(results, FIRST_CLIP),
        "teaching-table": teaching_table(results),
        "teaching-table-first-clip": teaching_table(results, FIRST_CLIP),
        "preset-table": preset_table([r for r in paper if r["task"] == "tiny-motion"]),
        "textured-table": preset_table([r for r in paper if r["task"].startswith("tiny-motion@textured")
                                        and all(r["config"][k] == v for k, v in TEXTURED_CONFIG.items())]),
        "preset-table-first-clip": preset_table([r for r in presets if r["task"] == "tiny-motion"]),
        "textured-table-first-clip": preset_table([r for r in presets if r["task"].startswith("tiny-motion@textured")]),
        "paper-method": paper_method(),
        "paper-method-demo": paper_method_demo(),
        "gpu-check": gpu_check_table(),
    }


def readme_block(text: str, name: str = "teaching-table") -> str:
    """The text between a block's markers in a README text."""
    match = _block(name).search(text)
    if match is None:
        raise ValueError(f"README.md has no <!-- {name}:start --> ... <!-- {name}:end --> block")
    return match.group(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the tables in README.md")
    args = ap.parse_args()
    blocks = tables()
    if not args.write:
        for name, table in blocks.items():
            print(f"{name}:\n{table}\n")
        return 0
    for path, names in ((README, README_BLOCKS), (DOCS, DOCS_BLOCKS)):
        text = path.read_text()
        written = []
        for name in names:
            table = blocks[name]
            readme_block(text, name)  # the markers must be there
            text = _block(name).sub(lambda _: f"<!-- {name}:start -->\n{table}\n<!-- {name}:end -->", text)
            written.append(name)
        path.write_text(text)
        print(f"wrote {', '.join(written)} into {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
