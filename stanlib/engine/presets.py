"""Training presets: the paper's recipes (docs/architecture.md section 7) and tiny CPU runs on synthetic data.

A preset is a :class:`Config`: data, optimisation and, nested in ``model``, the model's own
:class:`~stanlib.model.config.STANConfig` (the same object ``create_model`` builds from and
``config.json`` of a saved model holds). Change any field from the command line with
``--set key=value``; model fields as ``--set model.depth=2`` or, shorter, ``--set depth=2``::

    stanlib presets                                   # the table below
    stanlib train --preset tiny-motion                # ~minutes on a laptop CPU
    stanlib train --preset msrvtt-b32 --data-root /data/msrvtt --set batch_size=64

Batch size semantics: ``batch_size`` is the number of clips per optimiser step over ALL
processes. Each process loads ``batch_size / (world_size * grad_accum)`` clips per forward pass,
and the in-batch negatives of the contrastive loss are ``batch_size / grad_accum`` (the
features of all processes are gathered; accumulated micro-batches are not).

Every field is checked when a config is made, loaded or overridden (type, range, allowed values:
``num_frames`` 1-64, ``temporal`` attn/conv/none, ``depth`` within the CLIP's layers, ...); a bad
value raises :class:`ConfigError` naming the field (and the ``--set`` item that gave it).
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from stanlib.model.branch import MAX_FRAMES
from stanlib.model.config import ARCHS, STANConfig

TASKS = ("retrieval", "recognition")
AMP_MODES = ("auto", "off", "bf16", "fp16")
NORMALISE_ON = ("auto", "workers", "device")
HEADS = ("text", "linear", "orthogonal")
TEMPORAL_MODULES = ("attn", "conv", None)
MODEL_FIELDS = tuple(f.name for f in fields(STANConfig))


class ConfigError(ValueError):
    """A config field has a bad value; ``key`` is the field."""

    def __init__(self, message: str, key: str):
        super().__init__(message)
        self.key = key


def _type_problem(value: Any, hint: Any) -> Optional[str]:
    """Why ``value`` does not fit the type hint of a Config field (None if it does)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union:  # Optional[X]
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a JSON object",
             tuple: "a list"}
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    return None if ok else f"must be {names.get(hint, hint.__name__)}, got {type(value).__name__} {value!r}"


def _clip_layers(name: str) -> Optional[int]:
    """Number of vision transformer layers of a registered open_clip config (None if unknown)."""
    import open_clip

    import stanlib.model.clip  # noqa: F401  (registers stan-tiny)

    layers = (open_clip.get_model_config(name) or {}).get("vision_cfg", {}).get("layers")
    return layers if isinstance(layers, int) else None


