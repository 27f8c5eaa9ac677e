"""The teaching zoo: the trained tiny models the course shows, loaded by name.

Every model is one ``stanlib experiments`` run (seed 0) on a synthetic task: :data:`ZOO_MODELS` with the
first tiny CLIP's recipe (``stan-tiny``, :data:`stanlib.teaching.experiments.FIRST_CLIP`), :data:`PAPER_MODELS`
with the paper's method on ``stan-tiny-v2`` (the default recipe, e.g. ``motion/stan-self-v2``), stored compactly
next to the code (``stanlib/assets/zoo/<task>/<row>/``):

* floating tensors in fp16 (half the bytes of fp32);
* tensors equal to the bundled tiny CLIP's it was trained on (after fp16 rounding) are **not stored again**: a
  recognition model's frozen text tower, for example, is the tiny CLIP's text tower. On loading they
  come back from the tiny CLIP file in fp32;
* ``config.json`` is an ordinary :func:`stanlib.from_pretrained` config whose ``extra`` records the
  task, row, seed, recipe, head, class names and the held-out scores of the run, plus ``zoo.base``
  (the tiny CLIP file's sha1) and ``zoo.from_base`` (the names of the tensors taken from it).

::

    import stanlib
    model = stanlib.from_pretrained("zoo:motion/stan-self")     # or stanlib.weights.zoo.load("motion/stan-self")
    stanlib.weights.zoo.available()                                      # ['appearance/meanpool', ...]

Rebuild every model with one command (cached runs are reused; ``--force`` retrains)::

    stanlib experiments zoo
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import torch

from stanlib import assets
from stanlib.model.config import STANConfig
from stanlib.model.stan import STANModel
from stanlib.weights.io import load_strict

ZOO_DIR = assets.ZOO
PREFIX = "zoo:"
# (task, row) pairs of the zoo trained with the first tiny CLIP's recipe (stan-tiny; FIRST_CLIP)
ZOO_MODELS: dict[str, tuple[str, ...]] = {
    "motion": ("meanpool", "stan-self", "stan-conv"),
    "appearance": ("meanpool", "stan-self"),
    "captions": ("meanpool", "stan-self"),
}
# The paper's own method on version 2 of the tiny CLIP (stan-tiny-v2, which learnt the motion words from
# stills): name -> (task, row, changes to the task's default recipe). Built from ``--save-models DIR/paper``.
PAPER_MODELS: dict[str, tuple[str, str, dict]] = {
    "motion/stan-self-v2": ("motion", "stan-self", {"clip": "stan-tiny-v2", "head": "text"}),
    "captions/stan-self-v2": ("captions", "stan-self",
                              {"clip": "stan-tiny-v2", "verb_negatives": False, "verb_anchors": 0.0}),
}
PAPER_SOURCE = "paper"  # their runs' saved models: DIR/paper/<task>/<row>/seed0


def available(root: Path = ZOO_DIR) -> list[str]:
    """Names (``"task/row"``) of the models present under ``root``."""
    return sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in Path(root).glob("*/*/config.json"))


def _tiny_clip_file(clip: str = "stan-tiny") -> Path:
    """The bundled weights of tiny CLIP ``clip`` (``stan-tiny`` or ``stan-tiny-v2``): a zoo model's base."""
    if clip not in assets.TINY_CLIPS:
        raise ValueError(f"zoo models are built on a bundled tiny CLIP {sorted(assets.TINY_CLIPS)}, not {clip!r}")
    return Path(assets.TINY_CLIPS[clip])


def _clip_of(config: dict) -> str:
    """The CLIP config name of a ``save_pretrained`` config (nested or flat)."""
    return config.get("model", config).get("clip", "stan-tiny")


