"""Getting an open_clip CLIP: config registry (incl. the tiny teaching config), weights, errors.

``create_clip("ViT-B-32", pretrained=None | "openai" | "/path/to/state_dict")`` returns an
``open_clip.CLIP``. STAN never modifies it; the branch in :mod:`stanlib.model.branch` reads its tokens.
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Optional

import open_clip
import torch

from stanlib import assets
from stanlib.weights.io import _uses_quick_gelu, load_strict, read_checkpoint  # the one safe reader (mmengine-aware)
from stanlib.weights.keymaps import (
    _HF_TEXT_DEFAULTS,
    _HF_VISION_DEFAULTS,
    _config_signature,
    _heads,
    clip_signature,
    hf_to_open_clip,
    infer_clip_name,
    read_hf_clip_folder,
)

CONFIG_DIR = assets.CONFIGS
open_clip.add_model_config(CONFIG_DIR)  # registers "stan-tiny" (64 px, patch 8, width 128, 4 layers)

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
# The tiny teaching CLIP pretrained by `stanlib pretrain-tiny` ships inside the package
# (stanlib/assets/tiny_clip): create_clip("stan-tiny", pretrained="bundled") loads it.
BUNDLED_TINY = assets.TINY_CLIP


def list_clips() -> list[str]:
    """ViT configs open_clip knows (plus ours), e.g. ViT-B-32, ViT-B-16, ViT-L-14, stan-tiny."""
    return [n for n in open_clip.list_models() if n.startswith(("ViT-", "stan-"))]


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a weights file without unpickling arbitrary objects (safetensors or ``weights_only``)."""
    try:
        sd = read_checkpoint(path)
    except ValueError as err:
        raise ValueError(f"cannot read weights from {path}: {err}. Expected a state dict saved with "
                         "torch.save(model.state_dict(), path) or a .safetensors file.") from err
    for key in ("state_dict", "model"):  # common wrappers
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise ValueError(f"{path} holds a {type(sd).__name__}, not a state dict")
    return {k.removeprefix("module."): v for k, v in sd.items()}


