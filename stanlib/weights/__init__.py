"""Weights in and out: Hugging Face CLIP, the authors' STAN checkpoints, stanlib's own format, the zoo.

Three formats, one idea: a **key table** says which of our parameter names matches which of
theirs, and how the tensor changes on the way (copied, transposed, or q/k/v split/joined). The
same table is read in both directions, so import and export cannot drift apart.

=====================  ==========================================================================
Hugging Face CLIP      :func:`~stanlib.weights.keymaps.hf_to_open_clip` / ``open_clip_to_hf`` (state
                       dicts); :func:`stanlib.model.clip.create_clip_from_hf_folder` (a local
                       ``config.json`` + ``model.safetensors`` / ``pytorch_model.bin`` folder).
Authors' checkpoints   :func:`load_official` / :func:`export_official` (mmengine, docs/architecture.md
                       section 9); ``stanlib convert official IN.pth OUT_DIR`` and
                       ``stanlib convert to-official IN_DIR OUT.pth``.
stanlib format         :func:`save_pretrained` / :func:`from_pretrained` / :func:`push_to_hub`:
                       ``model.safetensors`` + ``config.json`` (a :class:`~stanlib.STANConfig`).
Teaching zoo           :mod:`stanlib.weights.zoo`: ``from_pretrained("zoo:motion/stan-self")``.
=====================  ==========================================================================

Modules, bottom-up: ``io`` (safe reading, strict loading, writing) and ``keymaps`` (the tables) sit
below :mod:`stanlib.model`; ``hub`` (downloads, uploads) too. ``official``, ``zoo``, ``pretrained``
(loading builds a model) and ``convert`` (the command) sit above it. This ``__init__`` imports the
lower ones and resolves the upper names on first use, so :mod:`stanlib.model` can read files without
an import cycle.

Nothing here unpickles arbitrary objects: safetensors files hold only tensors, and ``.pth``
files are read with ``torch.load(weights_only=True)``; objects of unknown classes inside an
mmengine checkpoint (its logging state) become inert placeholders whose code never runs.
"""
from __future__ import annotations

import importlib

from stanlib.weights.hub import push_to_hub
from stanlib.weights.io import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    Placeholder,
    load_strict,
    portable_config,
    read_checkpoint,
    save_pretrained,
)
from stanlib.weights.keymaps import (
    HF_CLIP,
    OFFICIAL,
    KeyTable,
    Rule,
    hf_to_open_clip,
    infer_clip_name,
    is_hf_clip_folder,
    open_clip_to_hf,
    read_hf_clip_folder,
)

# names of the modules above stanlib.model, resolved on first access
_UPPER = {
    "load_official": "official", "export_official": "official",
    "from_pretrained": "pretrained", "load_model": "pretrained", "load_training_checkpoint": "pretrained",
    "cli_main": "convert",
}


def __getattr__(name: str):
    if name in ("official", "pretrained", "convert", "zoo"):
        return importlib.import_module(f"stanlib.weights.{name}")
    if name == "create_clip_from_hf_folder":
        return importlib.import_module("stanlib.model.clip").create_clip_from_hf_folder
    if name in _UPPER:
        return getattr(importlib.import_module(f"stanlib.weights.{_UPPER[name]}"), name)
    raise AttributeError(f"module 'stanlib.weights' has no attribute {name!r}")


__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "HF_CLIP", "OFFICIAL", "KeyTable", "Rule", "Placeholder", "hf_to_open_clip",
           "open_clip_to_hf", "infer_clip_name", "is_hf_clip_folder", "read_hf_clip_folder", "read_checkpoint",
           "load_strict", "portable_config", "save_pretrained", "push_to_hub", "create_clip_from_hf_folder", *_UPPER]
