"""Captions recipe sweep (docs/experiments.md 2.7): many (recipe variant, seed) full-size
captions runs in parallel worker processes, on a GPU or the CPU; one JSON line per finished run.

    python tools/sweep_captions.py --device cuda --workers 8 --seeds 0 1 2 --deadline 450 \\
        --out runs/sweep_cap.jsonl base "steps=600" "steps=600 same_appearance=2" "row=meanpool"

A variant is space-separated Recipe fields (KEY=VALUE, :func:`stanlib.teaching.experiments.recipe_overrides`)
plus an optional ``row=`` (default stan-self), applied to the first tiny CLIP's recipe (``Recipe()`` with
``FIRST_CLIP``: batch 16, branch lr x10, verb negatives and anchors), with which the sweep was measured; ``base`` is
that recipe itself. The captions default is "batch_size=32 lr_mult=3"
(``TASK_RECIPES``, found with this tool). Jobs start seed by
seed, variant by variant in the order given; none starts after ``--deadline`` seconds (running ones
finish). GPU numbers differ from CPU ones in the last digits of every step, so a variant found here
is confirmed on the CPU with `stanlib experiments run` before it goes into a table.
"""
import argparse
import json
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict
from multiprocessing import get_context

import numpy as np


def parse_variant(variant: str):
    """``"row=meanpool steps=600"`` -> ("meanpool", the first-clip recipe with steps=600);
    ``"base"`` -> ("stan-self", that recipe)."""
    import stanlib.teaching.experiments as E

    words = [] if variant == "base" else variant.split()
    row = next((w.split("=", 1)[1] for w in words if w.startswith("row=")), "stan-self")
    if row not in E.ROWS:
        raise ValueError(f"variant {variant!r}: unknown row {row!r}; expected one of {list(E.ROWS)}")
    base = E.Recipe(**E.FIRST_CLIP)
    return row, E.recipe_overrides(base, " ".join(w for w in words if not w.startswith("row=")))


def run_job(variant: str, seed: int, device: str) -> dict:
    import torch

    import stanlib.teaching.experiments as E

    torch.set_num_threads(1)
    row, recipe = parse_variant(variant)
    data = E.load_task("captions", recipe.n_train, recipe.n_test, recipe.data_seed, recipe.num_frames, progress=False)
    torch.manual_seed(seed)
    model = E.build_model(row, recipe).to(device)
    t0 = time.time()
    record = E.train_model(model, data, recipe, seed, progress=False) if E.ROWS[row][2] else {"loss": [], "seconds": 0}
    m = E.evaluate_model(model, data, recipe)
    loss = record["loss"]
    return {"variant": variant, "row": row, "seed": seed, "R@1": m["t2v"]["R@1"], "R@5": m["t2v"]["R@5"],
            "twin": m["twin"], "r1_or_twin": m["r1_or_twin"], "top1_errors": m.get("top1_errors"),
            "per_pair_twin": {k: v["twin"] for k, v in m["per_pair"].items()},
            "loss_last50": float(np.mean(loss[-50:])) if loss else None,
            "loss_prev50": float(np.mean(loss[-100:-50])) if len(loss) >= 100 else None,
            "train_seconds": record["seconds"], "seconds": round(time.time() - t0, 1), "device": device,
            "recipe_key": recipe.key("captions"), "recipe": asdict(recipe)}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--deadline", type=float, default=float("inf"), help="seconds after which no job starts")
    ap.add_argument("--out", default="runs/sweep_captions.jsonl")
    args = ap.parse_args(argv)
    for v in args.variants:   # fail on a typo before any worker starts
        parse_variant(v)
    jobs = [(v, s) for s in args.seeds for v in args.variants]
    t0 = time.time()
    done = 0
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool, open(args.out, "a") as out:
        running = {}
        while jobs or running:
            while jobs and len(running) < args.workers and time.time() - t0 < args.deadline:
                v, s = jobs.pop(0)
                running[pool.submit(run_job, v, s, args.device)] = (v, s)
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                v, s = running.pop(fut)
                try:
                    res = fut.result()
                except Exception as err:  # keep the sweep going; the line says what failed
                    res = {"variant": v, "seed": s, "error": repr(err)}
                out.write(json.dumps(res) + "\n")
                out.flush()
                done += 1
                short = {k: round(res[k], 1) for k in ("R@1", "twin", "r1_or_twin") if k in res}
                print(f"[{time.time() - t0:5.0f} s] {v!r} seed {s}: {short or res.get('error')} "
                      f"errors {res.get('top1_errors')} ({res.get('seconds')} s)", flush=True)
    print(f"{done} runs, {len(jobs)} not started (deadline), {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
