"""``stanlib data check`` and ``stanlib data bench``.

* ``stanlib data check <dataset> --root DIR [--split S] [--write-clean out.csv]`` opens every video
  of a dataset split, decodes the frames a test clip would use (plus the first and last; ``--full``:
  every frame) and lists each missing, empty, unreadable, truncated or too-short file with its
  reason. ``--write-clean`` writes the usable items as a ``generic_text`` / ``generic_label`` CSV
  (absolute video paths; label datasets also get a ``classes.txt`` beside it), loadable with
  ``build_dataset("generic_text" | "generic_label", "out.csv")``. Exit code: 0 all good, 1 bad
  videos found, 2 unreadable annotations or an empty split.
  Files decord cannot read are read with PyAV; each is listed (``PYAV ...``) with decord's reason.
  When no class-name file exists, the classes inferred from the labels are printed, with a warning
  for names one character apart (likely typos).
  ``--write-clean`` never overwrites an annotation file of the dataset being checked (unless
  ``--force``) and never writes through a symbolic link: the file is written beside its target
  name and renamed over it, so a link there is replaced, not followed.
* ``stanlib data bench`` measures clips/s for 12-frame 224 px training clips from 320x240 mp4 files,
  decoding only the sampled frames vs decoding every frame, for several DataLoader worker counts.
  It writes its own temporary test videos unless ``--dir`` points at real ones.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .datasets import (READERS, AnnotationError, LabelAnnotations, TextAnnotations, near_duplicate_classes,
                       read_annotations)
from .transforms import train_transform
from .video import (VIDEO_EXTENSIONS, VideoDecodeError, get_backend, open_video, segment_indices,
                    test_pattern, write_video)


# ==================================================================================================
# check
# ==================================================================================================
def check_video(path: str | os.PathLike, backend: str | None = None, min_frames: int = 1,
                num_frames: int = 8, full: bool = False, chunk: int = 64) -> str | None:
    """Why a video is unusable (a short reason), or None if it decodes.

    Decodes the ``num_frames`` test-clip frames plus the first and last frame, or every frame
    (in chunks) with ``full=True``; truncated files usually fail on the last frames.
    """
    return _check(path, backend, min_frames, num_frames, full, chunk)[0]


def _check(path, backend, min_frames, num_frames, full, chunk=64) -> tuple[str | None, int, str | None]:
    """(reason or None, frame count or 0, decord's reason if PyAV read the file instead)."""
    n, fallback = 0, None
    try:
        with open_video(path, backend) as reader:
            n = len(reader)
            if n == 0:
                return "video has no frames", 0, None
            if n < min_frames:
                return f"too short: {n} frames < --min-frames {min_frames}", n, None
            if full:
                for start in range(0, n, chunk):
                    reader.get_batch(list(range(start, min(n, start + chunk))))
            else:
                reader.get_batch(sorted({0, n - 1, *segment_indices(n, num_frames, train=False)}))
            fallback = reader.decord_error
    except VideoDecodeError as err:
        return err.reason, n, None
    return None, n, fallback


class _CheckJobs(Dataset):
    """One video per item, so a DataLoader can check videos in worker processes."""

    def __init__(self, paths: list[Path], **kwargs):
        self.paths, self.kwargs = paths, kwargs

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, str | None, int, str | None]:
        return (i, *_check(self.paths[i], **self.kwargs))


def check_videos(paths: Sequence[Path], workers: int = 0, progress: bool = True, backend: str | None = None,
                 min_frames: int = 1, num_frames: int = 8, full: bool = False,
                 fallbacks: dict[int, str] | None = None) -> list[tuple[str | None, int]]:
    """(reason or None, frame count) for many files (optionally in ``workers`` processes), in order.

    ``fallbacks``: a dict that receives ``{index: decord's reason}`` for files PyAV read because
    decord could not.
    """
    jobs = _CheckJobs(list(paths), backend=backend, min_frames=min_frames, num_frames=num_frames, full=full)
    loader = DataLoader(jobs, batch_size=None, num_workers=workers)
    results: list[tuple[str | None, int]] = [(None, 0)] * len(jobs)
    for i, reason, n, fallback in tqdm(loader, total=len(jobs), desc="checking videos", unit="video",
                                       disable=not progress):
        results[i] = (reason, n)
        if fallback is not None and fallbacks is not None:
            fallbacks[i] = fallback
    return results


def _category(reason: str) -> str:
    reason = reason.split("; PyAV fails too")[0]  # decord's reason comes first
    for key in ("file not found", "empty file", "cannot open", "decoding frames failed", "truncated",
                "too short", "no frames", "is a directory", "no video stream"):
        if key in reason:
            return key
    return "other"


