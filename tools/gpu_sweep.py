"""Recipe sweep for the teaching world on a GPU (or the CPU): many short runs side by side.

Phase 1 trains STAN-self on the motion task under candidate recipes (3 seeds each), phase 2 takes
the best recipe whose CPU cost fits ``MAX_COST`` (~15 minutes of one CPU core) and runs every row
of every task with it.
Each run is :func:`stanlib.teaching.experiments.run_one` (the same code as ``stanlib experiments run``), so a
recipe found here is re-measured on the CPU with one command. Results are appended to
``OUT/sweep.jsonl`` as they finish and summarised in ``OUT/sweep.md``.

    python tools/gpu_sweep.py --out $OUT --workers 8 --budget 420
    python tools/gpu_sweep.py --out /tmp/sweep --device cpu --quick     # test the script
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

# name -> Recipe changes (model_kwargs merged). Cost = CPU step units relative to 300 base steps.
CANDIDATES: dict[str, dict] = {
    "base300": {},
    "s600": {"steps": 600},
    "s800": {"steps": 800},
    "lin600": {"steps": 600, "head": "linear"},
    "every600": {"steps": 600, "model_kwargs": {"time_embed": "every"}},
    "every_lin800": {"steps": 800, "head": "linear", "model_kwargs": {"time_embed": "every"}},
    "t12_500": {"steps": 500, "num_frames": 12},
    "lr1e-3_600": {"steps": 600, "lr": 1e-3},
    "mult20_600": {"steps": 600, "lr_mult": 20.0},
    "n2400_600": {"steps": 600, "n_train": 2400},
    "n4800_800": {"steps": 800, "n_train": 4800},
    "dp0_600": {"steps": 600, "model_kwargs": {"drop_path": 0.0}},
    "b32_400": {"steps": 400, "batch_size": 32},
    "every_n4800_800": {"steps": 800, "n_train": 4800, "model_kwargs": {"time_embed": "every"}},
    "t12_every_500": {"steps": 500, "num_frames": 12, "model_kwargs": {"time_embed": "every"}},
    "t16_375": {"steps": 375, "num_frames": 16},
    "t12_n2400_500": {"steps": 500, "num_frames": 12, "n_train": 2400},
    "d_t12_160": {"steps": 160, "n_train": 400, "num_frames": 12},
    "c_frozen_text": {"freeze_text": True},
    "c_no_twins": {"twin_batches": False},
    "c_lr1e-4": {"lr": 1e-4},
    "c_s600": {"steps": 600},
    "c_frozen_text_t12_500": {"freeze_text": True, "steps": 500, "num_frames": 12},
    # `stanlib demo` sizes (<= 5 min on 2 cores: ~240 steps)
    "d240": {"steps": 240, "n_train": 400},
    "d240_every": {"steps": 240, "n_train": 400, "model_kwargs": {"time_embed": "every"}},
    "d240_lr1e-3": {"steps": 240, "n_train": 400, "lr": 1e-3},
    "d240_lin": {"steps": 240, "n_train": 400, "head": "linear"},
    "d240_mult20": {"steps": 240, "n_train": 400, "lr_mult": 20.0},
    "d240_n1600": {"steps": 240, "n_train": 1600},
}
MAX_COST = 800  # steps x (frames / 8) x (batch / 16): ~15 min of one free CPU core at ~1 s per base step


def cost(recipe) -> float:
    return recipe.steps * recipe.num_frames / 8 * recipe.batch_size / 16


def make_recipe(changes: dict, quick: bool):
    from stanlib.teaching.experiments import FIRST_CLIP, QUICK, Recipe

    # the sweeps of docs/experiments.md 2.1-2.7 ran on the first tiny CLIP with its recipe
    base = replace(QUICK if quick else Recipe(), **FIRST_CLIP)
    changes = dict(changes)
    if quick:  # keep the quick sizes, exercise the option only
        changes = {k: v for k, v in changes.items() if k in ("head", "model_kwargs", "lr", "lr_mult")}
    return replace(base, **changes)


def worker(jobs, results_path: str, device: str, out: str, quick: bool) -> None:
    import torch

    torch.set_num_threads(1)
    from stanlib.teaching.experiments import run_one

    while True:
        try:
            job = jobs.get(timeout=1)
        except Exception:
            return
        if job is None:
            return
        name, task, row, seed, changes = job
        t0 = time.time()
        try:
            recipe = make_recipe(changes, quick)
            res = run_one(task, row, seed, recipe, Path(out), progress=False, device=device)
            line = {"name": name, "task": task, "row": row, "seed": seed, "metrics": res["metrics"],
                    "train_seconds": res["train_seconds"], "wall": round(time.time() - t0, 1),
                    "cost": cost(recipe), "recipe": asdict(recipe), "device": res.get("device")}
        except Exception as err:  # keep the sweep going; the failure is reported in the summary
            line = {"name": name, "task": task, "row": row, "seed": seed, "error": repr(err)[:500]}
        with open(results_path, "a") as f:
            f.write(json.dumps(line) + "\n")
        print(f"[{time.strftime('%H:%M:%S')}] {name} {task}/{row}/s{seed}: "
              f"{line.get('metrics', {}).get('direction', line.get('error', ''))}", flush=True)


def run_jobs(jobs: list, workers: int, results_path: Path, device: str, out: Path, quick: bool,
             deadline: float) -> None:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    for j in jobs:
        q.put(j)
    procs = [ctx.Process(target=worker, args=(q, str(results_path), device, str(out), quick)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=max(1.0, deadline - time.time()))
    for p in procs:
        if p.is_alive():
            p.terminate()


def headline(m: dict, task: str) -> float:
    if task == "motion":
        return m["direction"]
    if task == "captions":
        return m["t2v"]["R@1"]
    return m["top1"]


def summarise(results_path: Path) -> str:
    lines = [json.loads(x) for x in results_path.read_text().splitlines() if x.strip()] if results_path.is_file() else []
    groups: dict[tuple, dict] = {}
    for r in lines:  # one entry per seed (a cached run may be reported twice)
        groups.setdefault((r["name"], r["task"], r["row"]), {})[r["seed"]] = r
    groups = {k: list(v.values()) for k, v in groups.items()}
    out = ["| recipe | task | row | seeds | headline (mean ± std) | per seed | motion per pair (direction) | "
           "train s | cost |", "|---|---|---|---|---|---|---|---|---|"]
    for (name, task, row), rs in sorted(groups.items()):
        ok = [r for r in rs if "metrics" in r]
        errs = [r["error"] for r in rs if "error" in r]
        if not ok:
            out.append(f"| {name} | {task} | {row} | 0 | ERROR {errs[0][:80]} | | | | |")
            continue
        vals = [headline(r["metrics"], task) for r in ok]
        pp = ""
        if task == "motion":
            names = list(ok[0]["metrics"]["per_pair"])
            pp = " / ".join(f"{np.mean([r['metrics']['per_pair'][n]['direction'] for r in ok]):.0f}" for n in names)
        elif task == "captions":
            pp = f"twin {np.mean([r['metrics']['twin'] for r in ok]):.1f}"
        std = f" ± {np.std(vals, ddof=1):.1f}" if len(vals) > 1 else ""
        out.append(f"| {name} | {task} | {row} | {len(ok)} | {np.mean(vals):.1f}{std} | "
                   f"{', '.join(f'{v:.1f}' for v in vals)} | {pp} | "
                   f"{np.mean([r['train_seconds'] for r in ok]):.0f} | {ok[0]['cost']:.0f} |")
    return "\n".join(out)


def best_recipe(results_path: Path, names) -> str:
    lines = [json.loads(x) for x in results_path.read_text().splitlines() if x.strip()]
    score = {}
    for n in names:
        vals = [r["metrics"]["direction"] for r in lines
                if r["name"] == n and r["task"] == "motion" and r["row"] == "stan-self" and "metrics" in r]
        if len(vals) >= 2:
            score[n] = float(np.mean(vals))
    return max(score, key=score.get) if score else "base300"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--budget", type=float, default=420, help="seconds for both phases")
    ap.add_argument("--phase1-share", type=float, default=0.5, help="share of the budget for the recipe sweep")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (test the script on a CPU)")
    ap.add_argument("--only", nargs="*", default=None, help="candidate names (default: all)")
    ap.add_argument("--jobs", nargs="*", default=None, metavar="NAME/TASK/ROW/SEED",
                    help="run exactly these jobs (no phases)")
    args = ap.parse_args()
    t0 = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    cache = Path(os.environ.get("SWEEP_CACHE", "/tmp/sweep_cache"))
    results = args.out / "sweep.jsonl"
    names = [n for n in CANDIDATES if args.only is None or n in args.only]
    names = [n for n in names if cost(make_recipe(CANDIDATES[n], False)) <= MAX_COST]
    seeds = (0, 1, 2)
    if args.jobs:
        jobs = [(n, t, r, int(s), CANDIDATES[n]) for n, t, r, s in (j.split("/") for j in args.jobs)]
        run_jobs(jobs, args.workers, results, args.device, cache, args.quick, t0 + args.budget)
        text = f"# GPU jobs ({args.device}, {args.workers} workers, {time.time() - t0:.0f} s)\n\n" + summarise(results)
        (args.out / "sweep.md").write_text(text + "\n")
        print(text)
        return 0
    # phase 1: seed-major so every recipe has >= 1 seed early; meanpool once as the order-blind reference
    jobs = [(n, "motion", "stan-self", s, CANDIDATES[n]) for s in seeds for n in names]
    jobs.insert(0, ("base300", "motion", "meanpool", 0, {}))
    run_jobs(jobs, args.workers, results, args.device, cache, args.quick, t0 + args.budget * args.phase1_share)
    best = best_recipe(results, names)
    print(f"phase 1 done at {time.time() - t0:.0f} s; best recipe {best}: {CANDIDATES[best]}", flush=True)
    # phase 2: every row of every task with the best recipe (motion stan-self already done)
    from stanlib.teaching.experiments import ROWS, TASK_KINDS

    first = [(t, r) for t in ("captions", "appearance") for r in ("stan-self", "meanpool")] + [("motion", "meanpool")]
    rest = [(t, r) for t in TASK_KINDS for r in ROWS if (t, r) not in first and (t, r) != ("motion", "stan-self")]
    jobs = [(best, t, r, s, CANDIDATES[best]) for group in (first, rest) for s in seeds for t, r in group]
    run_jobs(jobs, args.workers, results, args.device, cache, args.quick, t0 + args.budget)
    summary = summarise(results)
    text = (f"# GPU recipe sweep ({args.device}, {args.workers} workers, {time.time() - t0:.0f} s)\n\n"
            f"best motion recipe: **{best}** {json.dumps(CANDIDATES[best])}\n\n"
            "motion per pair: left/right / up/down / grow/shrink / rotate / fade\n\n" + summary + "\n")
    (args.out / "sweep.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
