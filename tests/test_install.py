"""stanlib works from an installed wheel, away from the repository.

Builds the wheel from a copy of the sources (offline: ``python -m build --no-isolation``), installs it
with ``pip install --no-deps --target`` into a temporary folder and runs, in a fresh Python whose
current folder is empty and whose import path is only that folder plus this environment's
site-packages (``python -S``: no ``.pth`` files, so the editable install of the checkout is not
seen): the bundled tiny CLIP, the bundled tiny STAN, a prediction on a bundled clip, and
``stanlib demo --quick``. About a minute.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_WHEEL_MB = 50  # the wheel carries tiny models and clips, not datasets
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
(PROJECT_URL,) = PROJECT["urls"].values()

CHECK = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    import torch
    import stanlib

    target = Path(sys.argv[1]).resolve()
    foreign = sorted(name for name, module in sys.modules.items() if name.startswith("stanlib")
                     and getattr(module, "__file__", None) and target not in Path(module.__file__).resolve().parents)
    assert not foreign, f"stanlib modules imported from outside the installed wheel: {foreign}"

    clip_model = stanlib.create_model("stan-tiny", pretrained="bundled", depth=2).eval()
    with torch.no_grad():
        emb = clip_model.encode_video(torch.zeros(1, 8, 3, clip_model.image_size, clip_model.image_size))
    model = stanlib.from_pretrained(stanlib.assets.TINY_STAN)
    predictor = stanlib.Predictor(model)
    scores = stanlib.Predictor("zoo:captions/stan-self").similarity(
        stanlib.assets.video("402"), ["a yellow cross fades out", "a yellow cross fades in"])
    top = predictor.classify(stanlib.assets.video("402"), topk=1)
    from stanlib.weights import zoo

    zoo_models = zoo.available()
    if zoo_models:  # the teaching zoo loads from the wheel too
        zoo.load(zoo_models[0])
    print(json.dumps({"file": stanlib.__file__, "repo_root": str(stanlib.assets.repo_root()),
                      "project_url": stanlib.assets.project_url(), "embedding": list(emb.shape),
                      "scores": [float(s) for s in scores], "top": top[0][0], "zoo": zoo_models}))
""")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (the checkout itself is left untouched)."""
    pytest.importorskip("build", reason="needs the `build` package: pip install -e '.[dev]'")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "stanlib", src / "stanlib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(src)],
                         capture_output=True, text=True)
    log = res.stdout + res.stderr
    assert res.returncode == 0, f"building the wheel failed:\n{log[-3000:]}"
    assert "deprecat" not in log.lower(), f"the build prints a deprecation warning:\n{log[-3000:]}"
    (path,) = out.glob("stanlib-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("target")
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                          "--disable-pip-version-check", "--target", str(target), str(wheel)],
                         capture_output=True, text=True)
    assert res.returncode == 0, f"pip install --target failed:\n{res.stdout}{res.stderr}"
    return target


def _run_isolated(args: list[str], target: Path, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -S ARGS`` in ``cwd`` with only ``target`` and this environment's site-packages importable."""
    paths = dict.fromkeys([str(target), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=os.pathsep.join(paths), HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_wheel_holds_code_and_assets_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("stanlib/assets/__init__.py", "stanlib/assets/configs/stan-tiny.json",
                   "stanlib/assets/tiny_clip/stan-tiny.safetensors", "stanlib/assets/tiny_clip/config.json",
                   "stanlib/assets/tiny_clip_v2/stan-tiny-v2.safetensors", "stanlib/assets/configs/stan-tiny-v2.json",
                   "stanlib/assets/zoo/motion/stan-self/config.json", "stanlib/assets/zoo/motion/stan-self/model.safetensors",
                   "stanlib/assets/videos/index.json", "stanlib/assets/videos/402.mp4", "stanlib/teaching/synth.py"):
        assert needed in names, f"{needed} is not in {wheel.name}: check [tool.setuptools.package-data]"
    stray = [n for n in names if n.startswith(("tests/", "data_samples/", "notebooks/", "benchmarks/", "bench.py"))
             or "__pycache__" in n]
    assert not stray, f"the wheel should hold only the package: {stray[:10]}"
    size_mb = wheel.stat().st_size / 1e6
    assert size_mb < MAX_WHEEL_MB, f"{wheel.name} is {size_mb:.1f} MB: keep datasets out of stanlib/assets"
    meta = zipfile.ZipFile(wheel).read(f"stanlib-{wheel.name.split('-')[1]}.dist-info/METADATA").decode()
    assert "License-Expression: Apache-2.0" in meta
    urls = [line for line in meta.splitlines() if line.startswith("Project-URL:")]
    assert len(urls) == 1 and urls[0].endswith(", " + PROJECT_URL), urls
    assert "Provides-Extra: notebooks" in meta and "Provides-Extra: dev" in meta


def test_installed_wheel_runs_away_from_the_checkout(installed, tmp_path):
    res = _run_isolated(["-c", CHECK, str(installed)], installed, tmp_path)
    assert res.returncode == 0, f"the installed wheel failed:\n{res.stdout[-2000:]}{res.stderr[-4000:]}"
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).resolve() == (installed / "stanlib" / "__init__.py").resolve()
    assert out["repo_root"] == "None", "an installed wheel must not look for a repository"
    assert out["project_url"] == PROJECT_URL
    assert out["embedding"][0] == 1
    fades_out, fades_in = out["scores"]
    assert fades_out > fades_in, out  # the bundled model tells the bundled clip from its reversal
    assert out["top"] == "Something fades out"
    from stanlib.weights import zoo

    assert out["zoo"] == zoo.available(REPO / "stanlib" / "assets" / "zoo"), "the wheel lacks zoo models"
    assert (installed / "bin" / "stanlib").is_file(), "the `stanlib` console script was not installed"


def test_installed_wheel_runs_the_quick_demo(installed, tmp_path):
    res = _run_isolated(["-m", "stanlib", "demo", "--quick", "--threads", "1"], installed, tmp_path)
    assert res.returncode == 0, f"stanlib demo --quick failed:\n{res.stdout[-2000:]}{res.stderr[-4000:]}"
    assert "demo wall time" in res.stdout
    assert (tmp_path / "runs" / "demo" / "results.json").is_file()
    assert (tmp_path / "runs" / "demo" / "stan_self" / "config.json").is_file()


def test_installed_wheel_says_how_to_get_the_synthetic_data(installed, tmp_path):
    res = _run_isolated(["-c", "import stanlib.assets as a; a.data_samples('synth', 'motion')"], installed, tmp_path)
    assert res.returncode == 1
    assert "stanlib synth motion --out data_samples/synth/motion" in res.stderr
    assert f"git clone {PROJECT_URL}" in res.stderr