@dataclass
class Config:
    """Everything a training run needs; saved as ``config.json`` next to its checkpoints."""

    name: str = "custom"
    description: str = ""
    task: str = "retrieval"                 # "retrieval" (InfoNCE) | "recognition" (class-name classifier)
    # ---- data (readers in stanlib.data: build_dataset(dataset, data_root, split, ...))
    dataset: str = "msrvtt"
    data_root: str = ""
    train_split: str = "train"
    val_split: str = "test"
    test_views: int = 1                     # recognition test views (1x3 = 3 spatial crops)
    num_workers: int = 4
    normalise_on: str = "auto"              # where frames are CLIP-normalised: "workers" (float frames leave the
                                            # DataLoader), "device" (uint8 frames are copied, then normalised:
                                            # 4x fewer bytes, no float work in the workers); auto: device on CUDA
    crop_scale: tuple = (0.08, 1.0)         # training random resized crop: area range of the resized frame
    twin_batches: bool = False              # a batch holds batch_size/2 declared reversal pairs (each clip next
                                            # to its time reversal); needs twins declared in the training split
    dataset_kwargs: dict = field(default_factory=dict)      # extra build_dataset arguments
    # ---- model: the STANConfig the run builds (clip, pretrained, arch, temporal, depth, num_frames = T frames
    # per clip, context_length = text tokens, logit_scale = 1/tau for retrieval and the recognition head, ...)
    model: STANConfig = field(default_factory=lambda: STANConfig(pretrained="openai", context_length=32))
    # ---- recognition head
    head: str = "text"                      # "text": frozen class-name embeddings (the paper) | "linear"
                                            # (trainable, from the text ones) | "orthogonal" (frozen random
                                            # orthonormal class vectors: for class words the text tower never
                                            # learnt, e.g. the tiny CLIP's motion words)
    class_prompt: str = "{}"                # text template for class names
    allow_unknown_words: bool = False       # class names / captions with words the tokenizer maps to <unk>:
                                            # warn instead of stopping (the tiny CLIP's word-level vocabulary)
    label_smoothing: float = 0.0
    freeze_text: bool = False               # freeze CLIP's text tower (recognition presets: True)
    # ---- optimisation
    epochs: int = 20
    batch_size: int = 128                   # clips per optimiser step, all processes together
    recipe_batch: int = 128                 # the recipe's batch: warn when far below it
    grad_accum: int = 1
    lr: float = 2e-6                        # CLIP parameters
    lr_mult: float = 10.0                   # branch (and new head) parameters get lr * lr_mult
    weight_decay: float = 0.02
    betas: tuple = (0.9, 0.98)
    eps: float = 1e-8
    warmup_epochs: float = 1.0
    warmup_steps: Optional[int] = None      # overrides warmup_epochs when set
    min_lr_ratio: float = 0.0               # cosine decays to lr * min_lr_ratio
    grad_clip: float = 5.0                  # max L2 norm of all gradients (0: off)
    amp: str = "auto"                       # auto: bf16 if supported, else fp16 + GradScaler; off on CPU
    grad_checkpointing: bool = False
    max_steps: Optional[int] = None         # stop after this many optimiser steps (smoke runs)
    eval_every: int = 1                     # epochs
    eval_batch_size: Optional[int] = None   # default: per-process training batch
    best_metric: str = "auto"               # auto: t2v/R@1 (retrieval) or top1 (recognition)
    skip_bad_eval: bool = False             # an undecodable test video skips that evaluation (default: stop)
    seed: int = 0
    log_every: int = 10                     # steps between logged losses
    out_dir: str = ""                       # default runs/<name>
    device: str = "auto"                    # auto: cuda (local rank) if available, else cpu

    def __post_init__(self):
        if isinstance(self.model, dict):
            self.model = _model_config(self.model, self.name)
        self.betas = tuple(self.betas)
        self.crop_scale = tuple(self.crop_scale)
        self.validate()

    def validate(self) -> None:
        """Check every field (type, range, allowed values); raises :class:`ConfigError` naming it."""
        def bad(key, why):
            raise ConfigError(f"config {self.name!r}: {key}={getattr(self, key)!r} {why}", key)

        def bad_model(key, why):
            raise ConfigError(f"config {self.name!r}: model.{key}={getattr(self.model, key)!r} {why}", key)

        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            if f.name == "model":
                if not isinstance(self.model, STANConfig):
                    bad("model", f"must be a STANConfig (or a JSON object of its fields), got {type(self.model).__name__}")
                continue
            problem = _type_problem(getattr(self, f.name), hints[f.name])
            if problem:
                bad(f.name, problem)
        m = self.model
        model_hints = typing.get_type_hints(STANConfig)
        for key in ("clip", "arch", "depth", "num_frames", "context_length", "logit_scale", "learnable_logit_scale"):
            problem = _type_problem(getattr(m, key), model_hints[key])
            if problem:
                bad_model(key, problem)
        from stanlib.data.datasets import READERS

        if self.dataset not in READERS:
            bad("dataset", f"must be one of {sorted(READERS)}")
        if m.arch not in ARCHS:
            bad_model("arch", f"must be one of {ARCHS}")
        if m.temporal not in TEMPORAL_MODULES:
            bad_model("temporal", "must be 'attn' (STAN-self), 'conv' (STAN-conv) or none")
        if not 1 <= m.num_frames <= MAX_FRAMES:
            bad_model("num_frames", f"must be between 1 and {MAX_FRAMES} (the size of STAN's time embedding)")
        if self.test_views not in (1, 3):
            bad("test_views", "must be 1 or 3 (1 clip x 3 crops)")
        layers = _clip_layers(m.clip)
        if layers is None and m.clip not in __import__("open_clip").list_models():
            bad_model("clip", "is not a known CLIP config (e.g. ViT-B-32, ViT-B-16, stan-tiny)")
        if m.arch in ("branch", "posterior") and layers is not None and not 1 <= m.depth <= layers:
            bad_model("depth", f"must be between 1 and the {layers} layers of {m.clip}")
        if m.context_length is None or m.context_length < 1:
            bad_model("context_length", "must be >= 1 (the text length the data is tokenized to)")
        if self.log_every < 1:
            bad("log_every", "must be >= 1")
        for key in ("num_workers", "weight_decay", "grad_clip", "warmup_epochs", "label_smoothing", "min_lr_ratio"):
            if getattr(self, key) < 0:
                bad(key, "must be >= 0")
        for key in ("warmup_steps", "max_steps", "eval_batch_size"):
            value = getattr(self, key)
            if value is not None and value < (0 if key == "warmup_steps" else 1):
                bad(key, f"must be >= {0 if key == 'warmup_steps' else 1} (or none)")
        if m.logit_scale <= 0:
            bad_model("logit_scale", "must be > 0")
        if self.lr_mult <= 0:
            bad("lr_mult", "must be > 0")
        if len(self.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas):
            bad("betas", "must be two numbers in [0, 1), e.g. [0.9, 0.98]")
        if self.task not in TASKS:
            bad("task", f"must be one of {TASKS}")
        if self.normalise_on not in NORMALISE_ON:
            bad("normalise_on", f"must be one of {NORMALISE_ON}")
        if self.amp not in AMP_MODES:
            bad("amp", f"must be one of {AMP_MODES}")
        if self.head not in HEADS:
            bad("head", f"must be one of {HEADS}")
        if self.head == "orthogonal" and self.task != "recognition":
            bad("head", "'orthogonal' is a recognition head; retrieval trains against the captions")
        if len(self.crop_scale) != 2 or not all(isinstance(v, (int, float)) for v in self.crop_scale) \
                or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            bad("crop_scale", "must be two numbers 0 < lo <= hi <= 1, e.g. [0.5, 1.0]")
        if self.twin_batches and self.batch_size % (2 * self.grad_accum):
            bad("batch_size", f"must be a multiple of 2 x grad_accum={self.grad_accum} with twin_batches "
                "(each clip next to its reversal)")
        for key in ("epochs", "batch_size", "grad_accum", "eval_every", "test_views"):
            if int(getattr(self, key)) < 1:
                bad(key, "must be >= 1")
        if self.batch_size % self.grad_accum:
            bad("batch_size", f"must be divisible by grad_accum={self.grad_accum}")
        if self.lr <= 0:
            bad("lr", "must be > 0")
        if "{}" not in self.class_prompt:
            bad("class_prompt", "must contain '{}' where the class name goes")

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir or f"runs/{self.name}")

    @property
    def metric(self) -> str:
        if self.best_metric != "auto":
            return self.best_metric
        return "t2v/R@1" if self.task == "retrieval" else "top1"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        d["crop_scale"] = list(self.crop_scale)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        """A config from a dict: ``model`` a JSON object of :class:`STANConfig` fields. Model fields may
        also be given at the top level (``{"clip": "stan-tiny", "depth": 2}``: the form of ``--set depth=2``
        and of configs written before the model config was nested; ``model_kwargs`` too)."""
        d = dict(d)
        model = d.pop("model", None)
        model = asdict(model) if isinstance(model, STANConfig) else dict(model or {})
        flat = {k: d.pop(k) for k in list(d) if k in MODEL_FIELDS}
        flat.update(d.pop("model_kwargs", None) or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KeyError(f"unknown config keys {unknown}; known keys: {sorted(known)} and the model's "
                           f"{sorted(MODEL_FIELDS)}")
        return cls(**d, model=_model_config({**model, **flat}, d.get("name", "custom")))

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        """Read a ``config.json``; every error names the file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of config fields, got {type(data).__name__}")
        try:
            return cls.from_dict(data)
        except KeyError as err:
            raise KeyError(f"{path}: {err.args[0]}") from None
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


def _model_config(data: dict, name: str) -> STANConfig:
    """The run's :class:`STANConfig` from a dict of fields (the others keep a run's defaults: OpenAI weights,
    32 text tokens); a bad field is a :class:`ConfigError` naming it."""
    defaults = asdict(Config.__dataclass_fields__["model"].default_factory())
    try:
        return STANConfig.from_dict({**defaults, **data}, f"config {name!r}: model")
    except ValueError as err:
        msg = str(err)
        key = next((k for k in data if f"{k!r}" in msg), None) or next(
            (k for k in MODEL_FIELDS if re.search(rf"\b{k}\b", msg)), "model")
        raise ConfigError(msg, key) from None


def _override_key(item: str) -> str:
    """The field a ``--set`` item names: ``model.depth=2``, ``depth=2`` and (older) ``model_kwargs.depth=2`` alike."""
    return item.split("=", 1)[0].strip().removeprefix("model.").removeprefix("model_kwargs.")


# --------------------------------------------------------------------------- the presets
def _paper(name: str, description: str, **kw) -> Config:
    return Config.from_dict(dict(name=name, description=description, **kw))


# Retrieval: total batch 128, 20 epochs, lr 2e-6 (CLIP) / 2e-5 (branch), K=4, 1 test clip, centre crop.
# Warm-up length is not given by the paper; 1 epoch of 20 (and 2 of 50 for recognition) is our choice.
_RETRIEVAL = dict(task="retrieval", epochs=20, batch_size=128, lr=2e-6, lr_mult=10.0, depth=4,
                  weight_decay=0.02, warmup_epochs=1.0, train_split="train", val_split="test")
# Recognition: frozen class-name embeddings (scale 100), 50 epochs, 1x3 test views.
_RECOGNITION = dict(task="recognition", epochs=50, batch_size=128, lr=2e-6, lr_mult=10.0, num_frames=8,
                    context_length=77,  # class names / SSv2 templates: CLIP's full text length
                    logit_scale=100.0, freeze_text=True, test_views=3, warmup_epochs=2.0,
                    train_split="train", val_split="val", class_prompt="{}")

PRESETS: dict[str, Config] = {}


def register(config: Config) -> Config:
    """Add a preset (name must be new)."""
    if config.name in PRESETS:
        raise KeyError(f"preset {config.name!r} already exists")
    PRESETS[config.name] = config
    return config


for _cfg in (
    _paper("msrvtt-b32", "MSR-VTT 9k/1k-A, STAN-self on ViT-B/32",
           dataset="msrvtt", clip="ViT-B-32", num_frames=12, context_length=32, logit_scale=100.0, **_RETRIEVAL),
    _paper("msrvtt-b16", "MSR-VTT 9k/1k-A, STAN-self on ViT-B/16",
           dataset="msrvtt", clip="ViT-B-16", num_frames=12, context_length=32, logit_scale=50.0, **_RETRIEVAL),
    _paper("didemo-b32", "DiDeMo (paragraph queries), 64 frames, grad checkpointing, ViT-B/32",
           dataset="didemo", clip="ViT-B-32", num_frames=64, context_length=64, logit_scale=20.0,
           grad_checkpointing=True, **_RETRIEVAL),
    _paper("lsmdc-b32", "LSMDC, STAN-self on ViT-B/32",
           dataset="lsmdc", clip="ViT-B-32", num_frames=12, context_length=32, logit_scale=100.0, **_RETRIEVAL),
    _paper("k400-b16", "Kinetics-400, STAN-self ViT-B/16, 8 frames, 1x3 views",
           dataset="k400", clip="ViT-B-16", depth=4, **_RECOGNITION),
    _paper("ssv2-b16", "Something-Something v2, STAN-self ViT-B/16, K=6, 8 frames, 1x3 views",
           dataset="ssv2", clip="ViT-B-16", depth=6, **_RECOGNITION),
):
    register(_cfg)

# Tiny CPU presets on the synthetic world (the repository's data_samples/synth; elsewhere
# stanlib.assets.synth_dataset writes it). They are the default recipes of `stanlib experiments`, the paper's
# method (stanlib.teaching.experiments.task_recipe, docs/experiments.md section 2), trained on the decoded files:
# stan-tiny-v2, the tiny CLIP shipped with stanlib that learnt the motion words from stills, CLIP lr 5e-4,
# branch lr x10, weight decay 0.02, 10 warm-up steps, 300 steps of
# 16 clips of 8 frames, K=4 (every level of the 4-layer tiny CLIP), gradients clipped at 5, twin batches
# where the data declares reversal twins, and no random crop (crop_scale 1-1: the whole frame): at 64 px the
# default crop (8-100% of the area) keeps under half of the moving shape in 23% of crops and under 90% in
# 47% (tools/crop_coverage.py, docs/results/crop_coverage.json). Heads: the class names' text embeddings (the
# paper's); captions: plain symmetric InfoNCE. The first tiny CLIP's recipe: `--set clip=stan-tiny --set
# head=orthogonal` (motion). `--set pretrained=none` starts from random weights.
TINY_CLIP_WEIGHTS = "bundled"
_TINY = dict(clip="stan-tiny-v2", pretrained=TINY_CLIP_WEIGHTS, depth=4, num_frames=8, context_length=16,
             batch_size=16, recipe_batch=16, lr=5e-4, lr_mult=10.0, weight_decay=0.02, warmup_steps=10,
             grad_clip=5.0, crop_scale=(1.0, 1.0), num_workers=0, log_every=5, logit_scale=100.0)
for _cfg in (
    # 800 training clips (400 reversal pairs) / 16 per step = 50 steps per epoch: 6 epochs = 300 steps.
    # On videos the tiny CLIP sees less well (textured scenes, distractors) keep the branch's lr and lower CLIP's:
    # --set lr=2e-4 --set lr_mult=25 (docs/experiments.md 2.9).
    _paper("tiny-motion", description="synthetic SSv2-like motion classes (reversed pairs), CPU",
           task="recognition", dataset="ssv2", data_root="data_samples/synth/motion", train_split="train",
           val_split="val", freeze_text=True, head="text", twin_batches=True, epochs=6, eval_every=2,
           **_TINY),
    # 240 training clips / 16 = 15 steps per epoch: 20 epochs = 300 steps
    _paper("tiny-appearance", description="synthetic K400-like colour x shape classes, CPU",
           task="recognition", dataset="ssv2", data_root="data_samples/synth/appearance", train_split="train",
           val_split="val", freeze_text=True, head="text", epochs=20, eval_every=5, **_TINY),
    # captions: batches of 32, branch lr x3, plain InfoNCE (the experiments' captions recipe).
    # 300 videos x 3 captions / 32 = 28 steps per epoch: 11 epochs ~ 300 steps
    _paper("tiny-captions", description="synthetic MSR-VTT-like caption retrieval, CPU",
           task="retrieval", dataset="msrvtt", data_root="data_samples/synth/captions", train_split="train",
           val_split="test", epochs=11, eval_every=4, **{**_TINY, "batch_size": 32, "recipe_batch": 32,
                                                          "lr_mult": 3.0}),
):
    register(_cfg)


def get_preset(name: str) -> Config:
    """A fresh copy of a preset (edit it freely)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)} (run `stanlib presets`)")
    return copy.deepcopy(PRESETS[name])


