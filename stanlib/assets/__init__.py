"""The files stanlib needs at run time. They ship inside the package, so they are there wherever
stanlib is installed: a clone, an editable install, or a wheel from pip.

Every path below is found next to this module (``importlib.resources``), never relative to the
current folder or to a repository checkout::

    import stanlib
    from stanlib import assets

    clip = stanlib.create_clip("stan-tiny", pretrained="bundled")         # assets.TINY_CLIP
    model = stanlib.from_pretrained(assets.TINY_STAN)                      # the tiny STAN-self (motion)
    stanlib.Predictor(model).classify(assets.video("402"), topk=2)          # its own motion classes

================================  ========================================================================
``CONFIGS``                       open_clip model configs registered on import (``configs/stan-tiny.json``)
``TINY_CLIP``                     the tiny teaching CLIP, fp32 safetensors (``tiny_clip/``; its
                                  ``config.json`` records the recipe and the zero-shot curve)
``TINY_CLIP_V2``                  version 2 (``stan-tiny-v2``): also pretrained on motion, lighting and
                                  textured-scene stills, with a larger vocabulary (``tiny_clip_v2/``)
``TINY_STAN``                     the tiny STAN-self of the zoo's motion task (``zoo:motion/stan-self``)
``VIDEOS``                        ten synthetic motion test clips, five time-reversed pairs (``videos/``;
                                  :func:`video` and :func:`videos`)
``ZOO``                           the teaching zoo's trained tiny models (:mod:`stanlib.weights.zoo`)
``EXPERIMENTS``                   committed results of ``stanlib experiments`` runs
================================  ========================================================================

The larger bundled data (the synthetic datasets and the real-format fixtures, ``data_samples/`` in
the repository) is not installed: :func:`data_samples` finds it in a clone, and otherwise says how
to get it.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Optional


def _package_folder() -> Path:
    folder = resources.files(__name__)
    if not isinstance(folder, Path):
        raise RuntimeError(f"stanlib's data files are inside {folder}, not in a folder on disk (stanlib imported "
                           "from a zip archive?). Install stanlib with pip so that its files are on disk.")
    return folder


ROOT = _package_folder()
CONFIGS = ROOT / "configs"
TINY_CLIP = ROOT / "tiny_clip" / "stan-tiny.safetensors"
TINY_CLIP_V2 = ROOT / "tiny_clip_v2" / "stan-tiny-v2.safetensors"
TINY_CLIPS = {"stan-tiny": TINY_CLIP, "stan-tiny-v2": TINY_CLIP_V2}  # CLIP config name -> its bundled weights
TINY_STAN = ROOT / "zoo" / "motion" / "stan-self"   # the zoo's motion STAN-self (stanlib.weights.zoo)
VIDEOS = ROOT / "videos"
ZOO = ROOT / "zoo"
EXPERIMENTS = ROOT / "experiments"


def project_url() -> str:
    """The project's home page, declared once in ``pyproject.toml`` (``[project.urls]``): read from
    the installed package's metadata, else from ``pyproject.toml`` in a clone ("" if neither is there)."""
    from importlib import metadata

    try:
        entries = metadata.metadata("stanlib").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        entries = []
    for entry in entries:  # "Homepage, https://..."
        return entry.partition(",")[2].strip()
    root = repo_root()
    if root is not None:
        import tomllib

        urls = tomllib.loads((root / "pyproject.toml").read_text())["project"].get("urls", {})
        return next(iter(urls.values()), "")
    return ""


def require(path: Path) -> Path:
    """``path`` (a file or folder of this package) if it exists, else a FileNotFoundError that says
    how to repair the installation."""
    path = Path(path)
    if not path.exists():
        url = project_url()
        reinstall = f'pip install --force-reinstall "stanlib @ git+{url}"' if url else "pip install --force-reinstall"
        raise FileNotFoundError(f"{path} is missing: it ships inside the stanlib package, so this installation is "
                                f"incomplete. Reinstall stanlib ({reinstall}), or run `pip install -e .` in a clone.")
    return path


