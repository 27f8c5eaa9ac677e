"""``stanlib data compress SRC DST --fps F --short-side S``: re-encode a dataset's videos once.

Training decodes every clip again in every epoch, so the cost of decoding is paid hundreds of times.
The STAN recipes sample 8-12 frames per clip (TSN segments), which a few frames per second of video
already provide; a 640x360 30 fps source holds ~10x more pixels per frame and ~10x more frames than
the clip needs. This tool re-encodes every video once, at ``--fps`` frames per second and with the
shorter side scaled to ``--short-side`` pixels, so later epochs decode far less.

What it does, for every file under SRC:

* **videos** (the extensions of :data:`stanlib.data.video.VIDEO_EXTENSIONS`) are decoded with PyAV
  and written as H.264 in an MP4 container (x264 quality ``--crf 23``, ``--tune fastdecode`` so that
  each later decode is cheaper), video stream only (audio and subtitles are left out),
  at the *same relative path and file name* as in SRC. Readers find videos by name, so the same
  ``build_dataset(name, DST, ...)`` call works on DST. A ``.webm``/``.avi`` name then holds MP4
  data: FFmpeg (decord and PyAV) recognises the container from the content, not the extension.
* **frame rate**: output frame ``k`` is the source frame nearest to time ``k / fps``; a source with
  fewer frames per second than ``--fps`` keeps its own frame rate (frames are never duplicated).
  A 10 s clip at 30 fps becomes 30 frames at ``--fps 3``.
* **size**: the shorter side becomes ``--short-side`` (aspect ratio kept, both sides even as
  H.264's 4:2:0 format needs); videos already smaller are not enlarged.
* **other files** (annotations: ``.json``, ``.csv``, ``.txt``, ``.pkl``...) are copied unchanged;
  archives (``.zip``, ``.tar``...) are not copied.
* **bad videos** (unreadable, truncated, no video stream) are skipped, listed at the end with the
  reason, and not written to DST. The exit code is 0 unless ``--strict`` is given (then 1 when a
  video was bad).
* **resumable**: each video is written to ``NAME.part`` and renamed to ``NAME`` only when complete,
  so an interrupted run leaves no half-written video under a real name. A second run skips videos
  whose output exists and is newer than the source, and redoes the rest (``.part`` leftovers
  included). The settings are kept in ``DST/.stanlib_compress.json``; a run with other settings
  into the same DST stops with an error instead of mixing two encodings (``--overwrite`` redoes all).
* runs on ``--workers`` processes (default: all CPUs), with a progress bar.

Python use::

    from stanlib.data.compress import CompressSettings, compress_dataset
    report = compress_dataset("msrvtt", "msrvtt_224_3fps", CompressSettings(fps=3, short_side=224))
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

from tqdm import tqdm

from .video import VIDEO_EXTENSIONS, VideoDecodeError, _decoding, _check_file

ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")
SETTINGS_FILE = ".stanlib_compress.json"
X264_TUNES = ("fastdecode", "film", "animation", "grain", "stillimage", "psnr", "ssim", "zerolatency")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
PART_SUFFIX = ".part"


@dataclass(frozen=True)
class CompressSettings:
    """How videos are re-encoded (H.264 / yuv420p in MP4).

    ``fps``: output frame rate (sources with fewer frames per second keep theirs). ``short_side``:
    pixels of the shorter side after scaling (never enlarged; rounded down to even). ``crf``: x264
    quality, 0-51, lower is better and larger (23 is x264's default; 18 is visually lossless).
    ``preset``: x264 speed preset (``ultrafast`` ... ``veryslow``). ``gop``: frames between key frames
    (None: about 2 seconds, ``round(2 * fps)``). ``tune``: x264 tuning; ``fastdecode`` (no CABAC, no
    deblocking filter) makes decoding ~1.5x faster for ~25% larger files, which pays off when every
    epoch decodes the videos again; None: x264's default.
    """

    fps: float
    short_side: int
    crf: int = 23
    preset: str = "fast"
    gop: Optional[int] = None
    tune: Optional[str] = "fastdecode"

    def __post_init__(self):
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps!r} (e.g. --fps 3)")
        if int(self.short_side) < 2:
            raise ValueError(f"short_side must be at least 2 pixels, got {self.short_side!r} (e.g. --short-side 224)")
        if not 0 <= int(self.crf) <= 51:
            raise ValueError(f"crf must be in 0..51, got {self.crf!r} (23 is x264's default)")
        if self.preset not in X264_PRESETS:
            raise ValueError(f"unknown x264 preset {self.preset!r}; use one of {', '.join(X264_PRESETS)}")
        for part in (self.tune or "").split(","):
            if part and part not in X264_TUNES:
                raise ValueError(f"unknown x264 tune {part!r}; use one of {', '.join(X264_TUNES)} or none")
        if self.gop is not None and int(self.gop) < 1:
            raise ValueError(f"gop must be at least 1 frame, got {self.gop!r}")

    def key_frame_interval(self, fps: float) -> int:
        return int(self.gop) if self.gop else max(1, round(2 * fps))


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side at ``short_side`` (never enlarged), both even.

    >>> output_size(640, 360, 224)
    (398, 224)
    """
    scale = min(1.0, short_side / min(width, height))
    even = lambda x: max(2, int(round(x * scale)) // 2 * 2)  # noqa: E731
    return even(width), even(height)


# --------------------------------------------------------------------------------------------------
# one video
# --------------------------------------------------------------------------------------------------
def compress_video(src: str | os.PathLike, dst: str | os.PathLike, settings: CompressSettings) -> dict:
    """Re-encode one video to ``dst`` (written as ``dst.part``, then renamed).

    Returns ``{"frames", "width", "height", "fps", "in_bytes", "out_bytes"}``. Raises
    :class:`~stanlib.data.video.VideoDecodeError` naming the file when the source cannot be decoded
    (no output is left behind then).
    """
    import av

    src, dst = Path(src), Path(dst)
    _check_file(src)
    part = dst.with_name(dst.name + PART_SUFFIX)
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _decoding(src, "cannot open"):
            source = av.open(str(src))
        with source:
            if not source.streams.video:
                raise VideoDecodeError(src, "no video stream in the file")
            stream = source.streams.video[0]
            stream.thread_count = 1  # parallelism comes from the worker processes
            rate = stream.average_rate or stream.guessed_rate
            src_fps = float(rate) if rate else 0.0
            if src_fps <= 0:
                raise VideoDecodeError(src, "the file gives no frame rate")
            out_fps = Fraction(settings.fps).limit_denominator(1001) if settings.fps < src_fps else \
                Fraction(rate).limit_denominator(1001)
            width, height = output_size(stream.codec_context.width, stream.codec_context.height,
                                        int(settings.short_side))
            frames = _encode(src, source, stream, part, out_fps, src_fps, width, height, settings)
        if frames == 0:
            raise VideoDecodeError(src, "no frame could be decoded")
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dst)  # atomic: dst is either absent or complete
    return {"frames": frames, "width": width, "height": height, "fps": float(out_fps),
            "in_bytes": src.stat().st_size, "out_bytes": dst.stat().st_size}


def _encode(src: Path, source, stream, part: Path, out_fps: Fraction, src_fps: float, width: int, height: int,
            settings: CompressSettings) -> int:
    """Decode ``stream``, keep the frame nearest to each output time ``k / out_fps``, encode to ``part``."""
    import av

    half = 0.5 / src_fps  # a source frame stands for the half frame period around its time
    written, start, index = 0, None, 0
    with av.open(str(part), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=out_fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.gop_size = settings.key_frame_interval(float(out_fps))
        video.codec_context.thread_count = 1
        video.options = {"crf": str(int(settings.crf)), "preset": settings.preset,
                         **({"tune": settings.tune} if settings.tune else {})}
        slot = 0  # next output frame number; its time is slot / out_fps
        with _decoding(src, "decoding frames failed"):
            for frame in source.decode(stream):
                t = frame.time if frame.time is not None else index / src_fps
                index += 1
                start = t if start is None else start
                t -= start
                if t + half < slot / out_fps:
                    continue  # between two output times: not needed
                image = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
                image.pts, image.time_base = slot, 1 / out_fps  # output time slot / out_fps
                out.mux(video.encode(image))
                written += 1
                # the next slot after this frame's time (a source gap leaves gaps, nothing is repeated)
                slot = max(slot + 1, math.floor((t + half) * out_fps) + 1)
        out.mux(video.encode())
    return written


# --------------------------------------------------------------------------------------------------
# a whole folder
# --------------------------------------------------------------------------------------------------
@dataclass
class CompressReport:
    """What :func:`compress_dataset` did. ``bad``: (relative path, reason) of each skipped video."""

    compressed: int = 0
    already_done: int = 0
    copied: int = 0
    not_copied: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    in_bytes: int = 0
    out_bytes: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        ratio = f" ({self.in_bytes / self.out_bytes:.1f}x smaller)" if self.out_bytes else ""
        lines = [f"compressed {self.compressed} videos, {self.in_bytes / 2**20:.1f} MiB -> "
                 f"{self.out_bytes / 2**20:.1f} MiB{ratio}, in {self.seconds:.0f} s; {self.already_done} already "
                 f"done (kept); {self.copied} other files copied; {len(self.bad)} bad videos skipped"]
        if self.not_copied:
            lines.append(f"archives not copied: {', '.join(self.not_copied[:10])}"
                         + (f" and {len(self.not_copied) - 10} more" if len(self.not_copied) > 10 else ""))
        if self.bad:
            lines.append("bad videos (not written; `stanlib data check` lists them too, and --write-clean "
                         "writes an annotation list without them):")
            lines += [f"  {rel}: {reason}" for rel, reason in self.bad]
        return "\n".join(lines)


def find_files(root: Path) -> tuple[list[Path], list[Path]]:
    """(videos, other files) under ``root`` as sorted relative paths; ``.part`` leftovers are left out."""
    videos, others = [], []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.endswith(PART_SUFFIX) or path.name == SETTINGS_FILE:
            continue
        rel = path.relative_to(root)
        (videos if path.suffix.lower() in VIDEO_EXTENSIONS else others).append(rel)
    return videos, others


def _is_done(src: Path, dst: Path) -> bool:
    """An output exists (renamed only when complete) and is not older than its source."""
    try:
        out = dst.stat()
    except FileNotFoundError:
        return False
    return out.st_size > 0 and out.st_mtime >= src.stat().st_mtime


def _job(args: tuple[Path, Path, CompressSettings]) -> tuple[Path, Optional[dict], Optional[str]]:
    """Worker: (source, result or None, reason or None). Decoding errors become a reason, not a crash."""
    src, dst, settings = args
    try:
        return src, compress_video(src, dst, settings), None
    except VideoDecodeError as err:
        return src, None, err.reason
    except Exception as err:  # an encoder failure on one file must not stop the other thousands
        return src, None, f"{type(err).__name__}: {err}"


def _check_settings(dst: Path, settings: CompressSettings, overwrite: bool) -> None:
    """Refuse to add videos of other settings to a DST written before (unless overwriting)."""
    path = dst / SETTINGS_FILE
    wanted = asdict(settings)
    if path.is_file() and not overwrite:
        try:
            before = json.loads(path.read_text())
        except (OSError, ValueError):
            before = None
        if before is not None and before != wanted:
            changed = ", ".join(f"{k} {before.get(k)!r} -> {v!r}" for k, v in wanted.items() if before.get(k) != v)
            raise ValueError(f"{dst} holds videos compressed with other settings ({changed}); use another "
                             "destination, the same settings, or --overwrite to re-encode everything")
    dst.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=1) + "\n")


