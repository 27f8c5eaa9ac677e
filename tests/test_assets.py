"""stanlib.assets: the run-time files ship inside the package and are found next to it."""
from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest

from stanlib import assets

REPO = Path(__file__).resolve().parents[1]
# The experiments' result caches are keyed on these bytes (stanlib.teaching.experiments.weights_digest):
# re-training the tiny CLIP invalidates every cached result, so it must be a deliberate change.
TINY_CLIP_SHA1 = "0cf212c567118e88bf74af028be1f9fde1e7b061"


def test_every_asset_is_inside_the_package():
    package = REPO / "stanlib"
    for path in (assets.CONFIGS / "stan-tiny.json", assets.TINY_CLIP, assets.TINY_CLIP.parent / "config.json",
                 assets.TINY_STAN / "config.json", assets.TINY_STAN / "model.safetensors",
                 assets.VIDEOS / "index.json"):
        assert path.is_file(), f"{path} is missing"
        assert package in path.resolve().parents, f"{path} is outside the package: the wheel would not hold it"


def test_tiny_clip_bytes_are_unchanged():
    digest = hashlib.sha1(assets.TINY_CLIP.read_bytes()).hexdigest()
    assert digest == TINY_CLIP_SHA1, ("the bundled tiny CLIP changed: every cached experiment result is now stale; "
                                      "update TINY_CLIP_SHA1 only if the new weights are intended")


def test_bundled_videos_are_reversed_pairs():
    index = assets.videos()
    assert len(index) == 10 and "402" in index
    for name, entry in index.items():
        assert assets.video(name).is_file()
        assert index[entry["twin"]]["twin"] == name, f"{name}: its twin's twin is not itself"
        assert entry["class"].removeprefix("Something ") == entry["caption"].split(" ", 3)[3]
    assert assets.video("402.mp4") == assets.video("402")
    files = sorted(p.stem for p in assets.VIDEOS.glob("*.mp4"))
    assert files == sorted(index), "videos/ and videos/index.json disagree"
    assert json.loads((assets.TINY_STAN / "config.json").read_text())["extra"]["classes"]


def test_unknown_video_and_missing_file_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no bundled video '999'; choose one of \['400'"):
        assets.video("999")
    with pytest.raises(FileNotFoundError, match="Reinstall stanlib"):
        assets.require(tmp_path / "gone.safetensors")


def test_project_url_is_the_one_in_pyproject():
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    assert list(urls.values()) == [assets.project_url()]


def test_data_samples_in_a_clone_and_without_one(monkeypatch):
    assert assets.repo_root() == REPO
    assert assets.data_samples("synth", "motion") == REPO / "data_samples" / "synth" / "motion"
    monkeypatch.setattr(assets, "repo_root", lambda: None)  # as in an installed wheel
    with pytest.raises(FileNotFoundError, match=r"stanlib synth motion --out data_samples/synth/motion"):
        assets.data_samples("synth", "motion")
    with pytest.raises(FileNotFoundError, match=r"data_samples/fixtures/msrvtt is not installed.*git clone"):
        assets.data_samples("fixtures", "msrvtt")


def test_presets_use_the_bundled_tiny_clip():
    from stanlib.engine.presets import get_preset

    for name in ("tiny-motion", "tiny-appearance", "tiny-captions"):
        assert get_preset(name).model.pretrained == "bundled"