def _sha1(path: Path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def _base_tensors(clip: str = "stan-tiny") -> dict[str, torch.Tensor]:
    """The tiny CLIP's tensors under the names a STAN model gives them (``clip.`` prefix)."""
    from safetensors.torch import load_file

    return {f"clip.{k}": v for k, v in load_file(str(_tiny_clip_file(clip))).items()}


def pack(source: Path, dest: Path) -> dict:
    """Write the compact zoo copy of the ``save_pretrained`` folder ``source`` into ``dest``.

    Returns ``{"stored": n, "from_base": n, "bytes": size of model.safetensors}``."""
    from safetensors.torch import load_file, save_file

    from stanlib.version import __version__

    source, dest = Path(source), Path(dest)
    tensors = load_file(str(source / "model.safetensors"))
    config = json.loads((source / "config.json").read_text())
    clip = _clip_of(config)
    base = _base_tensors(clip)
    stored, from_base = {}, []
    for name, value in tensors.items():
        ref = base.get(name)
        if value.is_floating_point():
            value = value.to(torch.float16)
        if ref is not None and ref.shape == value.shape and torch.equal(ref.to(value.dtype), value):
            from_base.append(name)
        else:
            stored[name] = value.contiguous()
    config.setdefault("extra", {})["zoo"] = {"base": _sha1(_tiny_clip_file(clip)), "from_base": sorted(from_base)}
    dest.mkdir(parents=True, exist_ok=True)
    save_file(stored, str(dest / "model.safetensors"),
              metadata={"format": "pt", "stanlib_version": __version__})
    (dest / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    return {"stored": len(stored), "from_base": len(from_base), "bytes": (dest / "model.safetensors").stat().st_size}


def resolve(name: str, root: Path = ZOO_DIR) -> Path:
    """The folder of zoo model ``name`` (``"motion/stan-self"`` or ``"zoo:motion/stan-self"``)."""
    key = name[len(PREFIX):] if name.startswith(PREFIX) else name
    folder = Path(root) / key
    if not (folder / "config.json").is_file():
        have = available(root)
        raise FileNotFoundError(
            f"no zoo model {key!r} under {root}; available: {have or 'none'}. "
            "Build the zoo with `stanlib experiments zoo` (trains the missing models, ~1 CPU hour in all).")
    return folder


def load(name: str, device: str | torch.device = "cpu", root: Path = ZOO_DIR):
    """Rebuild zoo model ``name`` (e.g. ``"motion/stan-self"``) in eval mode on ``device``."""
    return load_folder(resolve(name, root), device)


def load_folder(folder: Path, device: str | torch.device = "cpu"):
    """Rebuild the zoo model stored in ``folder`` (what :func:`pack` wrote) in eval mode."""
    from safetensors.torch import load_file


    folder = Path(folder)
    data = json.loads((folder / "config.json").read_text())
    info = data.get("extra", {}).get("zoo", {})
    tensors = load_file(str(folder / "model.safetensors"))
    if info.get("from_base"):
        clip = _clip_of(data)
        if info.get("base") and _sha1(_tiny_clip_file(clip)) != info["base"]:
            raise ValueError(f"{folder}: stored against a tiny CLIP with sha1 {info['base'][:12]}, but the "
                             f"bundled one ({_tiny_clip_file(clip)}) differs; rebuild the zoo with "
                             "`stanlib experiments zoo`")
        base = _base_tensors(clip)
        tensors.update({k: base[k] for k in info["from_base"]})
    model = STANModel(STANConfig.from_dict(data, str(folder / "config.json")))
    load_strict(model, tensors, str(folder / "model.safetensors"))
    return model.to(device).eval()


def info(name: str, root: Path = ZOO_DIR) -> dict:
    """The ``extra`` record of a zoo model (task, row, seed, recipe, head, classes, held-out scores)."""
    extra = json.loads((resolve(name, root) / "config.json").read_text()).get("extra", {})
    return {k: v for k, v in extra.items() if k != "zoo"}


def build(source: Path, root: Path = ZOO_DIR, names: Optional[list[str]] = None) -> list[tuple[str, dict]]:
    """Pack ``source/<task>/<row>/seed0`` (``stanlib experiments run --save-models source``) into the zoo."""
    out = []
    for task, rows in ZOO_MODELS.items():
        for row in rows:
            name = f"{task}/{row}"
            if names is not None and name not in names:
                continue
            src = Path(source) / task / row / "seed0"
            if not (src / "config.json").is_file():
                raise FileNotFoundError(f"{src}: no saved model; run `stanlib experiments run --tasks {task} "
                                        f"--rows {row} --seeds 0 --save-models {source}` first")
            out.append((name, pack(src, Path(root) / task / row)))
    for name, (task, row, _) in PAPER_MODELS.items():
        if names is not None and name not in names:
            continue
        src = Path(source) / PAPER_SOURCE / task / row / "seed0"
        if not (src / "config.json").is_file():
            raise FileNotFoundError(f"{src}: no saved model; run `stanlib experiments zoo` (it trains the missing "
                                    "ones)")
        out.append((name, pack(src, Path(root) / name)))
    return out
