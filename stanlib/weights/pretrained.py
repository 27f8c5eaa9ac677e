"""Loading any saved model: :func:`from_pretrained` (a ``save_pretrained`` folder, a Hub repo id or a
zoo name), :func:`load_training_checkpoint` (``stanlib train``'s ``last.pt`` / ``best.pt``) and
:func:`load_model` (any of these, or an authors' ``.pth``)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import torch

from stanlib.model.config import STANConfig
from stanlib.model.stan import STANModel
from stanlib.weights import zoo
from stanlib.weights.hub import _REPO_ID, _download
from stanlib.weights.io import CONFIG_NAME, WEIGHTS_NAME, _load_safetensors, load_strict
from stanlib.weights.official import load_official


def from_pretrained(name_or_path: str | os.PathLike, revision: Optional[str] = None,
                    device: str | torch.device = "cpu"):
    """Rebuild a model saved by :func:`save_pretrained` (a local folder or a Hub repo id ``"user/name"``),
    or a model of the teaching zoo by name (``"zoo:motion/stan-self"``, :mod:`stanlib.weights.zoo`).

    Loading is strict: every tensor of the file must be a parameter/buffer of the rebuilt model
    and vice versa. Nothing is unpickled. Returns the model in eval mode on ``device``.
    """

    if str(name_or_path).startswith("zoo:"):  # a trained model of the teaching zoo (stanlib.weights.zoo)
        return zoo.load(str(name_or_path), device=device)
    folder = Path(name_or_path)
    if not folder.exists():
        if not _REPO_ID.fullmatch(str(name_or_path)):
            raise FileNotFoundError(f"{name_or_path}: no such folder (and not a Hub repo id 'user/name')")
        folder = _download(str(name_or_path), revision)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file; from_pretrained expects a folder with {CONFIG_NAME} and "
                                 f"{WEIGHTS_NAME} (for an authors' .pth checkpoint use stanlib.load_official)")
    for needed in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / needed).is_file():
            raise FileNotFoundError(f"{folder} has no {needed}; expected a folder written by save_pretrained")
    config_path = folder / CONFIG_NAME
    try:
        data = json.loads(config_path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path}: line {err.lineno} column {err.colno}: invalid JSON ({err.msg})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{config_path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if isinstance(data, dict) and (data.get("extra") or {}).get("zoo"):  # a compact teaching-zoo folder
        return zoo.load_folder(folder, device=device)
    config = STANConfig.from_dict(data, str(config_path))
    try:
        model = STANModel(config)
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{config_path}: cannot build the model it describes: "
                         f"{err.args[0] if isinstance(err, KeyError) and err.args else err}") from None
    load_strict(model, _load_safetensors(folder / WEIGHTS_NAME), str(folder / WEIGHTS_NAME))
    return model.to(device).eval()


def load_model(spec: str | os.PathLike):
    """Any checkpoint: a save_pretrained folder, Hub id or zoo name, a ``last.pt`` / ``best.pt`` written
    by ``stanlib train`` (:func:`load_training_checkpoint`), or an authors' ``.pth`` file."""
    path = Path(spec)
    if path.is_file():
        if path.suffix == ".pt":
            return load_training_checkpoint(path)
        return load_official(path)
    return from_pretrained(spec)


def load_training_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """The model of a ``stanlib train`` checkpoint (``last.pt`` / ``best.pt``), in eval mode.

    ``model.config.extra`` records what inference needs from the run: the recognition ``head``
    ("text", "orthogonal" or "linear"), the ``classes`` in training order, the ``class_prompt``, and
    the run's ``task``, ``dataset`` and ``preset`` (:class:`stanlib.Predictor` classifies with them).
    """

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot read {path} as a stanlib training checkpoint ({type(err).__name__}); "
                         "the file is corrupt or not a last.pt / best.pt of `stanlib train`") from None
    if not isinstance(ckpt, dict) or not str(ckpt.get("format", "")).startswith("stanlib-checkpoint"):
        raise ValueError(f"{path} is not a `stanlib train` checkpoint (last.pt / best.pt); for a folder written "
                         "by save_pretrained pass the folder, for the authors' checkpoints use a .pth file")
    config = STANConfig.from_dict(dict(ckpt.get("model_config") or {}), f"{path} (model_config)")
    model = STANModel(config)
    load_strict(model, ckpt["model"], str(path))
    run = ckpt.get("config") or {}
    model.config.extra = {**(model.config.extra or {}), "task": run.get("task"), "preset": run.get("name"),
                          "dataset": run.get("dataset"), "head": run.get("head") if run.get("task") == "recognition"
                          else None, "class_prompt": run.get("class_prompt", "{}"),
                          "classes": list(ckpt.get("class_names") or []), "checkpoint": str(path)}
    return model.to(device).eval()
