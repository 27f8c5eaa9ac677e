"""One-call GPU check: notebook 07 in its GPU profile, train-step speed/memory/MFU at real batch sizes, and
whether the video pipeline keeps up with the train step (raw vs ``stanlib data compress``-ed videos).

Usage: ``python tools/gpu_check.py --out $OUT/gpu_check.json`` (about 8 min on one H100/H200-class card;
``--dry-run``: the same code paths on a CPU with the tiny CLIP, batch 2, one step, a few videos, < 2 min).

What it does, in this order (each measurement is added to the JSON report as soon as it is made, so a
run cut short keeps what was measured; a markdown summary is written beside it at the end):

1. **data**: writes an MSR-VTT-layout dataset of generated 640x360 30 fps H.264 videos (10 s each; a
   moving square over a scrolling texture, see ``tools/bench_compress.py``) with made-up captions, and a
   copy compressed with ``stanlib data compress`` (short side 224, 3 fps: 30 frames for the recipe's
   12-frame TSN clips);
2. **train step** (eager): ViT-B/32 12 frames and ViT-B/16 8 frames (STAN-self, K=4) at batch 32, 64 and
   128, bf16 autocast, fused attention, fused AdamW, random-init weights: step time, clips/s, peak
   memory, TFLOP/s and MFU, measured by ``run_variants`` of ``benchmarks/bench.py`` (FLOPs from
   :mod:`stanlib.model.flops`); a batch that runs out of memory is retried with gradient checkpointing;
3. **input pipeline**: the training dataset (``build_dataset("msrvtt", ..., mode="pairs")``, TSN
   sampling, random resized crop to 224 px) in a DataLoader with one worker per CPU, pinned memory
   and non-blocking copies to the GPU, on raw vs compressed videos, beside the train step's clips/s;
4. **notebook**: every code cell of ``notebooks/07_colab_finetune.ipynb`` in its GPU profile, executed
   in this process (IPython magics skipped, ``display`` saves the figure), each cell's time, output
   and error recorded. The notebook file is not changed: two cells are added in memory, a parameters
   cell after the notebook's own (``PROFILE="gpu"``, the compressed data, ``STEPS``, ``BATCH``) and,
   after the imports, a wrapper that appends ``pretrained=none`` to the notebook's config overrides
   (no CLIP weights can be downloaded on such a machine: a random-init CLIP, so the metrics mean
   nothing; the pipeline is what is checked). ``--dry-run`` runs the notebook's CPU profile instead;
5. **train step with torch.compile** (inductor; ``--dry-run``: aot_eager), best eager batch first, as long
   as the time budget lasts (``--budget-s``).

On a GPU machine without a package index, carry wheels of ``av``, ``open_clip_torch``, ``ftfy`` and
``wcwidth`` in ``.whl/`` (decord is optional: without it every reader uses PyAV) and start with
``python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD``.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import gc
import io
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import types
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing can be downloaded there: fail fast
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

from bench import Setup, build_model, device_info, run_variants  # noqa: E402  (benchmarks/bench.py)
from bench_compress import cpu_model, versions, write_bench_video  # noqa: E402
from stanlib.data.compress import CompressSettings, compress_dataset  # noqa: E402
from stanlib.data.video import get_backend  # noqa: E402

NOTEBOOK = REPO / "notebooks" / "07_colab_finetune.ipynb"

# full run vs dry run: models (CLIP, frames), batches, data and timing sizes
FULL = dict(models=[("ViT-B-32", 12), ("ViT-B-16", 8)], batches=[32, 64, 128], repeats=5, warmup=2,
            train_videos=64, test_videos=16, seconds=10.0, width=640, height=360, short_side=224, image_size=224,
            notebook_steps=4, notebook_batch=32, compile_backend="inductor")
DRY = dict(models=[("stan-tiny", 4), ("stan-tiny", 2)], batches=[2], repeats=1, warmup=0,
           train_videos=4, test_videos=2, seconds=2.0, width=128, height=72, short_side=64, image_size=64,
           notebook_steps=1, notebook_batch=2, compile_backend="aot_eager")


# ------------------------------------------------------------------------------------------ the report
class Report:
    """The JSON report; rewritten (to a temporary name, then renamed) after every change."""

    def __init__(self, path: Path, start: float):
        self.path, self.start = path, start
        self.data: dict = {"complete": False}
        path.parent.mkdir(parents=True, exist_ok=True)

    def set(self, key: str, value) -> None:
        self.data[key] = value
        self.write()

    def add(self, key: str, entry: dict, line: str = "") -> None:
        self.data.setdefault(key, []).append(entry)
        self.write()
        if line:
            print(f"[{time.perf_counter() - self.start:6.0f} s] {key}: {line}", flush=True)

    def write(self) -> None:
        self.data["elapsed_s"] = round(time.perf_counter() - self.start, 1)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str) + "\n")
        os.replace(tmp, self.path)


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_info(args, device: torch.device, sizes: dict) -> dict:
    info = device_info(device)
    out = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "dry_run": args.dry_run,
           "device": info["device"], "peak_bf16_tflops": info["peak_tflops"], "cpu": cpu_model(),
           "cpus": os.cpu_count(), "versions": versions(), "video_backend": get_backend(None),
           "budget_s": args.budget_s, "sizes": {k: v for k, v in sizes.items()}}
    try:
        import open_clip

        out["versions"]["open_clip"] = open_clip.__version__
    except ImportError:
        out["versions"]["open_clip"] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        out["versions"]["cuda"] = torch.version.cuda
    return out


# ------------------------------------------------------------------------------------------ 1. data
def _write_one(job: tuple) -> str:
    path, seed, seconds, width, height = job
    write_bench_video(Path(path), seed, seconds, 30, width, height, "smooth")
    return path


def make_msrvtt(root: Path, train: int, test: int, seconds: float, width: int, height: int) -> dict:
    """An MSR-VTT-layout dataset (annotation files as the reader expects, ``videos/all/videoN.mp4``)."""
    from multiprocessing import Pool

    from tqdm import tqdm

    ids = [f"video{i}" for i in range(train + test)]
    train_ids, test_ids = ids[:train], ids[train:]
    colours = ["red", "green", "blue", "yellow", "white", "orange", "purple", "grey"]
    caption = lambda i, k: f"a {colours[(i + k) % len(colours)]} square moves to the right, take {k}"  # noqa: E731
    root.mkdir(parents=True, exist_ok=True)
    meta = {"info": {"contributor": "tools/gpu_check.py"},
            "videos": [{"video_id": v, "split": "train" if i < train else "test", "id": i} for i, v in enumerate(ids)],
            "sentences": [{"caption": caption(i, k), "video_id": v, "sen_id": 2 * i + k}
                          for i, v in enumerate(ids) for k in range(2)]}
    (root / "MSRVTT_data.json").write_text(json.dumps(meta))
    with open(root / "MSRVTT_train.9k.csv", "w", newline="") as f:
        csv.writer(f).writerows([["video_id"], *[[v] for v in train_ids]])
    with open(root / "MSRVTT_JSFUSION_test.csv", "w", newline="") as f:
        csv.writer(f).writerows([["key", "vid_key", "video_id", "sentence"],
                                 *[[f"ret{j}", f"msr{train + j}", v, caption(train + j, 0)]
                                   for j, v in enumerate(test_ids)]])
    jobs = [(str(root / "videos" / "all" / f"{v}.mp4"), i, seconds, width, height) for i, v in enumerate(ids)]
    t0 = time.perf_counter()
    with Pool(min(len(jobs), os.cpu_count() or 1)) as pool:
        for _ in tqdm(pool.imap_unordered(_write_one, jobs), total=len(jobs), desc="writing videos", unit="video"):
            pass
    size = sum(p.stat().st_size for p in (root / "videos").rglob("*.mp4"))
    return {"videos": len(ids), "train": train, "test": test, "seconds": seconds, "size": f"{width}x{height}",
            "fps": 30, "bytes": size, "write_s": round(time.perf_counter() - t0, 1)}


# ------------------------------------------------------------------------------------------ 2./5. train step
def _row(result, clip: str, compiled: bool, checkpointing: bool) -> dict:
    s = result.setup
    return {"model": clip, "frames": s.frames, "batch": s.batch, "precision": s.precision, "fused_attention": s.fused,
            "compiled": compiled, "checkpointing": checkpointing, "train_step_s": result.train,
            "train_steps_s": result.train_s, "clips_per_s": result.clips_per_s("train"),
            "tflops": result.tflops("train"), "mfu": result.mfu("train"),
            "peak_mib": result.memory.peak_mib if result.memory else None,
            "gflops_per_clip_paper": result.flops.get("gmacs"), "compile_s": result.compile_s}


def _oom(err: BaseException) -> bool:
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def train_rows(report: Report, sizes: dict, device: torch.device, models: list[tuple[str, int]],
               batches: dict[tuple[str, int], list[int]], compiled: bool, left: Callable[[], float],
               need_s: float) -> None:
    """Measure each (model, batch); add one report row each (errors and skips included)."""
    key = "train_step_compiled" if compiled else "train_step"
    for clip, frames in models:
        model = None
        for batch in batches[(clip, frames)]:
            label = f"{clip} {frames} frames batch {batch}" + (" compiled" if compiled else "")
            if left() < need_s:
                report.add(key, {"model": clip, "frames": frames, "batch": batch, "compiled": compiled,
                                 "skipped": "time budget"}, f"{label}: skipped (time budget)")
                continue
            setup = Setup(clip=clip, frames=frames, batch=batch, device=str(device), amp="bf16", fused=True,
                          compile=compiled, compile_backend=sizes["compile_backend"])
            for checkpointing in (False, True):
                error = None
                try:
                    model = model if model is not None else build_model(setup)
                    s = replace(setup, checkpointing=checkpointing)
                    result = run_variants({label: s}, what=("train",), repeats=sizes["repeats"],
                                          warmup=sizes["warmup"], memory=True, model=model)[0]
                    row = _row(result, clip, compiled, checkpointing)
                    report.add(key, row, f"{label}{' checkpointing' if checkpointing else ''}: "
                                         f"{row['train_step_s'] * 1000:.0f} ms, {row['clips_per_s']:.1f} clips/s, "
                                         f"MFU {'-' if row['mfu'] is None else format(row['mfu'], '.1%')}, "
                                         f"peak {row['peak_mib'] or 0:.0f} MiB")
                except Exception as err:  # one failed row must not end the check
                    error = ("out of memory" if _oom(err) else
                             "".join(traceback.format_exception_only(type(err), err)).strip()[-2000:])
                if model is not None:
                    model.zero_grad(set_to_none=True)
                free_memory(device)
                if error is None:
                    break
                report.add(key, {"model": clip, "frames": frames, "batch": batch, "compiled": compiled,
                                 "checkpointing": checkpointing, "error": error}, f"{label}: {error[:200]}")
                if error != "out of memory" or compiled:
                    break  # only running out of memory is worth a retry (with checkpointing)
        del model
        free_memory(device)


# ------------------------------------------------------------------------------------------ 3. input pipeline
def input_rate(root: Path, clip: str, frames: int, batch: int, workers: int, image_size: int,
               device: torch.device, normalise_in_workers: bool = True) -> dict:
    """Training clips per second from the DataLoader, copied to ``device`` as the Trainer does (uint8 frames,
    ``normalise_in_workers=False``, are normalised on the device after the copy)."""
    from torch.utils.data import DataLoader, RandomSampler

    from stanlib.data import build_dataset, collate, frames_to_device

    ds = build_dataset("msrvtt", root, "train", tokenizer=clip, context_length=32, num_frames=frames,
                       image_size=image_size, mode="pairs", train=True, normalise=normalise_in_workers)
    warm = max(1, workers)  # the first round of batches includes the workers' start-up
    timed = 3 * max(1, workers)
    sampler = RandomSampler(ds, replacement=True, num_samples=(warm + timed) * batch,
                            generator=torch.Generator().manual_seed(0))
    loader = DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers, collate_fn=collate,
                        pin_memory=device.type == "cuda", drop_last=True)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    clips, start, cpu_start = 0, time.perf_counter(), time.process_time()
    for i, b in enumerate(loader):
        frames_to_device(b["frames"], device)
        if i == warm - 1:
            sync()
            start, cpu_start = time.perf_counter(), time.process_time()
        elif i >= warm:
            clips += b["size"]
    sync()
    wall = time.perf_counter() - start
    return {"clips_per_s": clips / wall, "clips_timed": clips, "seconds": round(wall, 2),
            "main_process_cpu_s": round(time.process_time() - cpu_start, 2)}


def input_rows(report: Report, sizes: dict, device: torch.device, roots: dict[str, Path], workers: int,
               left: Callable[[], float], need_s: float) -> None:
    """Each model x videos (raw, compressed) x where the frames are normalised (workers: float32 frames leave
    the DataLoader; device: uint8 frames are copied and normalised on the GPU, ``Config.normalise_on``)."""
    for clip, frames in sizes["models"]:
        for name, root in roots.items():
            for normalise_on in ("workers", "device"):
                label = f"{name} videos, {frames} frames, {workers} workers, normalised on the {normalise_on}"
                if left() < need_s:
                    report.add("input_pipeline", {"videos": name, "frames": frames, "normalise_on": normalise_on,
                                                  "skipped": "time budget"}, f"{label}: skipped (time budget)")
                    continue
                try:
                    rate = input_rate(root, clip, frames, sizes["batches"][0], workers, sizes["image_size"], device,
                                      normalise_in_workers=normalise_on == "workers")
                    row = {"videos": name, "model": clip, "frames": frames, "batch": sizes["batches"][0],
                           "workers": workers, "normalise_on": normalise_on, **rate}
                    report.add("input_pipeline", row, f"{label}: {rate['clips_per_s']:.1f} clips/s")
                except Exception as err:
                    report.add("input_pipeline", {"videos": name, "frames": frames, "normalise_on": normalise_on,
                                                  "error": repr(err)[-2000:]}, f"{label}: {err!r}"[:300])


# ------------------------------------------------------------------------------------------ 4. the notebook
def notebook_cells(params: dict, overrides: list[str]) -> list[tuple[str, str]]:
    """(label, source) of every code cell of notebook 07, with the parameters and overrides cells added."""
    nb = json.loads(NOTEBOOK.read_text())
    cells: list[tuple[str, str]] = []
    placed = {"parameters": False, "overrides": False}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        cells.append((f"cell {i}", source))
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            lines = ["# added by tools/gpu_check.py: parameters of this check"]
            lines += [f"{k} = {v!r}" for k, v in params.items()]
            cells.append(("added: parameters", "\n".join(lines)))
            placed["parameters"] = True
        elif "apply_overrides" in source and "import" in source and not placed["overrides"]:
            cells.append(("added: overrides", "\n".join([
                "# added by tools/gpu_check.py: extra config overrides (no CLIP weights can be downloaded here)",
                "_notebook_apply_overrides = apply_overrides",
                "def apply_overrides(config, overrides):",
                f"    return _notebook_apply_overrides(config, [*overrides, *{overrides!r}])"])))
            placed["overrides"] = True
    missing = [k for k, v in placed.items() if not v]
    if missing:
        raise RuntimeError(f"{NOTEBOOK.name}: found no place for the {' and '.join(missing)} cell (expected a cell "
                           "tagged 'parameters' and a cell importing apply_overrides); update tools/gpu_check.py")
    return cells


class _Tee(io.TextIOBase):
    """Writes to the real stdout and keeps the text (the cell's output)."""

    def __init__(self, stream):
        self.stream, self.parts = stream, []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def text(self) -> str:
        return "".join(self.parts)


@contextlib.contextmanager
def _display_to_files(folder: Path):
    """``IPython.display`` stand-in while the cells run: ``display(fig)`` saves the figure, then closes it."""
    import matplotlib.pyplot as plt

    count = [0]

    def display(*objects, **_):
        for obj in objects:
            if hasattr(obj, "savefig"):
                count[0] += 1
                obj.savefig(folder / f"figure_{count[0]:02d}.png", dpi=60)
                plt.close(obj)

    stub = types.ModuleType("IPython.display")
    stub.display, stub.clear_output = display, lambda *a, **k: None
    saved = {name: sys.modules.get(name) for name in ("IPython", "IPython.display")}
    if saved["IPython"] is None:
        try:
            import IPython  # noqa: F401
        except ImportError:  # a bare stand-in; matplotlib reads its version_info (>= 8.24: nothing to patch)
            sys.modules["IPython"] = types.ModuleType("IPython")
            sys.modules["IPython"].version_info = (8, 24)
    sys.modules["IPython.display"] = stub
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        plt.close("all")


def run_notebook(report: Report, params: dict, overrides: list[str], folder: Path) -> None:
    """Execute the notebook's code cells in order in one namespace; stop at the first error (as Run all does)."""
    cells = notebook_cells(params, overrides)
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"notebook": str(NOTEBOOK.relative_to(REPO)), "profile": params.get("PROFILE"), "parameters": params,
             "overrides": overrides, "cells": [], "ran_end_to_end": False}
    report.set("notebook", entry)
    namespace: dict = {"__name__": "__main__"}
    cwd, start = Path.cwd(), time.perf_counter()
    os.chdir(folder)
    failed = False
    try:
        with _display_to_files(folder):
            for label, source in cells:
                if failed:
                    entry["cells"].append({"cell": label, "status": "not run"})
                    continue
                # IPython magics and shell lines (%matplotlib, %pip, !cmd) become `pass`, keeping any block valid
                magic = lambda ln: ln.lstrip().startswith(("%", "!"))  # noqa: E731
                kept = [ln[:len(ln) - len(ln.lstrip())] + "pass" if magic(ln) else ln for ln in source.splitlines()]
                dropped = [ln.strip() for ln in source.splitlines() if magic(ln)]
                tee = _Tee(sys.stdout)
                t0 = time.perf_counter()
                status, error = "ok", None
                try:
                    with contextlib.redirect_stdout(tee):
                        exec(compile("\n".join(kept), f"<{NOTEBOOK.name} {label}>", "exec"), namespace)
                except BaseException as err:  # noqa: BLE001 - the report keeps any failure, Ctrl-C included
                    status, error, failed = "error", traceback.format_exc()[-3000:], True
                    if isinstance(err, KeyboardInterrupt):
                        raise
                finally:
                    seconds = time.perf_counter() - t0
                    row = {"cell": label, "status": status, "seconds": round(seconds, 2),
                           "first_line": source.strip().splitlines()[0][:100] if source.strip() else "",
                           "output_tail": tee.text()[-1500:]}
                    if dropped:
                        row["left_out"] = dropped
                    if error:
                        row["error"] = error
                    entry["cells"].append(row)
                    entry["total_s"] = round(time.perf_counter() - start, 1)
                    report.set("notebook", entry)
                    print(f"[{time.perf_counter() - report.start:6.0f} s] notebook {label}: {status} "
                          f"{seconds:.1f} s", flush=True)
    finally:
        os.chdir(cwd)
        namespace.clear()
    entry["ran_end_to_end"] = not failed
    report.set("notebook", entry)