def compress_dataset(src: str | os.PathLike, dst: str | os.PathLike, settings: CompressSettings,
                     workers: Optional[int] = None, overwrite: bool = False, progress: bool = True) -> CompressReport:
    """Re-encode every video under ``src`` into ``dst`` (same relative paths) and copy the other files.

    ``workers``: processes (None: all CPUs; 0 or 1: in this process). ``overwrite``: re-encode videos
    that are already done. Bad videos are reported in the result, not raised.
    """
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if not src.is_dir():
        raise FileNotFoundError(f"source folder {src} not found (SRC must be the dataset's root folder)")
    if dst == src or src in dst.parents:
        raise ValueError(f"destination {dst} is inside the source {src}: choose a folder outside it "
                         "(the output would be read back as input)")
    videos, others = find_files(src)
    if not videos:
        raise FileNotFoundError(f"no videos under {src} (looked for {', '.join(VIDEO_EXTENSIONS)})")
    _check_settings(dst, settings, overwrite)
    report = CompressReport()
    start = time.perf_counter()
    for rel in others:
        if rel.suffix.lower() in ARCHIVE_SUFFIXES:
            report.not_copied.append(str(rel))
            continue
        target = dst / rel
        source_stat = (src / rel).stat()
        if target.is_file() and target.stat().st_size == source_stat.st_size \
                and target.stat().st_mtime >= source_stat.st_mtime:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
        report.copied += 1
    todo = []
    for rel in videos:
        if not overwrite and _is_done(src / rel, dst / rel):
            report.already_done += 1
        else:
            todo.append((src / rel, dst / rel, settings))
    workers = (os.cpu_count() or 1) if workers is None else workers
    bar = tqdm(total=len(todo), desc="compressing", unit="video", disable=not progress, file=sys.stderr)
    if workers <= 1 or len(todo) <= 1:
        results = map(_job, todo)
        pool = None
    else:
        import multiprocessing

        pool = multiprocessing.Pool(min(workers, len(todo)))  # the platform default, as DataLoader
        results = pool.imap_unordered(_job, todo)
    try:
        for path, result, reason in results:
            if result is None:
                report.bad.append((str(path.relative_to(src)), reason))
            else:
                report.compressed += 1
                report.in_bytes += result["in_bytes"]
                report.out_bytes += result["out_bytes"]
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    report.bad.sort()
    report.seconds = time.perf_counter() - start
    return report


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------
def compress_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="stanlib data compress",
        description="Re-encode a dataset's videos once (H.264 MP4, lower frame rate, smaller frames), keeping "
                    "the folder layout and file names so the same dataset readers work on DST. Other files "
                    "(annotations) are copied; bad videos are skipped and listed; an interrupted run resumes.",
        epilog="example: stanlib data compress msrvtt msrvtt_224_3fps --fps 3 --short-side 224")
    p.add_argument("src", type=Path, help="the dataset's root folder")
    p.add_argument("dst", type=Path, help="the output folder (created; must be outside SRC)")
    p.add_argument("--fps", type=float, required=True,
                   help="output frames per second (12-frame TSN clips of >= 10 s videos: 3 is plenty)")
    p.add_argument("--short-side", type=int, required=True, help="pixels of the shorter side, e.g. 224")
    p.add_argument("--crf", type=int, default=23, help="x264 quality 0-51, lower is better/larger (default 23)")
    p.add_argument("--preset", default="fast", help="x264 speed preset (default fast)")
    p.add_argument("--gop", type=int, default=None, help="frames between key frames (default: 2 s of video)")
    p.add_argument("--tune", default="fastdecode",
                   help="x264 tuning (default fastdecode: ~1.5x faster decoding, ~25%% larger files; none: off)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    p.add_argument("--overwrite", action="store_true", help="re-encode videos that are already done")
    p.add_argument("--strict", action="store_true", help="exit with code 1 when a video was bad")
    args = p.parse_args(list(argv))
    try:
        tune = None if args.tune.lower() in ("none", "") else args.tune
        settings = CompressSettings(args.fps, args.short_side, args.crf, args.preset, args.gop, tune)
        report = compress_dataset(args.src, args.dst, settings, args.workers, args.overwrite)
    except (ValueError, FileNotFoundError) as err:
        print(f"stanlib data compress: {err}", file=sys.stderr)
        return 2
    print(report.summary())
    return 1 if args.strict and report.bad else 0