@contextlib.contextmanager
def _quiet(logger: str):
    log = logging.getLogger(None if logger == "root" else logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def tiny_clip_name(file: str | os.PathLike) -> str:
    """The tiny CLIP config a ``.safetensors`` weights file was pretrained as (its ``clip`` metadata,
    written by ``stanlib pretrain-tiny``; ``stan-tiny`` for a file that does not say)."""
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as f:
        return (f.metadata() or {}).get("clip", "stan-tiny")


def _is_path(pretrained: str) -> bool:
    return os.sep in pretrained or pretrained.endswith(WEIGHT_SUFFIXES) or Path(pretrained).exists()


def create_clip(name: str = "ViT-B-32", pretrained: Optional[str] = None,
                quick_gelu: Optional[bool] = None) -> open_clip.CLIP:
    """Build an open_clip CLIP by config name; optionally load weights.

    Args:
        name: open_clip config (``ViT-B-32``, ``ViT-B-16``, ``ViT-L-14``, ``stan-tiny``...).
        pretrained: ``None`` (random init), an open_clip tag such as ``"openai"`` (downloads from
            the Hub), a path to a state dict / safetensors file in open_clip's key names, or
            ``"bundled"`` for the pretrained tiny teaching CLIP shipped with stanlib (``stan-tiny`` only).
        quick_gelu: force the activation; default: QuickGELU for ``"openai"`` weights (what OpenAI
            trained with), the config's own otherwise.
    """
    if name not in open_clip.list_models():
        raise ValueError(f"unknown CLIP config {name!r}; choose one of {list_clips()}")
    if pretrained is not None and Path(pretrained).is_dir():  # a Hugging Face CLIP folder

        return create_clip_from_hf_folder(pretrained, name, quick_gelu)
    if quick_gelu is None:
        quick_gelu = pretrained == "openai"
    if pretrained == "bundled":
        if name not in assets.TINY_CLIPS:
            raise ValueError(f"pretrained='bundled' exists only for the tiny CLIPs {sorted(assets.TINY_CLIPS)}, "
                             f"not {name}")
        file = assets.TINY_CLIPS[name]
        if not file.is_file():
            raise FileNotFoundError(f"bundled tiny CLIP not found at {file}: this stanlib installation is "
                                    "incomplete (reinstall stanlib), or create the weights with "
                                    f"`stanlib pretrain-tiny --clip {name} --out DIR` and pass "
                                    f"pretrained='DIR/{name}.safetensors'")
        pretrained = str(file)
    if name.startswith("stan-tiny") and pretrained is not None and str(pretrained).endswith(".safetensors"):
        trained_as = tiny_clip_name(pretrained)
        if trained_as != name:  # same shapes, other vocabulary: every word id would mean another word
            raise ValueError(f"{pretrained} holds a {trained_as} CLIP (its words are {trained_as}'s), not {name}; "
                             f"build it as {trained_as!r}")
    # honour `with torch.device("meta"):` (FLOP counting without allocating weights)
    kwargs = dict(force_quick_gelu=quick_gelu, output_dict=False, device=torch.get_default_device())
    if pretrained is None or _is_path(pretrained):
        with _quiet("root"):  # open_clip warns "initialized randomly": intended here
            model = open_clip.create_model(name, pretrained=None, **kwargs)
        if pretrained is not None:
            load_clip_weights(model, pretrained)
        return model
    try:
        return open_clip.create_model(name, pretrained=pretrained, **kwargs)
    except Exception as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        hint = ("HF_HUB_OFFLINE is set, so nothing can be downloaded. " if offline else "")
        raise RuntimeError(
            f"could not load pretrained weights {pretrained!r} for {name}: {err}\n{hint}"
            f"Fix: on a machine with internet run `open_clip.create_model('{name}', pretrained='{pretrained}')` "
            "once (it caches the file), or save `model.state_dict()` to a file and pass "
            "pretrained='/path/to/file.pt'.") from err


def load_clip_weights(model: open_clip.CLIP, path: str | os.PathLike) -> None:
    """Load an open_clip state dict (or a Hugging Face CLIP one, converted) into ``model``, strictly."""
    sd = load_state_dict(path)
    if any(k.startswith(("vision_model.", "text_model.")) for k in sd):

        sd = hf_to_open_clip(sd)
    result = model.load_state_dict(sd, strict=False)
    missing = [k for k in result.missing_keys if k != "logit_bias"]
    if missing or result.unexpected_keys:
        raise KeyError(f"{path} does not match this CLIP config: missing keys {missing[:10]}"
                       f"{'...' if len(missing) > 10 else ''}, unexpected keys "
                       f"{result.unexpected_keys[:10]}{'...' if len(result.unexpected_keys) > 10 else ''}")


def create_clip_from_hf_folder(folder: str | os.PathLike, name: Optional[str] = None,
                               quick_gelu: Optional[bool] = None):
    """An open_clip CLIP holding the weights of a local Hugging Face CLIP folder.

    ``name``: the open_clip config to build (e.g. ``"ViT-B-32"``; it also picks the tokenizer);
    None infers it from the weights' shapes. The folder's ``hidden_act`` decides QuickGELU;
    ``quick_gelu`` may only confirm it. Heads and LayerNorm eps are checked against the config.
    """
    hf_cfg, hf_sd = read_hf_clip_folder(folder)
    sd = hf_to_open_clip(hf_sd)
    found = infer_clip_name(sd, where=str(folder))
    name = name or found
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ValueError(f"unknown open_clip config {name!r}")
    if _config_signature(cfg) != clip_signature(sd, str(folder)):
        raise ValueError(f"{folder}: weights have the shapes of {found!r}, not of {name!r} "
                         f"({clip_signature(sd, str(folder))} vs {_config_signature(cfg)})")
    vis = _HF_VISION_DEFAULTS | hf_cfg.get("vision_config", {})
    txt = _HF_TEXT_DEFAULTS | hf_cfg.get("text_config", {})
    heads = (vis["num_attention_heads"], txt["num_attention_heads"])
    if heads != _heads(cfg):
        raise ValueError(f"{folder}: (vision, text) heads {heads} differ from {name}'s {_heads(cfg)}")
    acts = {vis["hidden_act"], txt["hidden_act"]}
    if not acts <= {"quick_gelu", "gelu"} or len(acts) != 1:
        raise ValueError(f"{folder}: unsupported hidden_act {sorted(acts)} (open_clip has quick_gelu or gelu)")
    folder_quick = acts == {"quick_gelu"}
    if quick_gelu is not None and quick_gelu != folder_quick:
        raise ValueError(f"quick_gelu={quick_gelu} contradicts {folder}/config.json (hidden_act {acts.pop()})")
    eps = {vis["layer_norm_eps"], txt["layer_norm_eps"]}
    if eps != {1e-5}:
        raise ValueError(f"{folder}: layer_norm_eps {sorted(eps)}; open_clip uses 1e-5")
    model = create_clip(name, None, quick_gelu=folder_quick)
    if _uses_quick_gelu(model) != folder_quick:
        raise ValueError(f"open_clip config {name!r} forces quick_gelu={not folder_quick}, but {folder} "
                         f"uses {'quick_gelu' if folder_quick else 'gelu'}")
    load_strict(model, sd, str(folder), optional={"logit_bias"})
    return model
