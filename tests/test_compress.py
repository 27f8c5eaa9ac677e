"""Tests for ``stanlib data compress`` (stanlib.data.compress): layout and names kept, frame rate and
size of the outputs, annotation files copied, bad videos reported and skipped, resuming."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from stanlib.data import decord_available, open_video
from stanlib.data.compress import (PART_SUFFIX, SETTINGS_FILE, CompressSettings, compress_dataset, compress_video,
                                   output_size)
from stanlib.data.tools import cli_main
from stanlib.data.video import decode_frame_code, test_pattern, write_video

FIXTURES = Path(__file__).resolve().parents[1] / "data_samples" / "fixtures"
BACKENDS = [pytest.param("decord", marks=pytest.mark.skipif(not decord_available(), reason="decord not installed")),
            "pyav"]


def frames_of(path: Path, backend: str = "pyav"):
    with open_video(path, backend) as reader:
        return reader.get_batch(list(range(len(reader)))), reader.fps


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A tiny dataset: nested videos (.mp4, .avi, .webm name), annotations, two bad videos, an archive."""
    src = tmp_path / "src"
    write_video(src / "videos" / "all" / "v0.mp4", test_pattern(30, 48, 64, seed=1), fps=30)
    write_video(src / "videos" / "all" / "v1.avi", test_pattern(20, 48, 64, seed=2), fps=20)
    # SSv2 ships VP9 .webm files (copied from the fixtures: VP9 encoding fails once decord is imported);
    # the H.264 MP4 written under that name must decode just as well
    (src / "videos" / "other").mkdir(parents=True)
    shutil.copy(FIXTURES / "ssv2" / "20bn-something-something-v2" / "42326.webm", src / "videos" / "other" / "123.webm")
    (src / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video" * 10)
    (src / "videos" / "empty.mp4").write_bytes(b"")
    (src / "annotations.json").write_text(json.dumps({"v0": "a caption", "v1": "another"}))
    (src / "splits").mkdir()
    (src / "splits" / "train.csv").write_text("video_id,sentence\nv0,a caption\n")
    (src / "download.zip").write_bytes(b"PK not copied")
    return src


def test_output_size_scales_the_short_side_and_never_enlarges():
    assert output_size(640, 360, 224) == (398, 224)
    assert output_size(360, 640, 224) == (224, 398)  # portrait
    assert output_size(100, 50, 224) == (100, 50)    # smaller already: kept
    assert output_size(161, 121, 500) == (160, 120)  # H.264 4:2:0 needs even sides


def test_bad_settings_name_the_value_and_the_fix():
    with pytest.raises(ValueError, match="fps must be positive.*--fps 3"):
        CompressSettings(fps=0, short_side=224)
    with pytest.raises(ValueError, match="unknown x264 preset 'quick'"):
        CompressSettings(fps=3, short_side=224, preset="quick")
    with pytest.raises(ValueError, match="crf must be in 0..51"):
        CompressSettings(fps=3, short_side=224, crf=80)
    with pytest.raises(ValueError, match="unknown x264 tune 'fast'"):
        CompressSettings(fps=3, short_side=224, tune="fast")
    CompressSettings(fps=3, short_side=224, tune="fastdecode,zerolatency")  # x264 takes a comma list


def test_layout_names_annotations_kept_and_bad_videos_reported(dataset: Path, tmp_path: Path):
    dst = tmp_path / "dst"
    report = compress_dataset(dataset, dst, CompressSettings(fps=10, short_side=32), workers=0, progress=False)
    assert report.compressed == 3 and report.already_done == 0
    assert sorted(rel for rel, _ in report.bad) == ["videos/broken.mp4", "videos/empty.mp4"]
    reasons = dict(report.bad)
    assert "empty file" in reasons["videos/empty.mp4"] and reasons["videos/broken.mp4"]
    assert report.not_copied == ["download.zip"]
    written = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
    assert written == [SETTINGS_FILE, "annotations.json", "splits/train.csv", "videos/all/v0.mp4",
                       "videos/all/v1.avi", "videos/other/123.webm"]
    assert (dst / "annotations.json").read_bytes() == (dataset / "annotations.json").read_bytes()
    assert (dst / "splits" / "train.csv").read_bytes() == (dataset / "splits" / "train.csv").read_bytes()
    for name in ("videos/all/v0.mp4", "videos/all/v1.avi", "videos/other/123.webm"):
        assert (dst / name).read_bytes()[4:8] == b"ftyp"  # MP4 data under the original name
        for backend in ("decord", "pyav") if decord_available() else ("pyav",):
            assert len(frames_of(dst / name, backend)[0]) > 0
    summary = report.summary()
    assert "videos/broken.mp4" in summary and "2 bad videos skipped" in summary


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_count_at_the_new_fps_and_the_nearest_frames(tmp_path: Path, backend: str):
    src = write_video(tmp_path / "v.mp4", test_pattern(30, 48, 64), fps=30)
    info = compress_video(src, tmp_path / "out" / "v.mp4", CompressSettings(fps=10, short_side=224))
    frames, fps = frames_of(tmp_path / "out" / "v.mp4", backend)
    assert info["frames"] == len(frames) == 10 and fps == pytest.approx(10)
    assert (info["width"], info["height"]) == (64, 48)  # short side 48 < 224: not enlarged
    assert decode_frame_code(frames) == list(range(0, 30, 3))  # the source frame at each time k / 10 s
    # 25 -> 10 fps: 30 source frames (1.2 s) give 12 frames
    src = write_video(tmp_path / "w.mp4", test_pattern(30, 48, 64), fps=25)
    assert compress_video(src, tmp_path / "out" / "w.mp4", CompressSettings(fps=10, short_side=224))["frames"] == 12
    # a source slower than --fps keeps its own frames: nothing is repeated
    src = write_video(tmp_path / "s.mp4", test_pattern(8, 48, 64), fps=4)
    info = compress_video(src, tmp_path / "out" / "s.mp4", CompressSettings(fps=10, short_side=224))
    assert info["frames"] == 8 and info["fps"] == pytest.approx(4)


def test_short_side_scaled_with_the_aspect_ratio(tmp_path: Path):
    src = write_video(tmp_path / "v.mp4", test_pattern(6, 120, 160), fps=25)
    info = compress_video(src, tmp_path / "small.mp4", CompressSettings(fps=25, short_side=64))
    frames, _ = frames_of(tmp_path / "small.mp4")
    assert frames.shape == (6, 64, 84, 3) and (info["width"], info["height"]) == (84, 64)
    src = write_video(tmp_path / "p.mp4", test_pattern(6, 160, 120), fps=25)  # portrait
    compress_video(src, tmp_path / "portrait.mp4", CompressSettings(fps=25, short_side=64))
    assert frames_of(tmp_path / "portrait.mp4")[0].shape == (6, 84, 64, 3)


def test_resume_keeps_done_videos_and_redoes_partial_ones(dataset: Path, tmp_path: Path):
    dst, settings = tmp_path / "dst", CompressSettings(fps=10, short_side=32)
    compress_dataset(dataset, dst, settings, workers=0, progress=False)
    done = dst / "videos" / "all" / "v0.mp4"
    stamp = done.stat().st_mtime_ns
    again = compress_dataset(dataset, dst, settings, workers=0, progress=False)
    assert (again.compressed, again.already_done) == (0, 3) and done.stat().st_mtime_ns == stamp
    # a run killed while writing v1.avi leaves only the .part file: the next run redoes it
    redo = dst / "videos" / "all" / "v1.avi"
    redo.unlink()
    part = redo.with_name(redo.name + PART_SUFFIX)
    part.write_bytes(b"half a video")
    third = compress_dataset(dataset, dst, settings, workers=0, progress=False)
    assert (third.compressed, third.already_done) == (1, 2)
    assert not part.exists() and len(frames_of(redo)[0]) == 10
    assert done.stat().st_mtime_ns == stamp
    # a source newer than its output (re-downloaded) is redone too
    os.utime(dataset / "videos" / "all" / "v0.mp4", ns=(stamp + 10**9, stamp + 10**9))
    assert compress_dataset(dataset, dst, settings, workers=0, progress=False).compressed == 1


def test_other_settings_into_the_same_destination_are_refused(dataset: Path, tmp_path: Path):
    dst = tmp_path / "dst"
    compress_dataset(dataset, dst, CompressSettings(fps=10, short_side=32), workers=0, progress=False)
    with pytest.raises(ValueError, match=r"other settings \(fps 10.* -> 5.*--overwrite"):
        compress_dataset(dataset, dst, CompressSettings(fps=5, short_side=32), workers=0, progress=False)
    report = compress_dataset(dataset, dst, CompressSettings(fps=5, short_side=32), workers=0, progress=False,
                              overwrite=True)
    assert report.compressed == 3 and len(frames_of(dst / "videos" / "all" / "v0.mp4")[0]) == 5


def test_parallel_workers_give_the_same_result(dataset: Path, tmp_path: Path):
    report = compress_dataset(dataset, tmp_path / "dst", CompressSettings(fps=10, short_side=32), workers=2,
                              progress=False)
    assert report.compressed == 3 and len(report.bad) == 2
    assert len(frames_of(tmp_path / "dst" / "videos" / "all" / "v0.mp4")[0]) == 10


def test_command_line_exit_codes_and_messages(dataset: Path, tmp_path: Path, capsys):
    dst = tmp_path / "dst"
    args = ["compress", str(dataset), str(dst), "--fps", "10", "--short-side", "32", "--workers", "1", "--tune", "none"]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "compressed 3 videos" in out and "videos/broken.mp4" in out
    assert cli_main(args + ["--strict"]) == 1  # bad videos found (the good ones are already done)
    assert "3 already done" in capsys.readouterr().out
    assert json.loads((dst / SETTINGS_FILE).read_text())["tune"] is None
    assert cli_main(["compress", str(tmp_path / "nope"), str(dst), "--fps", "3", "--short-side", "224"]) == 2
    assert "source folder" in capsys.readouterr().err
    assert cli_main(["compress", str(dataset), str(dataset / "out"), "--fps", "3", "--short-side", "224"]) == 2
    assert "inside the source" in capsys.readouterr().err
    (tmp_path / "novideo").mkdir()
    assert cli_main(["compress", str(tmp_path / "novideo"), str(dst), "--fps", "3", "--short-side", "224"]) == 2
    assert "no videos under" in capsys.readouterr().err