# --------------------------------------------------------------------------- overrides
def _parse_value(text: str, current: Any) -> Any:
    """Parse ``text`` as JSON (numbers, true/false, null, lists), else keep the string; coerce to
    the type of the current value where that is unambiguous."""
    if text.lower() in ("none", "null"):
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if isinstance(current, bool) and not isinstance(value, bool):
        raise ValueError(f"expected true/false, got {text!r}")
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, int) and not isinstance(current, bool) and isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected an integer, got {text!r}")
        value = int(value)
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    return value


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Return a copy of ``config`` with ``key=value`` overrides applied (dotted keys for dict fields:
    ``model.depth=2``, ``dataset_kwargs.x=1``; a model field also alone, ``depth=2``)."""
    d = config.to_dict()
    model = d.pop("model")
    d.update(model)  # model fields at the top: their names differ from every other field
    known = set(d)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected key=value")
        key, text = _override_key(item), item.split("=", 1)[1]
        top, _, sub = key.partition(".")
        if top not in known:
            raise KeyError(f"--set {item!r}: unknown key {top!r}; known keys: {sorted(known)}")
        if sub:
            if not isinstance(d[top], dict):
                raise KeyError(f"--set {item!r}: {top!r} is not a dict field")
            d[top][sub] = _parse_value(text, d[top].get(sub))
        else:
            try:
                d[top] = _parse_value(text, d[top])
            except ValueError as err:
                raise ValueError(f"--set {item!r}: {err}") from None
    try:
        return Config.from_dict(d)
    except ConfigError as err:  # name the --set item that gave the bad value, if one did
        given = [i for i in overrides if _override_key(i).partition(".")[0] == err.key]
        if given:
            raise ConfigError(f"--set {given[-1]!r}: {err}", err.key) from None
        raise


# --------------------------------------------------------------------------- `stanlib presets`
TABLE_COLUMNS = ("name", "task", "dataset", "clip", "temporal", "num_frames", "context_length", "depth",
                 "logit_scale", "lr", "lr_mult", "epochs", "batch_size", "test_views")
_SHORT = {"num_frames": "T", "context_length": "tokens", "depth": "K", "logit_scale": "1/tau",
          "batch_size": "batch", "test_views": "views", "lr_mult": "xbranch"}


def presets_table(names: Optional[list[str]] = None) -> str:
    """The presets as a plain-text table (one row each)."""
    names = names or list(PRESETS)
    rows = [[_SHORT.get(c, c) for c in TABLE_COLUMNS]]
    for n in names:
        cfg = PRESETS[n]
        values = [getattr(cfg.model if c in MODEL_FIELDS else cfg, c) for c in TABLE_COLUMNS]
        rows.append([f"{v:g}" if isinstance(v, float) else str(v) for v in values])
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE_COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


def cli_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stanlib presets", description="List training presets and their key values.")
    parser.add_argument("name", nargs="?", help="show one preset's full config as JSON")
    args = parser.parse_args(argv)
    if args.name:
        try:
            print(json.dumps(get_preset(args.name).to_dict(), indent=2))
        except KeyError as err:
            print(f"stanlib presets: {err.args[0]}", file=sys.stderr)
            return 2
        return 0
    print(presets_table())
    print("\nbatch = clips per optimiser step over all GPUs; xbranch = branch lr multiplier; "
          "views = test views (1x3). `stanlib presets NAME` shows every field.")
    return 0
