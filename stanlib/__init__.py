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

from stanlib import assets
from stanlib.clip import create_clip, list_clips
from stanlib.model import STANConfig, STANModel, create_model
from stanlib.tokenizer import get_tokenizer

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "capture_attention": "stanlib.viz",
    "Predictor": "stanlib.predict",
    "load_official": "stanlib.weights",
    "from_pretrained": "stanlib.weights",
    "save_pretrained": "stanlib.weights",
    "export_official": "stanlib.weights",
    "push_to_hub": "stanlib.weights",
    "load_tiny": "stanlib.tiny",
}


_SUBMODULES = ("zoo", "viz", "data", "experiments")


def __getattr__(name: str):
    if name in _SUBMODULES:  # stanlib.zoo etc. without an explicit import
        return importlib.import_module(f"stanlib.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stanlib' has no attribute {name!r}")


__all__ = ["STANConfig", "STANModel", "assets", "create_model", "create_clip", "list_clips", "get_tokenizer", *_LAZY]