def _annotation_files(root: Path, source: str) -> set[Path]:
    """The files a dataset's annotations may come from: the file read and every csv/json/txt/pkl
    file in the dataset folder and one folder below it (other splits, class names, captions)."""
    folder = root if root.is_dir() else root.parent
    found = {Path(source).resolve()} if source else set()
    for pattern in ("*", "*/*"):
        found.update(p.resolve() for p in folder.glob(pattern)
                     if p.suffix.lower() in (".csv", ".json", ".txt", ".pkl", ".tsv") and p.is_file())
    return found


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a new file beside ``path`` and rename it over ``path``: a symbolic link at
    ``path`` is replaced by the file, never followed to its target."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_clean(ann: TextAnnotations | LabelAnnotations, good: Sequence[bool], out: Path,
                protected: Sequence[Path] = (), force: bool = False) -> int:
    """Write the items whose video is good as a generic CSV; returns the number of rows written.

    ``protected``: files that must not be overwritten (the dataset's annotation files); writing
    onto one of them (directly or through a link) raises ``FileExistsError`` unless ``force``.
    Files are written atomically and links at the target names are replaced, not followed.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[list[str]] = []
    if not force and out.exists() and out.resolve() in {Path(p).resolve() for p in protected}:
        raise FileExistsError(f"--write-clean {out} would overwrite {out.resolve()}, an annotation file of the "
                              "dataset being checked; write the clean list to another file (or pass --force "
                              "to replace it)")
    if isinstance(ann, TextAnnotations):
        header = ["video", "caption"]
        rows = [[str(ann.videos[v].path.resolve()), c] for c, v in zip(ann.captions, ann.caption_video) if good[v]]
    else:
        header = ["video", "label"]
        rows = [[str(rec.path.resolve()), ann.classes[lab]] for rec, lab, ok in zip(ann.videos, ann.labels, good) if ok]
        if ann.twins is not None:  # declared reversal twins travel in a twin column (dropped with a bad twin)
            header.append("twin")
            kept = [i for i, ok in enumerate(good) if ok]
            for row, i in zip(rows, kept):
                t = ann.twins[i]
                row.append(str(ann.videos[t].path.resolve()) if t >= 0 and good[t] else "")
        classes_file = out.parent / "classes.txt"
        text = "\n".join(ann.classes) + "\n"
        if classes_file.exists() or classes_file.is_symlink():  # kept as it is: only an identical one will do
            if not classes_file.is_file() or classes_file.read_text(encoding="utf-8-sig") != text:
                raise FileExistsError(f"{classes_file} exists with different classes; write the clean list "
                                      "elsewhere")
        else:
            _write_atomic(classes_file, text)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    _write_atomic(out, buffer.getvalue())
    return len(rows)


def check_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="stanlib data check", description="List unusable videos of a dataset split.")
    p.add_argument("dataset", choices=sorted(READERS))
    p.add_argument("--root", required=True, help="dataset folder (generic_*: or the annotation file)")
    p.add_argument("--split", default="train")
    p.add_argument("--video-dir", default=None, help="look for videos here instead of anywhere under --root")
    p.add_argument("--backend", default=None, choices=["decord", "pyav"], help="default: decord if installed")
    p.add_argument("--num-frames", type=int, default=8, help="frames of the test clip to decode (default 8)")
    p.add_argument("--min-frames", type=int, default=1, help="report videos with fewer frames (default 1)")
    p.add_argument("--full", action="store_true", help="decode every frame (slow, finds more damage)")
    p.add_argument("--workers", type=int, default=0, help="parallel worker processes")
    p.add_argument("--write-clean", type=Path, default=None, metavar="OUT.csv",
                   help="write the usable items as a generic_text/generic_label CSV")
    p.add_argument("--force", action="store_true",
                   help="let --write-clean replace an annotation file of the dataset being checked")
    args = p.parse_args(list(argv))
    try:
        with warnings.catch_warnings():  # missing videos and near-duplicate classes are listed below
            warnings.filterwarnings("ignore", message=".*videos listed in")
            warnings.filterwarnings("ignore", message=".*differ by one character")
            ann = read_annotations(args.dataset, args.root, args.split, video_dir=args.video_dir)
    except (AnnotationError, FileNotFoundError, ValueError) as err:
        print(f"stanlib data check: {err}", file=sys.stderr)
        return 2
    if not ann.videos:
        print(f"stanlib data check: {ann.source}: split {args.split!r} lists no videos; expected at least one "
              "entry (is this the right file?)", file=sys.stderr)
        return 2
    if isinstance(ann, LabelAnnotations) and ann.inferred_classes:
        print(f"classes inferred from the labels in the data (no class-name file): {len(ann.classes)}: "
              + ", ".join(ann.classes))
        for a, b in near_duplicate_classes(ann.classes):
            print(f"WARNING: classes {a!r} and {b!r} differ by one character: a typo makes a new class "
                  "(fix the label, or add a class-name file with one name per line)")
    protected = _annotation_files(Path(args.root), ann.source)
    out = args.write_clean
    if out and not args.force and out.exists() and out.resolve() in protected:  # refuse before the long check
        print(f"stanlib data check: --write-clean {out} would overwrite {out.resolve()}, an annotation file of "
              "the dataset being checked; choose another file (or pass --force to replace it)", file=sys.stderr)
        return 2
    backend = get_backend(args.backend)
    fallbacks: dict[int, str] = {}
    results = check_videos([v.path for v in ann.videos], workers=args.workers, backend=backend,
                           min_frames=args.min_frames, num_frames=args.num_frames, full=args.full,
                           fallbacks=fallbacks)
    reasons = [r for r, _ in results]
    bad = [(v.path, r) for v, r in zip(ann.videos, reasons) if r is not None]
    print(f"{args.dataset}/{args.split}: {len(ann.videos)} videos from {ann.source} checked with {backend}: "
          f"{len(ann.videos) - len(bad)} ok, {len(bad)} bad")
    if fallbacks:
        print(f"{len(fallbacks)} usable videos were read with PyAV because decord could not read them "
              "(training and evaluation do the same):")
        for i, reason in sorted(fallbacks.items()):
            print(f"PYAV {ann.videos[i].path}: decord: {reason}")
    for path, reason in bad:
        print(f"BAD {path}: {reason}")
    if bad:
        counts = Counter(_category(r) for _, r in bad)
        print("by reason: " + ", ".join(f"{k} {n}" for k, n in counts.most_common()))
    short = sum(1 for r, n in results if r is None and n < args.num_frames)
    if short:
        print(f"note: {short} usable videos have fewer than {args.num_frames} frames (their clips repeat frames); "
              f"--min-frames {args.num_frames} lists them as bad")
    if args.write_clean:
        try:
            n = write_clean(ann, [r is None for r in reasons], args.write_clean, protected, force=args.force)
        except (FileExistsError, OSError) as err:
            print(f"stanlib data check: {err}", file=sys.stderr)
            return 2
        kind = "generic_text" if isinstance(ann, TextAnnotations) else "generic_label"
        print(f"wrote {n} usable items to {args.write_clean} (load with build_dataset({kind!r}, "
              f"'{args.write_clean}'))")
    return 1 if bad else 0


# ==================================================================================================
# bench
# ==================================================================================================
def make_bench_videos(directory: Path, count: int = 8, seconds: float = 4.0, fps: int = 30, width: int = 320,
                      height: int = 240, gop: int = 30) -> list[Path]:
    """Write ``count`` H.264 mp4 test videos (textured moving pattern) for benchmarking."""
    paths = []
    n = int(round(seconds * fps))
    for i in tqdm(range(count), desc="writing test videos", unit="video"):
        frames = test_pattern(n, height, width, seed=i).astype(np.int16)
        texture = np.random.default_rng(i).integers(-24, 24, size=(height, width + n, 1))
        for t in range(n):  # a scrolling texture gives the encoder real motion and detail
            frames[t] += texture[:, t:t + width]
        paths.append(write_video(directory / f"bench_{i:02d}.mp4", frames.clip(0, 255).astype(np.uint8), fps, gop=gop))
    return paths


class _BenchClips(Dataset):
    """Training clips, decoding only the sampled frames or every frame of the video."""

    def __init__(self, paths: list[Path], every_frame: bool, backend: str, num_frames: int, size: int, repeats: int):
        self.paths, self.every_frame, self.backend = paths, every_frame, backend
        self.num_frames, self.repeats = num_frames, repeats
        self.transform = train_transform(size)

    def __len__(self) -> int:
        return len(self.paths) * self.repeats

    def __getitem__(self, i: int) -> torch.Tensor:
        with open_video(self.paths[i % len(self.paths)], self.backend) as reader:
            n = len(reader)
            idx = segment_indices(n, self.num_frames, train=True)
            if self.every_frame:
                frames = reader.get_batch(list(range(n)))[idx]
            else:
                frames = reader.get_batch(idx)
        return self.transform(torch.from_numpy(frames).permute(0, 3, 1, 2))


def _throughput(dataset: Dataset, workers: int) -> tuple[float, float | None]:
    """(clips per wall-clock second, CPU ms per clip); CPU time is measured only without workers
    (it then covers all the work and, unlike wall time, hardly depends on other load on the machine)."""
    loader = DataLoader(dataset, batch_size=None, num_workers=workers, persistent_workers=workers > 0)
    for _ in loader:  # warm-up epoch: worker start-up, file cache
        pass
    start, cpu = time.perf_counter(), time.process_time()
    count = sum(1 for _ in loader)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return count / wall, (1000 * cpu / count if workers == 0 else None)


def run_bench(paths: list[Path], workers: Sequence[int] = (0, 2), backends: Sequence[str] = ("decord",),
              num_frames: int = 12, size: int = 224, repeats: int = 2) -> list[dict]:
    """For each (backend, workers): clips/s and CPU ms/clip, sampled-frame vs every-frame decode."""
    rows = []
    torch.set_num_threads(1)  # one thread per process, as in a training DataLoader
    for backend in backends:
        for w in workers:
            sampled, sampled_cpu = _throughput(_BenchClips(paths, False, backend, num_frames, size, repeats), w)
            every, every_cpu = _throughput(_BenchClips(paths, True, backend, num_frames, size, repeats), w)
            rows.append({"backend": backend, "workers": w, "sampled": sampled, "every_frame": every,
                         "sampled_cpu_ms": sampled_cpu, "every_frame_cpu_ms": every_cpu})
    return rows


def bench_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="stanlib data bench",
                                description="Data-loading throughput: sampled-frame vs every-frame decoding.")
    p.add_argument("--dir", type=Path, default=None, help="benchmark these videos instead of generated ones")
    p.add_argument("--videos", type=int, default=8, help="number of generated videos (default 8)")
    p.add_argument("--seconds", type=float, default=4.0, help="generated video length (default 4 s)")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--gop", type=int, default=30, help="key-frame interval of generated videos (default 30)")
    p.add_argument("--frames", type=int, default=12, help="frames per clip (default 12)")
    p.add_argument("--size", type=int, default=224, help="crop size (default 224)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, min(4, os.cpu_count() or 1)],
                   help="DataLoader worker counts to try (default: 0 and min(4, CPUs))")
    p.add_argument("--backend", default="auto", choices=["auto", "decord", "pyav", "both"])
    p.add_argument("--repeats", type=int, default=2, help="clips per video per timed pass (default 2)")
    args = p.parse_args(list(argv))
    backends = ["decord", "pyav"] if args.backend == "both" else [get_backend(None if args.backend == "auto" else args.backend)]
    with tempfile.TemporaryDirectory(prefix="stanlib_bench_") as tmp:
        if args.dir:
            paths = sorted(p for p in args.dir.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
            if not paths:
                print(f"stanlib data bench: no videos under {args.dir}", file=sys.stderr)
                return 2
            what = f"{len(paths)} videos from {args.dir}"
        else:
            paths = make_bench_videos(Path(tmp), args.videos, args.seconds, args.fps, args.width, args.height, args.gop)
            what = (f"{len(paths)} generated H.264 videos {args.width}x{args.height}, {args.seconds:g} s @ {args.fps} fps "
                    f"({int(round(args.seconds * args.fps))} frames, key frame every {args.gop})")
        rows = run_bench(paths, args.workers, backends, args.frames, args.size, args.repeats)
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"data bench: {what}; {args.frames}-frame {args.size} px training clips (TSN sampling, "
          f"random resized crop); {os.cpu_count()} CPUs{load}")
    print(f"{'':17}{'clips/s (wall clock)':^34}  {'CPU ms per clip (workers=0)':^30}")
    print(f"{'backend':<8} {'workers':>7}  {'sampled':>10} {'every frame':>12} {'speed-up':>9}  "
          f"{'sampled':>9} {'every frame':>12} {'ratio':>6}")
    for r in rows:
        cpu = (f"{r['sampled_cpu_ms']:>9.0f} {r['every_frame_cpu_ms']:>12.0f} "
               f"{r['every_frame_cpu_ms'] / r['sampled_cpu_ms']:>5.1f}x") if r["sampled_cpu_ms"] else f"{'-':>9} {'-':>12} {'-':>6}"
        print(f"{r['backend']:<8} {r['workers']:>7}  {r['sampled']:>10.1f} {r['every_frame']:>12.1f} "
              f"{r['sampled'] / r['every_frame']:>8.1f}x  {cpu}")
    return 0


# ==================================================================================================
def cli_main(argv: Sequence[str]) -> int:
    """``stanlib data check ...`` / ``stanlib data bench ...`` / ``stanlib data compress ...``."""
    argv = list(argv)
    usage = ("usage: stanlib data {check,bench,compress} ...\n\n"
             "  check     list missing/unreadable/truncated/too-short videos of a dataset; --write-clean OUT.csv\n"
             "  bench     clips/s: decoding only sampled frames vs every frame, per worker count\n"
             "  compress  re-encode a dataset's videos once (lower fps, short side S), same layout and names\n\n"
             "Run `stanlib data <command> --help` for options.")
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    if argv[0] == "check":
        return check_main(argv[1:])
    if argv[0] == "bench":
        return bench_main(argv[1:])
    if argv[0] == "compress":
        from .compress import compress_main

        return compress_main(argv[1:])
    print(f"stanlib data: unknown command {argv[0]!r}\n\n{usage}", file=sys.stderr)
    return 2
