"""Decode cost of training clips before vs after ``stanlib data compress`` (CPU).

Usage (from the repository root)::

    python tools/bench_compress.py --out docs/results/compress_cpu.json

Writes ``--videos`` H.264 test videos (``--width`` x ``--height``, ``--seconds`` at ``--src-fps``, key frame
every second) for each ``--textures`` kind, re-encodes them with
:func:`stanlib.data.compress.compress_dataset` (``--fps``, ``--short-side``), then times the training
pipeline of ``stanlib data bench`` on both sets: TSN sampling of ``--frames`` frames, decoding only
those, random resized crop to 224 px, one process, one torch thread. The reliable number on a shared
machine is CPU ms per clip (process time: it hardly depends on other jobs); wall-clock clips/s is
reported beside it. The JSON holds the command, the date, the versions and the CPU model.

The test videos show a moving square over a scrolling texture (:func:`write_bench_video`):
``noise`` is per-pixel noise (the videos of ``stanlib data bench``; after scaling and dropping frames it
is hard to predict, a pessimistic case), ``smooth`` is noise blurred over ~8 pixels, closer to camera
footage.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from stanlib.data.compress import CompressSettings, compress_dataset
from stanlib.data.tools import _BenchClips, _throughput  # the timing code of `stanlib data bench`
from stanlib.data.video import VIDEO_EXTENSIONS, decord_available, test_pattern, write_video

TEXTURES = ("noise", "smooth")


def write_bench_video(path: Path, seed: int, seconds: float = 10.0, fps: int = 30, width: int = 640,
                      height: int = 360, texture: str = "smooth") -> Path:
    """An H.264 test video (key frame every second): a moving square over a texture scrolling 1 px per frame.

    ``texture="noise"``: independent noise per pixel (as ``stanlib data bench`` writes);
    ``"smooth"``: noise interpolated from an 8x coarser grid (bicubic), closer to camera footage.
    """
    if texture not in TEXTURES:
        raise ValueError(f"texture must be one of {TEXTURES}, got {texture!r}")
    n = int(round(seconds * fps))
    frames = test_pattern(n, height, width, seed=seed).astype(np.int16)
    rng = np.random.default_rng(seed)
    if texture == "noise":
        scroll = rng.integers(-24, 24, size=(height, width + n, 1))
    else:
        coarse = torch.from_numpy(rng.uniform(-48, 48, size=(1, 1, height // 8 + 2, (width + n) // 8 + 2))).float()
        scroll = torch.nn.functional.interpolate(coarse, scale_factor=8, mode="bicubic")[0, 0, :height, :width + n]
        scroll = scroll.round().numpy().astype(np.int16)[..., None]
    for t in range(n):
        frames[t] += scroll[:, t:t + width]
    return write_video(path, frames.clip(0, 255).astype(np.uint8), fps, gop=fps)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else what platform knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict:
    """torch / PyAV / decord versions (None where not installed)."""
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("av", "decord"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = None
    return out


def video_bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def measure(texture: str, args, tmp: Path) -> dict:
    """Write the raw videos of one texture, compress them, time training clips from both sets."""
    raw_dir, small_dir = tmp / texture / "raw", tmp / texture / "small"
    raw = [write_bench_video(raw_dir / f"bench_{i:02d}.mp4", i, args.seconds, args.src_fps, args.width,
                             args.height, texture)
           for i in tqdm(range(args.videos), desc=f"writing {texture} videos", unit="video")]
    settings = CompressSettings(fps=args.fps, short_side=args.short_side)
    cpu0, t0 = time.process_time(), time.perf_counter()
    compress_dataset(raw_dir, small_dir, settings, workers=args.workers)
    compress_wall = time.perf_counter() - t0
    compress_cpu = time.process_time() - cpu0 if args.workers <= 1 else None
    small = sorted(p for p in small_dir.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
    rows = []
    torch.set_num_threads(1)  # as in one DataLoader worker
    for backend in args.backends:
        for name, paths in (("raw", raw), ("compressed", small)):
            clips = _BenchClips(paths, False, backend, args.frames, 224, args.repeats)
            clips_per_s, cpu_ms = _throughput(clips, workers=0)
            rows.append({"texture": texture, "videos": name, "backend": backend, "clips_per_s": clips_per_s,
                         "cpu_ms_per_clip": cpu_ms})
    by = {(r["videos"], r["backend"]): r for r in rows}
    ratios = {b: {"cpu_ms": by[("raw", b)]["cpu_ms_per_clip"] / by[("compressed", b)]["cpu_ms_per_clip"],
                  "clips_per_s": by[("compressed", b)]["clips_per_s"] / by[("raw", b)]["clips_per_s"]}
              for b in args.backends}
    return {"texture": texture, "raw_bytes": video_bytes(raw), "compressed_bytes": video_bytes(small),
            "compress_wall_s": compress_wall, "compress_cpu_s": compress_cpu, "rows": rows, "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--src-fps", type=int, default=30)
    ap.add_argument("--textures", nargs="+", default=list(TEXTURES), choices=TEXTURES)
    ap.add_argument("--fps", type=float, default=3.0, help="frame rate after compressing (default 3)")
    ap.add_argument("--short-side", type=int, default=224)
    ap.add_argument("--frames", type=int, default=12, help="frames per training clip (default 12)")
    ap.add_argument("--repeats", type=int, default=3, help="clips per video per timed pass (default 3)")
    ap.add_argument("--backends", nargs="+", default=["decord", "pyav"] if decord_available() else ["pyav"])
    ap.add_argument("--workers", type=int, default=1, help="compress processes (default 1: a shared machine)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="stanlib_compress_bench_") as tmp:
        sets = [measure(texture, args, Path(tmp)) for texture in args.textures]
    settings = CompressSettings(fps=args.fps, short_side=args.short_side)
    result = {
        "what": "training-clip decoding before vs after `stanlib data compress` (TSN sampling, only sampled "
                "frames decoded, random resized crop to 224 px, one process, one torch thread)",
        "command": "python " + " ".join(shlex.quote(a) for a in
                                        [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "versions": versions(),
        "raw_videos": {"count": args.videos, "size": f"{args.width}x{args.height}", "fps": args.src_fps,
                       "seconds": args.seconds, "codec": "H.264 (libx264 defaults: crf 23, preset medium), "
                                                         "key frame every second"},
        "compressed_videos": {"fps": args.fps, "short_side": args.short_side, "crf": settings.crf,
                              "preset": settings.preset, "gop": settings.key_frame_interval(args.fps),
                              "tune": settings.tune},
        "frames_per_clip": args.frames, "crop": 224, "clips_timed_per_row": args.videos * args.repeats,
        "sets": sets,
    }
    print(f"{args.videos} videos {args.width}x{args.height} {args.seconds:g} s @ {args.src_fps} fps -> short side "
          f"{args.short_side} @ {args.fps:g} fps; {args.frames}-frame 224 px training clips; {result['cpu']}, "
          f"load average {result['load_average']:.1f}")
    print("| texture | videos | MiB | backend | CPU ms per clip | clips/s (wall) |\n|---|---|---|---|---|---|")
    for s in sets:
        for r in s["rows"]:
            mib = s["raw_bytes" if r["videos"] == "raw" else "compressed_bytes"] / 2**20
            print(f"| {s['texture']} | {r['videos']} | {mib:.1f} | {r['backend']} | {r['cpu_ms_per_clip']:.0f} | "
                  f"{r['clips_per_s']:.1f} |")
        for b, q in s["ratios"].items():
            print(f"{s['texture']}, {b}: {q['cpu_ms']:.1f}x less CPU per clip, {q['clips_per_s']:.1f}x the "
                  f"wall-clock clips/s (compressing took {s['compress_wall_s']:.1f} s)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