# ------------------------------------------------------------------------------------------ summary
def summarise(data: dict) -> dict:
    """The headline numbers: the notebook, the best MFU per model, input vs train clips/s."""
    rows = [r for r in data.get("train_step", []) + data.get("train_step_compiled", []) if r.get("clips_per_s")]
    best: dict = {}
    for r in rows:
        k = f"{r['model']} {r['frames']} frames"
        if k not in best or (r.get("mfu") or r["clips_per_s"]) > (best[k].get("mfu") or best[k]["clips_per_s"]):
            best[k] = r
    out: dict = {"notebook_ran_end_to_end": data.get("notebook", {}).get("ran_end_to_end"),
                 "best_train": {k: {x: r.get(x) for x in ("batch", "compiled", "checkpointing", "clips_per_s", "mfu",
                                                             "peak_mib")} for k, r in best.items()},
                 "input_vs_train": []}
    for inp in data.get("input_pipeline", []):
        if not inp.get("clips_per_s"):
            continue
        train = best.get(f"{inp['model']} {inp['frames']} frames")
        if train:
            ratio = inp["clips_per_s"] / train["clips_per_s"]
            out["input_vs_train"].append({
                "videos": inp["videos"], "normalise_on": inp.get("normalise_on", "workers"),
                "model": inp["model"], "frames": inp["frames"],
                "input_clips_per_s": inp["clips_per_s"], "train_clips_per_s": train["clips_per_s"],
                "input_over_train": ratio,
                "verdict": "input-bound" if ratio < 1 else "the input keeps up"})
    return out


