"""Evaluating a training checkpoint: ``stanlib eval``.

::

    stanlib eval --checkpoint runs/msrvtt-b32/best.pt                  # the run's test split
    stanlib eval --checkpoint runs/msrvtt-b32/best.pt --dsl --qb-norm  # + transductive rows (marked *)
    stanlib eval --checkpoint runs/k400-b16/best.pt --confusion cm.png
    stanlib eval --checkpoint runs/tiny-motion/best.pt --scores scores.csv   # per-clip scores

Recognition on a dataset with time-reversal partners also prints direction accuracy, overall and
per class pair (:func:`stanlib.engine.evaluate.direction_metrics_from_twins`), and says which partner it
used: exact reversal clips (a ``twin`` column, ``twins.csv``, the synthetic sets' ``synth_meta.json``:
:func:`stanlib.data.datasets.read_twins`) or reversal classes (class names that are each other's
reversal, such as SSv2's ``Pushing something from left to right`` / ``... from right to left``:
:func:`stanlib.data.datasets.reversal_class_pairs`). A clip with a twin clip is measured against it.

:func:`load_trained` rebuilds the model (and the recognition head) from a checkpoint written by
:mod:`stanlib.engine.trainer`; the metrics and re-ranking are those of :mod:`stanlib.engine.evaluate`. This sits
above both: the trainer uses the evaluation functions, and this command uses the trainer's
checkpoint format and dataset builder.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import torch

from stanlib.engine.distributed import init_distributed
from stanlib.engine.evaluate import (
    average_views,
    confusion_matrix,
    dataset_direction,
    evaluate_recognition,
    evaluate_retrieval,
    flatten_rows,
    format_rows,
    plot_confusion_matrix,
    twin_scores,
)
from stanlib.engine.losses import RecognitionHead
from stanlib.engine.presets import Config, apply_overrides
from stanlib.engine.trainer import CheckpointError, amp_settings, build_datasets, load_checkpoint
from stanlib.model import STANConfig, STANModel


def load_trained(checkpoint: str, device="cpu"):
    """``(model, head or None, config, ckpt)`` rebuilt from a stanlib training checkpoint."""
    ckpt = load_checkpoint(checkpoint)
    config = Config.from_dict(ckpt["config"])
    model = STANModel(STANConfig(**{**ckpt["model_config"], "pretrained": None}))  # weights come from ckpt
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise CheckpointError(f"{checkpoint}: weights do not fit the saved model config: {err}") from err
    head = None
    if ckpt.get("head") is not None:
        emb = ckpt["head"]["class_embeddings"]
        head = RecognitionHead(emb, scale=config.model.logit_scale, linear=config.head == "linear")
        head.load_state_dict(ckpt["head"])
        head.to(device)
    return model.to(device).eval(), head, config, ckpt


def cli_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="stanlib eval", description="Evaluate a checkpoint written by `stanlib train` on its test split.")
    parser.add_argument("--checkpoint", required=True, help="last.pt or best.pt of a run")
    parser.add_argument("--data-root", help="dataset folder (default: the one the run trained on)")
    parser.add_argument("--split", help="split to evaluate (default: the run's val_split)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set test_views=3 --set num_workers=0")
    parser.add_argument("--dsl", action="store_true", help="add transductive DSL rows (retrieval)")
    parser.add_argument("--qb-norm", action="store_true",
                        help="add a transductive QB-Norm row with the training captions as query bank")
    parser.add_argument("--qb-beta", type=float, default=20.0)
    parser.add_argument("--qb-k", type=int, default=1)
    parser.add_argument("--batch-size", type=int, help="clips per forward pass")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="write the metrics to this JSON file")
    parser.add_argument("--confusion", help="recognition: save the confusion matrix figure here")
    parser.add_argument("--scores", help="recognition: write per-clip scores here (.json, else CSV): video, label, "
                                         "predicted, own score, twin video, twin class, twin score")
    args = parser.parse_args(argv)
    for output in (args.json, args.confusion, args.scores):  # create output folders now, not after evaluating
        if output:
            try:
                Path(output).parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                print(f"stanlib eval: cannot create the folder of {output}: {err}", file=sys.stderr)
                return 2

    info = init_distributed()
    device = torch.device(args.device if args.device != "auto" else
                          (f"cuda:{info.local_rank}" if torch.cuda.is_available() else "cpu"))
    try:
        model, head, config, ckpt = load_trained(args.checkpoint, device)
        overrides = list(args.overrides) + ([f"data_root={args.data_root}"] if args.data_root else []) + \
            ([f"val_split={args.split}"] if args.split else [])
        config = apply_overrides(config, overrides)
        splits = ("val", "train") if args.qb_norm and config.task == "retrieval" else ("val",)
        if args.scores and config.task != "recognition":
            raise ValueError(f"--scores {args.scores}: per-clip class scores need a recognition checkpoint; "
                             f"{args.checkpoint} is {config.task}")
        data = build_datasets(config, model, splits)
    except (CheckpointError, FileNotFoundError, KeyError, ValueError) as err:
        print(f"stanlib eval: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 1
    try:
        return _run_eval(args, config, model, head, ckpt, data, device, info.rank == 0)
    except RuntimeError as err:  # e.g. VideoDecodeError: a test video is missing or unreadable
        if type(err).__name__ != "VideoDecodeError":
            raise
        print(f"stanlib eval: {err}. Evaluation needs every test video: run `stanlib data check`.",
              file=sys.stderr)
        return 1


def _run_eval(args, config, model, head, ckpt, data, device, main: bool) -> int:
    amp_dtype, _ = amp_settings(device, config.amp)
    batch_size = args.batch_size or config.eval_batch_size or max(1, config.batch_size // config.grad_accum)
    common = dict(batch_size=batch_size, device=device, num_workers=config.num_workers, amp_dtype=amp_dtype)
    direction = None  # recognition with twin clips or reversal classes: dataset_direction
    if config.task == "retrieval":
        bank = data["train"].tokens() if args.qb_norm else None
        rows, _ = evaluate_retrieval(model, data["val"], use_dsl=args.dsl, bank_tokens=bank,
                                     qb_beta=args.qb_beta, qb_k=args.qb_k, **common)
        metrics = flatten_rows(rows)
        if main:
            print(f"{config.name}: {len(data['val'])} videos, {len(data['val'].captions)} captions "
                  f"({config.val_split})")
            print(format_rows(rows))
            if any(r["transductive"] for r in rows):
                print("* transductive re-ranking (uses test-set / query-bank statistics): report separately")
    else:
        metrics, logits = evaluate_recognition(model, data["val"], head, **common)
        if main:
            ds = data["val"]
            print(f"{config.name}: {len(ds)} clips, {len(ds.classes)} classes, {ds.num_views} view(s) "
                  f"({config.val_split})")
            print("  ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
            direction = dataset_direction(logits, ds)
            if direction is not None:
                print(format_direction(direction))
            if args.scores:
                write_scores(args.scores, ds, logits)
                print(f"per-clip scores: {args.scores}")
            if args.confusion:
                preds = average_views(logits).argmax(dim=-1)
                cm = confusion_matrix(preds, torch.as_tensor(ds.labels), len(ds.classes))
                plot_confusion_matrix(cm, ds.classes, path=args.confusion)
                print(f"confusion matrix: {args.confusion}")
    saved = ckpt.get("state", {}).get("metrics") or {}
    if main and saved:
        same = all(abs(metrics.get(k, float("nan")) - v) < 1e-6 for k, v in saved.items())
        print(f"metrics stored in the checkpoint (epoch {ckpt['state'].get('epoch')}): "
              f"{'reproduced exactly' if same else 'DIFFERENT: ' + json.dumps(saved)}")
    if main and args.json:
        report = {"checkpoint": args.checkpoint, "metrics": metrics}
        if direction is not None:
            report["direction_per_pair"] = direction["per_pair"]
            report["direction_partners"] = {"exact reversal clips": direction["clip_partners"],
                                            "reversal classes": direction["class_partners"]}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def format_direction(direction: dict) -> str:
    """Overall and per-pair direction accuracy as printed by ``stanlib eval``, with the kind of partner
    the clips were measured against (``clip_partners`` / ``class_partners`` of
    :func:`stanlib.engine.evaluate.dataset_direction`; without them: twin clips)."""
    width = max(len(name) for name in direction["per_pair"])
    clips = direction.get("clip_partners", direction["n"])
    classes = direction.get("class_partners", 0)
    if not classes:
        over = f"over {direction['n']} clips with a twin (partner: exact reversal clips)"
    elif not clips:
        over = f"over {direction['n']} clips whose class has a reversal class (partner: reversal classes)"
    else:
        over = (f"over {direction['n']} clips with a twin or a reversal class (partner: exact reversal clips "
                f"for {clips}, reversal classes for {classes})")
    lines = [f"direction (own class scored above its time reversal's class): {direction['direction']:.2f} "
             + over]
    lines += [f"  {name:<{width}}  {row['direction']:6.2f}  (n={row['n']})"
              for name, row in direction["per_pair"].items()]
    return "\n".join(lines)


SCORE_COLUMNS = ("video", "label", "predicted", "own_score", "twin_video", "twin_class", "twin_score",
                 "direction_correct")


def write_scores(path: str, dataset, logits) -> None:
    """Per-clip scores of a recognition evaluation: a JSON list (``.json``) or a CSV with
    :data:`SCORE_COLUMNS`. Scores are class probabilities (softmax, averaged over views). The twin
    fields hold the clip's twin clip, else its reversal class (``twin_video`` empty), else are empty
    (JSON: null)."""
    twins = getattr(dataset, "twins", None) or [-1] * len(dataset.videos)
    scores = twin_scores(logits, dataset.labels, twins, getattr(dataset, "class_twins", None))
    preds = average_views(logits).argmax(dim=-1).tolist()
    rows = []
    for i, video in enumerate(dataset.videos):
        partner, twin = int(scores["partner"][i]), twins[i]
        twin_score = float(scores["twin"][i])
        rows.append({"video": video.video_id, "label": dataset.classes[dataset.labels[i]],
                     "predicted": dataset.classes[preds[i]], "own_score": float(scores["own"][i]),
                     "twin_video": dataset.videos[twin].video_id if twin >= 0 else None,
                     "twin_class": dataset.classes[partner] if partner >= 0 else None,
                     "twin_score": None if math.isnan(twin_score) else twin_score,
                     "direction_correct": bool(scores["correct"][i]) if partner >= 0 else None})
    if str(path).lower().endswith(".json"):
        Path(path).write_text(json.dumps(rows, indent=1) + "\n")
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SCORE_COLUMNS)
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
