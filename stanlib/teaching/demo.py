"""``stanlib demo``: the project's main job, on a laptop CPU in minutes, offline.

Mean pooling vs STAN-self on the synthetic motion task (SSv2-like: 10 classes in 5 time-reversed
pairs), both fine-tuned from the bundled tiny CLIP. Mean pooling averages the frame embeddings, so
a clip and its exact time reversal get the same embedding: on reversed pairs its direction
accuracy is exactly 50%. STAN's branch sees the frames in order (time embedding + temporal
attention) and learns the direction.

Prints a table (overall and per pair) and its wall time; writes to ``runs/demo/``:
``curves.png`` (loss and test accuracy while training), ``confusion.png`` (both models),
``attention_clip_vs_stan.png`` / ``attention_temporal.png`` (one test clip: CLIP's per-frame
attention vs the STAN branch's temporal attention) and ``results.json``.

``stanlib demo --tour`` prints the model tour instead (architecture, parameters, paper FLOPs).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from stanlib import assets
from stanlib.teaching.experiments import (Recipe, TaskData, build_model, load_task, resolve_head, summary,
                                          task_recipe, train_model)

# The demo recipe: the experiments' recipe (K=4, CLIP fine-tuned at 5e-4, branch at 5e-3, twin
# batches of 16 clips x 8 frames) with fewer steps, sized for <= 5 minutes on 2 free CPU cores
# (see docs/experiments.md), and the paper's method: `stan-tiny-v2` (a tiny CLIP that learnt the
# motion words from still pictures) with the frozen class-name text head. Mean pooling's direction
# accuracy is 50% however long it trains, so it gets only enough steps to learn which pair a clip
# belongs to.
DEMO_STAN = replace(task_recipe("motion"), steps=240, n_train=400, n_test=100)   # the default, smaller
DEMO_MEANPOOL = replace(DEMO_STAN, steps=20)
QUICK_STEPS = 2


def model_tour() -> None:
    import stanlib
    from stanlib.model.flops import format_table, paper_table

    torch.manual_seed(0)
    model = stanlib.create_model("stan-tiny", temporal="attn", depth=2).eval()
    frames = torch.randn(2, 8, 3, model.image_size, model.image_size)
    print("== STAN on the tiny teaching CLIP (random init) ==")
    print(f"config: clip={model.config.clip} temporal={model.config.temporal} depth K={model.config.depth}")
    print(f"frames {tuple(frames.shape)} -> video embedding {tuple(model.encode_video(frames).shape)}")
    for name, n in model.num_params().items():
        print(f"  params {name:<12} {n / 1e6:8.2f} M")
    print("\n== Per-view cost of the paper's models (computed on the meta device) ==")
    print(format_table(paper_table()))


# --------------------------------------------------------------------------- output
def format_table(results: dict[str, dict], pair_names) -> str:
    """Plain-text table: top-1, direction, pair identification, then direction per pair."""
    head = ["model", "top-1", "direction", "pair id"] + [f"dir {n}" for n in pair_names]
    rows = [head]
    for name, m in results.items():
        rows.append([name] + [f"{m[k]:.1f}" for k in ("top1", "direction", "pair")]
                    + [f"{m['per_pair'][n]['direction']:.1f}" if n in m["per_pair"] else "-" for n in pair_names])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def plot_curves(records: dict[str, dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for name, rec in records.items():
        loss = torch.tensor(rec["loss"])
        k = max(1, min(10, len(loss)))
        smooth = torch.nn.functional.avg_pool1d(loss[None, None], k, 1)[0, 0] if len(loss) else loss
        ax_loss.plot(range(k, len(loss) + 1), smooth.tolist(), label=name)
        if rec["eval"]:
            steps = [s for s, _ in rec["eval"]]
            ax_acc.plot(steps, [m["direction"] for _, m in rec["eval"]], marker="o", label=f"{name}: direction")
            ax_acc.plot(steps, [m["top1"] for _, m in rec["eval"]], ls="--", marker=".", label=f"{name}: top-1")
    ax_loss.set(title="training loss (10-step mean)", xlabel="step")
    ax_acc.axhline(50, color="gray", lw=0.8, ls=":")
    ax_acc.set(title="held-out accuracy (%)", xlabel="step", ylim=(0, 100))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)


def plot_confusions(preds: dict[str, list[int]], data: TaskData, path: Path) -> None:
    from matplotlib.figure import Figure

    from stanlib.engine.evaluate import confusion_matrix

    short = [c.replace("Something ", "") for c in data.classes]
    fig = Figure(figsize=(5.2 * len(preds), 5.0), layout="constrained")
    axes = fig.subplots(1, len(preds), squeeze=False)[0]
    for ax, (name, p) in zip(axes, preds.items()):
        cm = confusion_matrix(torch.tensor(p), data.test_labels, len(data.classes)).double()
        cm = cm / cm.sum(dim=1, keepdim=True).clamp(min=1)
        ax.imshow(cm.numpy(), cmap="Blues", vmin=0, vmax=1)
        n = len(short)
        ax.set_xticks(range(n), short, rotation=90, fontsize=7)
        ax.set_yticks(range(n), short, fontsize=7)
        ax.set(xlabel="predicted", ylabel="true", title=f"{name} (rows: recall)")
    fig.savefig(path, dpi=110)


def busiest_patch(clip: torch.Tensor, patch: int = 8) -> tuple[int, int]:
    """(row, col) of the patch whose pixels change most over time in a uint8 clip (T, H, W, 3)."""
    x = clip.float().mean(dim=-1)                                    # (T, H, W) brightness
    t, h, w = x.shape
    cells = x.view(t, h // patch, patch, w // patch, patch).mean(dim=(2, 4))
    change = cells.std(dim=0)                                        # (h/patch, w/patch)
    row, col = divmod(int(change.argmax()), change.shape[1])
    return row, col


def write_attention(model, data: TaskData, out: Path, index: int = 0) -> list[Path]:
    """CLIP's per-frame attention vs the STAN branch's temporal attention, for one test clip."""
    from stanlib.teaching.tiny import to_model_input
    from stanlib.viz import capture_attention, plot_clip_vs_stan, plot_temporal_matrices, save_figure

    frames = to_model_input(data.test_frames[index:index + 1])
    with torch.no_grad(), capture_attention(model) as att:
        model.encode_video(frames)
    title = data.classes[int(data.test_labels[index])]
    fig = plot_clip_vs_stan(frames[0], att)
    fig.suptitle(f"'{title}': CLIP per-frame CLS attention (top) vs STAN video CLS (bottom)", fontsize=10)
    paths = [save_figure(fig, out / "attention_clip_vs_stan.png")]
    # the mean over all 64 patch positions is dominated by static background: show the patch the
    # object moves through instead
    patch = busiest_patch(data.test_frames[index], model.clip.visual.patch_size[0])
    fig = plot_temporal_matrices(att, patch=patch)
    fig.suptitle(f"'{title}': STAN temporal attention at patch {patch} (query frame -> key frame)", fontsize=10)
    paths.append(save_figure(fig, out / "attention_temporal.png"))
    return paths


# --------------------------------------------------------------------------- the demo
def run_demo(out: str | Path = "runs/demo", stan: Recipe = DEMO_STAN, meanpool: Recipe = DEMO_MEANPOOL,
             seed: int = 0, progress: bool = True, eval_points: int = 3) -> dict:
    """Train mean pooling and STAN-self on the motion task; write figures; return the results."""
    t0, cpu0 = time.time(), time.process_time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_task("motion", stan.n_train, stan.n_test, stan.data_seed, stan.num_frames, progress=progress)
    print(f"motion task: {len(data.train_labels)} training clips, {len(data.test_labels)} held-out clips "
          f"({len(data.test_labels) // 2} reversed pairs), {stan.num_frames} frames of 64 px "
          f"(rendered in {time.time() - t0:.0f} s)", flush=True)
    results, records, preds, models = {}, {}, {}, {}
    for name, row, recipe in (("mean pooling", "meanpool", meanpool), ("STAN-self", "stan-self", stan)):
        torch.manual_seed(seed)
        model = build_model(row, recipe)
        what = "CLIP frozen, branch trained" if recipe.freeze_clip else "CLIP fine-tuned"
        print(f"training {name} ({recipe.clip}, {what}, {resolve_head(recipe, 'motion')} head, {recipe.steps} steps "
              f"of {recipe.batch_size} clips)...", flush=True)
        every = max(1, math.ceil(recipe.steps / eval_points))  # the last evaluation is the final one
        records[name] = train_model(model, data, recipe, seed, progress=progress, desc=name, eval_every=every)
        metrics = dict(records[name]["eval"][-1][1])  # the evaluation after the last step
        preds[name] = metrics.pop("preds")
        results[name] = metrics
        models[name] = model
    print(f"\nheld-out accuracy (%), {len(data.test_labels)} clips; direction = own class scored above its "
          "time-reversed partner")
    print(format_table(results, data.pair_names))
    plot_curves(records, out / "curves.png")
    plot_confusions(preds, data, out / "confusion.png")
    files = [out / "curves.png", out / "confusion.png"] + write_attention(models["STAN-self"], data, out)
    wall, cpu = time.time() - t0, time.process_time() - cpu0
    stan_model = models["STAN-self"]
    stan_model.config.extra = {"trained_by": f"stanlib demo --seed {seed}",
                               "task": "synthetic motion (stanlib.teaching.synth)", "recipe": asdict(stan), "head": resolve_head(stan, "motion"),
                               "held_out": summary(results["STAN-self"]), "classes": list(data.classes)}
    stan_model.save_pretrained(out / "stan_self", dtype=torch.float16)  # stanlib/assets/tiny_stan is such a model
    report = {"results": results, "wall_time_s": round(wall, 1), "cpu_time_s": round(cpu, 1), "seed": seed,
               "recipes": {"mean pooling": asdict(meanpool), "STAN-self": asdict(stan)},
               "train_seconds": {k: r["seconds"] for k, r in records.items()},
               "curves": {k: {"loss": r["loss"], "eval": [(s, summary(m)) for s, m in r["eval"]]}
                          for k, r in records.items()},
               "torch_threads": torch.get_num_threads()}
    (out / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    files.append(out / "results.json")
    print(f"\nmean pooling cannot tell a clip from its reversal: direction {results['mean pooling']['direction']:.1f}%"
          f"; STAN-self: {results['STAN-self']['direction']:.1f}%")
    print("wrote " + ", ".join(str(f) for f in files))
    print(f"demo wall time: {wall:.0f} s ({wall / 60:.1f} min); CPU time {cpu:.0f} s on "
          f"{torch.get_num_threads()} thread(s)")
    return report


def cli_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="stanlib demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--tour", action="store_true", help="print the model tour only (architecture, FLOPs)")
    ap.add_argument("--steps", type=int, default=None, help=f"STAN-self training steps (default {DEMO_STAN.steps})")
    ap.add_argument("--meanpool-steps", type=int, default=None,
                    help=f"mean pooling training steps (default {DEMO_MEANPOOL.steps})")
    ap.add_argument("--quick", action="store_true", help=f"a seconds-long smoke run ({QUICK_STEPS} steps, tiny data)")
    ap.add_argument("--batch-size", type=int, default=None, help=f"clips per step (default {DEMO_STAN.batch_size})")
    ap.add_argument("--head", choices=("task", "text", "orthogonal"), default=None,
                    help=f"recognition head (default {DEMO_STAN.head}; text: the class names' text embeddings, the "
                         "paper's head; orthogonal: fixed orthonormal class vectors)")
    ap.add_argument("--clip", choices=sorted(assets.TINY_CLIPS), default=None,
                    help=f"the bundled tiny CLIP to start from (default {DEMO_STAN.clip})")
    ap.add_argument("--pretrained", default=None, help="tiny CLIP weights file instead of the bundled ones")
    ap.add_argument("--out", default="runs/demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.tour:
        t0 = time.time()
        model_tour()
        print(f"\ntour wall time: {time.time() - t0:.1f} s")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    stan, meanpool = DEMO_STAN, DEMO_MEANPOOL
    if args.quick:
        small = dict(steps=QUICK_STEPS, n_train=16, n_test=20, batch_size=4, warmup=1)
        stan, meanpool = replace(stan, **small), replace(meanpool, **small)
    if args.steps is not None:
        stan = replace(stan, steps=args.steps)
    if args.meanpool_steps is not None:
        meanpool = replace(meanpool, steps=args.meanpool_steps)
    if args.batch_size is not None:
        stan, meanpool = replace(stan, batch_size=args.batch_size), replace(meanpool, batch_size=args.batch_size)
    for field in ("head", "clip", "pretrained"):
        if getattr(args, field) is not None:
            change = {field: getattr(args, field)}
            stan, meanpool = replace(stan, **change), replace(meanpool, **change)
    try:
        run_demo(args.out, stan, meanpool, seed=args.seed)
    except (FileNotFoundError, ValueError) as err:  # the tiny CLIP is missing or of another vocabulary
        print(f"stanlib demo: {err}")
        return 2
    return 0