def markdown(data: dict) -> str:
    info = data.get("info", {})
    lines = [f"# GPU check: {info.get('device')}", "",
             f"{info.get('date')}; torch {info.get('versions', {}).get('torch')}, CUDA "
             f"{info.get('versions', {}).get('cuda')}; {info.get('cpus')} CPUs ({info.get('cpu')}); video backend "
             f"{info.get('video_backend')}; {'dry run (CPU, tiny sizes)' if info.get('dry_run') else 'full run'}; "
             f"{data.get('elapsed_s')} s", ""]
    nb = data.get("notebook")
    if nb:
        lines += [f"## notebook {nb['notebook']} (profile {nb['profile']}): "
                  f"{'ran end to end' if nb['ran_end_to_end'] else 'FAILED'} in {nb.get('total_s')} s", "",
                  "| cell | status | s | first line |", "|---|---|---|---|"]
        lines += [f"| {c['cell']} | {c['status']} | {c.get('seconds', '')} | `{c.get('first_line', '')}` |"
                  for c in nb["cells"]]
        lines.append("")
    for key in ("train_step", "train_step_compiled"):
        if data.get(key):
            lines += [f"## {key.replace('_', ' ')}", "",
                      "| model | frames | batch | checkpointing | step ms | clips/s | TFLOP/s | MFU | peak MiB | compile s |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for r in data[key]:
                if "clips_per_s" not in r:
                    lines.append(f"| {r['model']} | {r['frames']} | {r['batch']} | {r.get('checkpointing', '')} | "
                                 f"{r.get('error') or r.get('skipped')} | | | | | |")
                    continue
                fmt = lambda x, spec: "-" if x is None else format(x, spec)  # noqa: E731
                lines.append(f"| {r['model']} | {r['frames']} | {r['batch']} | {r['checkpointing']} | "
                             f"{r['train_step_s'] * 1000:.0f} | {r['clips_per_s']:.1f} | {fmt(r['tflops'], '.1f')} | "
                             f"{fmt(r['mfu'], '.1%')} | {fmt(r['peak_mib'], '.0f')} | {fmt(r['compile_s'], '.0f')} |")
            lines.append("")
    summary = data.get("summary", {})
    if summary.get("input_vs_train"):
        lines += ["## input pipeline vs train step", "",
                  "| videos | normalised on | model | frames | input clips/s | train clips/s (best) | input / train "
                  "| |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['videos']} | {r.get('normalise_on', 'workers')} | {r['model']} | {r['frames']} | "
                  f"{r['input_clips_per_s']:.1f} | {r['train_clips_per_s']:.1f} | {r['input_over_train']:.2f} | "
                  f"{r['verdict']} |" for r in summary["input_vs_train"]]
        lines.append("")
    if data.get("data"):
        lines += ["## data", "", "```", json.dumps(data["data"], indent=1), "```", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ main
def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="the JSON report (default gpu_check.json)")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny CLIP, batch 2, one step, a few videos")
    ap.add_argument("--budget-s", type=float, default=480, help="stop starting measurements after this (default 480)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "stanlib_gpu_check",
                    help="scratch folder for the videos and the notebook's files (default: in the temp folder)")
    ap.add_argument("--only", nargs="+", default=["train", "input", "notebook", "compile"],
                    choices=["train", "input", "notebook", "compile"], help="parts to run (default: all)")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: one per CPU)")
    args = ap.parse_args(argv)

    start = time.perf_counter()
    left = lambda: args.budget_s - (time.perf_counter() - start)  # noqa: E731
    sizes = dict(DRY if args.dry_run else FULL)
    device = torch.device("cpu" if args.dry_run else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible; run with --dry-run to rehearse on a CPU", file=sys.stderr)
        return 2
    if args.dry_run:
        torch.set_num_threads(1)
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    work = args.work / ("dry_run" if args.dry_run else "full")
    for name in ("msrvtt_raw", "msrvtt_224_3fps", "notebook"):  # this tool's own scratch folders: start clean
        shutil.rmtree(work / name, ignore_errors=True)
    report = Report(args.out, start)
    report.set("info", run_info(args, device, sizes))
    print(f"gpu_check: {report.data['info']['device']}; report {args.out}", flush=True)
    # a (nearly) full estimate per measurement: a row is started only if this much time is left
    need = {"train": 0 if args.dry_run else 25, "input": 0 if args.dry_run else 20,
            "notebook": 0 if args.dry_run else 100, "compile": 0 if args.dry_run else 120}

    # 1. data
    raw, small = work / "msrvtt_raw", work / "msrvtt_224_3fps"
    data = {"raw": make_msrvtt(raw, sizes["train_videos"], sizes["test_videos"], sizes["seconds"], sizes["width"],
                               sizes["height"])}
    report.set("data", data)
    t0 = time.perf_counter()
    compressed = compress_dataset(raw, small, CompressSettings(fps=3, short_side=sizes["short_side"]),
                                  workers=workers, overwrite=True)
    data["compressed"] = {"fps": 3, "short_side": sizes["short_side"], "bytes": compressed.out_bytes,
                          "bad": compressed.bad, "compress_s": round(time.perf_counter() - t0, 1), "workers": workers}
    report.set("data", data)
    print(f"[{time.perf_counter() - start:6.0f} s] data: {data}", flush=True)

    # 2. train step, eager
    batches = {m: list(sizes["batches"]) for m in sizes["models"]}
    if "train" in args.only:
        train_rows(report, sizes, device, sizes["models"], batches, compiled=False, left=left, need_s=need["train"])
    # 3. input pipeline
    if "input" in args.only:
        input_rows(report, sizes, device, {"raw": raw, "compressed": small}, workers, left, need["input"])
    # 4. the notebook
    if "notebook" in args.only:
        if left() < need["notebook"]:
            report.set("notebook", {"skipped": "time budget"})
        else:
            params = {"PROFILE": "cpu" if args.dry_run else "gpu", "DATA_ROOT": str(small), "DATASET": "msrvtt",
                      "STEPS": sizes["notebook_steps"], "BATCH": sizes["notebook_batch"]}
            try:
                run_notebook(report, params, ["pretrained=none"], work / "notebook")
            except RuntimeError as err:  # the notebook changed shape: say so in the report
                report.set("notebook", {"error": str(err), "ran_end_to_end": False})
            free_memory(device)
    # 5. torch.compile, the best eager batch of each model first
    if "compile" in args.only:
        eager = {(r["model"], r["frames"]): r for r in sorted(report.data.get("train_step", []),
                                                              key=lambda r: r.get("clips_per_s") or 0)
                 if r.get("clips_per_s") and not r.get("checkpointing")}
        order = {m: sorted(sizes["batches"], key=lambda b: b != eager[m]["batch"]) if m in eager else sizes["batches"]
                 for m in sizes["models"]}
        models = sorted(sizes["models"], key=lambda m: m[0] != "ViT-B-16")  # B/16 first: its MFU is the headline
        train_rows(report, sizes, device, models, order, compiled=True, left=left, need_s=need["compile"])

    report.data["summary"] = summarise(report.data)
    report.data["complete"] = True
    report.write()
    text = markdown(report.data)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