def videos() -> dict[str, dict]:
    """The bundled clips: ``{id: {"class", "caption", "twin"}}``, e.g. ``videos()["402"]["class"]`` is
    ``"Something fades out"`` and its ``"twin"`` ``"403"`` is the same clip played backwards."""
    return json.loads(require(VIDEOS / "index.json").read_text())


def video(name: str) -> Path:
    """Path of a bundled clip by id (``"402"`` or ``"402.mp4"``); :func:`videos` lists them."""
    stem = str(name).removesuffix(".mp4")
    index = videos()
    if stem not in index:
        raise FileNotFoundError(f"no bundled video {name!r}; choose one of {sorted(index)} "
                                "(stanlib.assets.videos() gives each one's class and caption)")
    return require(VIDEOS / f"{stem}.mp4")


def repo_root() -> Optional[Path]:
    """The repository folder when stanlib is imported from a clone (it holds ``pyproject.toml`` and
    ``data_samples/`` next to the package), else None (an installed wheel)."""
    root = ROOT.resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "data_samples").is_dir():
        return root
    return None


def data_samples(*parts: str) -> Path:
    """A path in the repository's ``data_samples/`` folder (synthetic datasets, real-format fixtures),
    e.g. ``data_samples("synth", "motion")``. It exists only in a clone: with an installed wheel a
    FileNotFoundError says how to get the data."""
    root = repo_root()
    relative = Path("data_samples", *parts)
    if root is not None and (root / relative).exists():
        return root / relative
    if parts and parts[0] == "synth":
        task = parts[1] if len(parts) > 1 else "all"
        out = Path("data_samples", "synth", *parts[1:2])
        how = (f"write the synthetic videos yourself with `stanlib synth {task} --out {out.as_posix()}` "
               "(under a minute on a CPU; the clips follow the current synthetic world, so a few rotation "
               "clips differ from the bundled ones) and pass that folder")
    else:
        how = "pass the folder of your own copy"
    where = f"not in {root}" if root is not None else "not installed with stanlib (only a clone has data_samples/)"
    clone = f"git clone {project_url()}".strip()
    raise FileNotFoundError(f"{relative.as_posix()} is {where}. Either clone the repository "
                            f"({clone}) and use its {relative.as_posix()}, or {how}.")


# the sizes of the repository's data_samples/synth sets (data_samples/synth/README.md)
SYNTH_SIZES = {"motion": {"n_train": 800, "n_test": 200, "twin_train": True, "num_frames": 8}}
SYNTH_CRF = {"motion": 0}   # lossless: a decoded twin is the exact reversal of its partner


def synth_dataset(task: str, cache: Optional[Path] = None) -> Path:
    """The synthetic teaching dataset ``task`` ("motion", "appearance", "captions") as files on disk:
    the repository's ``data_samples/synth/<task>`` in a clone; otherwise (pip install, Colab) written
    once with :mod:`stanlib.teaching.synth` into ``cache`` (default ``~/.cache/stanlib/synth/<task>``,
    or ``$STANLIB_CACHE/synth/<task>``), which takes under a minute on a CPU."""
    import os

    root = repo_root()
    if root is not None and (root / "data_samples" / "synth" / task / "videos").is_dir():
        return root / "data_samples" / "synth" / task
    from stanlib.teaching import synth

    if task not in synth.TASKS:
        raise ValueError(f"unknown synthetic task {task!r}; expected one of {list(synth.TASKS)}")
    base = Path(cache) if cache else Path(os.environ.get("STANLIB_CACHE", Path.home() / ".cache" / "stanlib")) / "synth"
    out = base / task
    if not (out / "synth_meta.json").is_file():
        print(f"writing the synthetic {task} videos to {out} (once; under a minute)")
        synth.write_task(synth.TASKS[task](**SYNTH_SIZES.get(task, {})), out, crf=SYNTH_CRF.get(task, 10),
                         overwrite=out.exists(), progress=False)
    return out
