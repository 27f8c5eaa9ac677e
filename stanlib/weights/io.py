"""Reading and writing weight files: the safe reader (safetensors / ``weights_only`` / mmengine), strict
loading that names every mismatch, and stanlib's own format (``model.safetensors`` + ``config.json``).

Nothing here imports the model: :mod:`stanlib.model` writes with these functions and
:mod:`stanlib.weights.pretrained` reads with them.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import torch

log = logging.getLogger("stanlib.weights")


CONFIG_NAME = "config.json"


WEIGHTS_NAME = "model.safetensors"


TensorDict = dict[str, torch.Tensor]


def _preview(keys: Iterable[str], n: int = 12) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def read_checkpoint(path: str | os.PathLike) -> Any:
    """Read a ``.safetensors`` / ``.pth`` file without running pickled code.

    ``torch.load(weights_only=True)`` first. mmengine checkpoints also hold logging state
    (``message_hub``: ``HistoryBuffer`` objects, numpy scalars) that ``weights_only`` refuses; those
    classes are then replaced by inert placeholders (never imported, never called) and a warning
    names them. Tensors are unaffected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # a class weights_only does not know: handled below
        first_error = err
    except Exception as err:  # not a torch file, truncated zip...
        raise ValueError(f"cannot read {path} as a torch checkpoint: {err}") from err
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception as err:  # legacy (non-zip) format, torchscript, truncated file...
        raise ValueError(f"cannot read {path} safely: {first_error}") from err
    stubs = [(_placeholder_class(name), name) for name in unsafe]
    try:
        with torch.serialization.safe_globals(stubs):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot read {path} safely ({err}). Re-save only its tensors, e.g. "
                         "torch.save(ckpt['state_dict'], 'weights.pth'), in a trusted environment.") from err
    warnings.warn(f"{path}: {len(unsafe)} non-tensor object type(s) were read as inert placeholders "
                  f"(not imported, not run): {_preview(unsafe, 6)}", stacklevel=2)
    return obj


def _load_safetensors(path: Path) -> TensorDict:
    """Tensors of a ``.safetensors`` file; a damaged file is a ValueError that names it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"cannot read {path}: {err} (the file is truncated or not a safetensors file; "
                         "copy or save it again)") from err


class Placeholder(list):
    """Stands in for a pickled object whose class we refuse to import: keeps its data, runs no code.

    (A ``list`` subclass because pickles may append items to the object while rebuilding it.)
    """

    qualname = "?"

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):  # pickle's REDUCE "calls" the class with the saved args
        super().__init__()
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<placeholder for {self.qualname}>"


def _placeholder_class(qualname: str) -> type:
    return type(qualname.rsplit(".", 1)[-1], (Placeholder,), {"qualname": qualname})


def _unwrap_state_dict(obj: Any, path: str | os.PathLike) -> TensorDict:
    """The tensors of a checkpoint: unwrap ``state_dict`` / ``model``, strip DDP's ``module.``."""
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{path}: the state dict has non-tensor entries {_preview(bad)}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def _meta(obj: Any) -> dict:
    meta = obj.get("meta") if isinstance(obj, Mapping) else None
    return dict(meta) if isinstance(meta, Mapping) else {}


def _uses_quick_gelu(clip) -> bool:
    from open_clip.transformer import QuickGELU

    return isinstance(clip.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)


def load_strict(model: torch.nn.Module, sd: Mapping[str, torch.Tensor], source: str,
                optional: Iterable[str] = ()) -> None:
    """``model.load_state_dict`` that lists every missing / unexpected / mis-shaped key.

    ``optional``: keys the model has but the source may lack (they keep their current value).
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd) - set(optional))
    unexpected = sorted(set(sd) - set(expected))
    shapes = [f"{k}: {tuple(sd[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in sorted(set(sd) & set(expected)) if sd[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s): {_preview(unexpected)}")
    if shapes:
        problems.append(f"wrong shape for {len(shapes)} key(s): {_preview(shapes, 6)}")
    if problems:
        raise KeyError(f"{source} does not match the model: " + "; ".join(problems))
    model.load_state_dict(dict(sd), strict=False)


def portable_config(model) -> dict:
    """The model's config as a dict that rebuilds it without the original CLIP weights.

    ``pretrained`` becomes None (the weights are saved alongside) and ``quick_gelu`` is set to
    the activation the CLIP really uses (it was derived from ``pretrained`` before).
    """
    config = model.config.to_dict()
    config["pretrained"] = None
    config["quick_gelu"] = _uses_quick_gelu(model.clip)
    return config


def save_pretrained(model, save_directory: str | os.PathLike, dtype: Optional[torch.dtype] = None) -> Path:
    """Write ``model.safetensors`` (every tensor of ``model.state_dict()``) + ``config.json``.

    The folder is self-contained: :func:`from_pretrained` rebuilds the model from it without
    downloading CLIP weights. No pickles: safetensors holds raw tensors, the config is JSON.
    ``dtype`` (e.g. ``torch.float16``) stores floating tensors in that type: half the bytes; the
    model is rebuilt in float32 on loading (values rounded to the stored type).
    """
    from safetensors.torch import save_file

    from stanlib.version import __version__

    folder = Path(save_directory)
    folder.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}
    save_file(sd, str(folder / WEIGHTS_NAME), metadata={"format": "pt", "stanlib_version": __version__})
    (folder / CONFIG_NAME).write_text(json.dumps(portable_config(model), indent=2) + "\n")
    return folder
