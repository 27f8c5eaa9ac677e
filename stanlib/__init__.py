"""stanlib: STAN (Spatial-Temporal Auxiliary Network, CVPR 2023) on open_clip, readable and runnable.

Quick start::

    import stanlib
    model = stanlib.create_model(clip="stan-tiny", temporal="attn", depth=2)
    emb = model.encode_video(frames)          # (B, T, 3, H, W) -> (B, E)

The files stanlib ships (the tiny CLIP, the teaching zoo's trained models, sample clips) are found
through :mod:`stanlib.assets`; ``stanlib.from_pretrained("zoo:motion/stan-self")`` loads a zoo model. Heavier parts (data, training, visualisation) are imported lazily on first use.
"""
from __future__ import annotations

import importlib

from stanlib import _moved, assets
from stanlib.model import STANConfig, STANModel, create_clip, create_model, get_tokenizer, list_clips
from stanlib.version import __version__  # noqa: F401  (stanlib.__version__)

# public name -> module that defines it (imported on first access)
_LAZY = {
    "capture_attention": "stanlib.viz",
    "Predictor": "stanlib.inference.predict",
    "load_official": "stanlib.weights.official",
    "from_pretrained": "stanlib.weights.pretrained",
    "load_model": "stanlib.weights.pretrained",
    "save_pretrained": "stanlib.weights.io",
    "export_official": "stanlib.weights.official",
    "push_to_hub": "stanlib.weights.hub",
    "load_tiny": "stanlib.teaching.tiny",
}


_SUBMODULES = ("model", "weights", "data", "engine", "inference", "teaching", "viz")
_moved.install()  # old flat module paths (stanlib.train, stanlib.zoo, ...) still import, with a warning


def __getattr__(name: str):
    if name in _SUBMODULES:  # stanlib.viz etc. without an explicit import
        return importlib.import_module(f"stanlib.{name}")
    if f"stanlib.{name}" in _moved.MOVED:  # stanlib.zoo, stanlib.experiments, ... (deprecated)
        return importlib.import_module(f"stanlib.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stanlib' has no attribute {name!r}")


__all__ = ["STANConfig", "STANModel", "assets", "create_model", "create_clip", "list_clips", "get_tokenizer", *_LAZY]
