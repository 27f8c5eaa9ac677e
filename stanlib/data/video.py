"""Video decoding (decord, PyAV fallback) and frame-index sampling.

Decoding
    ``open_video(path)`` returns a reader with one small API for both backends:
    ``len(reader)`` (frame count), ``reader.fps`` and ``reader.get_batch(indices) -> (N,H,W,3) uint8``.
    decord is the fast path: its ``get_batch`` decodes only the frames it needs (seeking to the
    nearest key frame before each). PyAV is the fallback for platforms without decord wheels
    (e.g. Apple silicon); it decodes sequentially up to the last requested frame and converts only
    the requested ones to RGB. The backend is chosen automatically (decord if importable) and can be
    forced with ``backend="pyav"`` or the environment variable ``STANLIB_VIDEO_BACKEND=pyav``.

    decord refuses some valid files that FFmpeg reads (frame widths such as 16, 48 or 72 px fail
    with ``Check failed: from_size == to_size``; GIFs with "broken metadata"). When decord cannot
    open or decode a file that exists, the reader switches to PyAV for that file
    (``open_video(..., fallback=True)``, the default): the file is read, ``reader.backend`` says
    ``"pyav"``, ``reader.decord_error`` keeps decord's reason, :data:`DECORD_FALLBACKS` counts the
    files of this process and a warning names each one once.

    Every decoding failure (missing/empty file, unreadable container, corrupt packets) is raised as
    :class:`VideoDecodeError`, which names the file and the cause. decord raises ``RuntimeError`` on
    open but ``decord._ffi.base.DECORDError`` (NOT a RuntimeError subclass) from ``get_batch`` on
    corrupt data; PyAV raises ``av.error.FFmpegError`` subclasses; all are converted here.

Sampling (all functions return a list of frame indices in temporal order)
    * ``segment_indices``: TSN. Split the video into T equal segments; training takes a random
      frame per segment, test takes each segment's middle (``num_clips>1``: evenly shifted copies).
    * ``dense_indices``: ``clip_len`` frames ``frame_interval`` apart (Kinetics-style); a random
      start in training, evenly spaced clips at test.
    Videos shorter than the request give repeated indices (never padding with zeros), always in
    non-decreasing order so the direction of motion is kept.
"""
from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Sequence

import logging

import numpy as np
import torch

log = logging.getLogger("stanlib.data")

BACKENDS = ("decord", "pyav")
BACKEND_ENV = "STANLIB_VIDEO_BACKEND"
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".3gp", ".flv",
                    ".wmv", ".ogv", ".gif")
# reasons that no decoder can fix: no fallback to PyAV for these
_FILE_PROBLEMS = ("file not found", "empty file", "is a directory")
# path -> decord's reason, for every file of this process that PyAV read after decord failed
DECORD_FALLBACKS: dict[str, str] = {}


class VideoDecodeError(RuntimeError):
    """A video could not be decoded. ``path`` is the file, ``reason`` a short cause for reports."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode video {self.path}: {reason}")


# --------------------------------------------------------------------------------------------------
# backend choice
# --------------------------------------------------------------------------------------------------
def decord_available() -> bool:
    """True if ``import decord`` works (decord has no wheels for some platforms)."""
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def get_backend(backend: str | None = None) -> str:
    """Resolve the backend: explicit argument > ``$STANLIB_VIDEO_BACKEND`` > decord if importable > pyav."""
    choice = (backend or os.environ.get(BACKEND_ENV) or "auto").lower()
    if choice == "auto":
        return "decord" if decord_available() else "pyav"
    if choice not in BACKENDS:
        raise ValueError(f"unknown video backend {choice!r} (from {'argument' if backend else BACKEND_ENV}); "
                         f"use one of {BACKENDS} or 'auto'")
    if choice == "decord" and not decord_available():
        raise ImportError("video backend 'decord' was requested but decord is not installed; "
                          "use backend='pyav' (or unset STANLIB_VIDEO_BACKEND)")
    return choice


def _decode_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'this file cannot be decoded' for the installed backends."""
    errors: list[type[BaseException]] = [RuntimeError, OSError, ValueError, EOFError]
    try:
        from decord._ffi.base import DECORDError  # not a RuntimeError subclass

        errors.append(DECORDError)
    except ImportError:
        pass
    try:
        import av

        errors.append(av.error.FFmpegError)
    except ImportError:
        pass
    return tuple(errors)


@contextlib.contextmanager
def _decoding(path: Path, what: str):
    """Turn any backend's decode exception inside the block into a VideoDecodeError naming the file."""
    try:
        yield
    except VideoDecodeError:
        raise
    except _decode_errors() as err:
        raise VideoDecodeError(path, f"{what} ({_short_reason(err)})") from err


def _short_reason(err: BaseException) -> str:
    """One line from a decoder exception (decord's messages carry C++ stack traces)."""
    text = str(err).strip() or type(err).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # prefer the dmlc "Check failed"/"Error" line, drop "[hh:mm:ss] /path/file.cc:123:" prefixes
    line = next((ln for ln in lines if "Check failed" in ln or "Error" in ln), lines[0])
    line = re.sub(r"(\[\d\d:\d\d:\d\d\] \S+:\d+: )+", "", line)
    if "Stack trace" in line:
        line = line.split("Stack trace")[0]
    return f"{type(err).__name__}: {line[:300]}"


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoDecodeError(path, "file not found")
    if path.is_dir():
        raise VideoDecodeError(path, "is a directory, expected a video file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")


# --------------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------------
class VideoReader:
    """Common reader API. Use :func:`open_video` to get one.

    ``backend`` names the decoder that reads the file; ``decord_error`` is decord's reason when
    decord failed on the file and PyAV took over (else None).
    """

    path: Path
    fps: float
    backend: str = ""
    decord_error: str | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as a (N,H,W,3) uint8 RGB array."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_indices(self, indices: Sequence[int]) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"{self.path}: frame indices must be in [0, {n}), got min {idx.min()} max {idx.max()}")
        return idx


_decord_quiet = False


class DecordReader(VideoReader):
    """decord ``VideoReader``; ``num_threads=1`` because DataLoader workers already run in parallel.

    ``fallback=True``: if decoding frames fails, the rest of this file is read with PyAV
    (see the module docstring); the error is raised only if PyAV fails too.
    """

    backend = "decord"

    def __init__(self, path: str | os.PathLike, num_threads: int = 1, fallback: bool = False):
        global _decord_quiet
        import decord

        if not _decord_quiet:  # FFmpeg's per-packet warnings; we report failures ourselves
            decord.logging.set_level(decord.logging.QUIET)
            _decord_quiet = True
        self.path = Path(path)
        self.num_threads, self.fallback = num_threads, fallback
        self._pyav: PyAVReader | None = None
        _check_file(self.path)
        with _decoding(self.path, "cannot open"):
            self._vr = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=num_threads)
            self._len = len(self._vr)
            self.fps = float(self._vr.get_avg_fps())

    def __len__(self) -> int:
        return self._len

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        idx = self._check_indices(indices)
        if self._pyav is None:
            # decode each needed frame once, in file order (fewest seeks), then expand to the request
            unique, inverse = np.unique(idx, return_inverse=True)
            try:
                with _decoding(self.path, "decoding frames failed"):
                    frames = self._vr.get_batch(unique.tolist()).asnumpy()
                return frames if len(unique) == len(idx) and (unique == idx).all() else frames[inverse]
            except VideoDecodeError as err:
                if not self.fallback:
                    raise
                self._pyav = _read_with_pyav(self.path, self.num_threads, err)
                self.backend, self.decord_error = "pyav", err.reason
                if len(self._pyav) == 0:
                    raise VideoDecodeError(self.path, f"{err.reason}; PyAV finds no frames") from err
        # frame counts of the two decoders can differ by a frame or two: stay inside PyAV's
        return self._pyav.get_batch(np.minimum(idx, len(self._pyav) - 1))

    def close(self) -> None:
        self._vr = None
        if self._pyav is not None:
            self._pyav.close()


class PyAVReader(VideoReader):
    """PyAV (FFmpeg) reader with the same API. Decodes sequentially up to the last requested frame."""

    backend = "pyav"

    def __init__(self, path: str | os.PathLike, num_threads: int = 1):
        import av

        self._av = av
        self.num_threads = num_threads
        self.path = Path(path)
        _check_file(self.path)
        with _decoding(self.path, "cannot open"), av.open(str(self.path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(self.path, "no video stream in the file")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else 0.0
            # mp4/avi indexes give the count; webm/mkv often report 0, so count packets (no decoding)
            self._len = stream.frames or sum(1 for p in container.demux(stream) if p.size > 0)

    def __len__(self) -> int:
        return self._len

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        if self.decord_error is None:
            return self._get_batch(indices)
        try:  # decord failed on this file before: report both decoders' reasons
            frames = self._get_batch(indices)
        except VideoDecodeError as err:
            raise VideoDecodeError(self.path, f"{self.decord_error}; PyAV fails too: {err.reason}") from err
        _note_fallback(self.path, self.decord_error)
        return frames

    def _get_batch(self, indices: Sequence[int]) -> np.ndarray:
        idx = self._check_indices(indices)
        if not idx.size:
            return np.zeros((0, 0, 0, 3), np.uint8)
        wanted, last = set(idx.tolist()), int(idx.max())
        frames: dict[int, np.ndarray] = {}
        decoded, previous = 0, None
        with _decoding(self.path, "decoding frames failed"), self._av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_count = self.num_threads
            for i, frame in enumerate(container.decode(stream)):
                decoded, previous = i + 1, frame
                if i in wanted:  # RGB conversion only for the frames we keep
                    frames[i] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
        missing = sorted(wanted - frames.keys())  # all at or after `decoded`: decoding is sequential
        if missing:
            # Container frame counts can exceed the decodable frames by one or two (edit lists,
            # dropped B-frames): for such a short tail only, repeat the last decoded frame.
            if previous is None or len(self) - decoded > max(2, len(self) // 100):
                raise VideoDecodeError(self.path, f"truncated: header says {len(self)} frames but only "
                                                  f"{decoded} decode (frame {missing[0]} requested)")
            tail = previous.to_ndarray(format="rgb24")
            frames.update({m: tail for m in missing})
        return np.stack([frames[i] for i in idx.tolist()])


def _read_with_pyav(path: Path, num_threads: int, decord_err: VideoDecodeError) -> "PyAVReader":
    """PyAV reader for a file decord failed on; raises decord's error (plus PyAV's) if PyAV fails too."""
    if any(problem in decord_err.reason for problem in _FILE_PROBLEMS):
        raise decord_err
    try:
        reader = PyAVReader(path, num_threads)
    except VideoDecodeError as err:
        raise VideoDecodeError(path, f"{decord_err.reason}; PyAV fails too: {err.reason}") from decord_err
    reader.decord_error = decord_err.reason
    return reader


def _note_fallback(path: Path, reason: str) -> None:
    """Count a file PyAV read after decord failed, and name it once per process."""
    if str(path) not in DECORD_FALLBACKS:
        DECORD_FALLBACKS[str(path)] = reason
        log.warning("decord cannot read %s (%s); read it with PyAV", path, reason)


def open_video(path: str | os.PathLike, backend: str | None = None, num_threads: int = 1,
               fallback: bool = True) -> VideoReader:
    """Open a video with the chosen backend (see :func:`get_backend`). Raises :class:`VideoDecodeError`.

    ``fallback=True``: a file that decord cannot open or decode is read with PyAV instead
    (``reader.backend`` then says ``"pyav"`` and ``reader.decord_error`` why decord failed).
    """
    name = get_backend(backend)
    if name != "decord":
        return PyAVReader(path, num_threads)
    try:
        return DecordReader(path, num_threads, fallback=fallback)
    except VideoDecodeError as err:
        if not fallback:
            raise
        return _read_with_pyav(Path(path), num_threads, err)


def read_frames(path: str | os.PathLike, indices: Sequence[int] | None = None, backend: str | None = None,
                num_threads: int = 1) -> torch.Tensor:
    """Decode ``indices`` (default: every frame) of one video -> uint8 tensor (T,3,H,W)."""
    with open_video(path, backend, num_threads) as reader:
        if len(reader) == 0:
            raise VideoDecodeError(path, "video has no frames")
        idx = range(len(reader)) if indices is None else indices
        return torch.from_numpy(reader.get_batch(idx)).permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------------
def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """Uniform int in [low, high) from torch's RNG (seeded per DataLoader worker by torch)."""
    return low + int(torch.randint(high - low, (1,), generator=generator)) if high > low else low


def segment_indices(num_frames: int, num_segments: int, train: bool, num_clips: int = 1,
                    clip_idx: int = 0, generator: torch.Generator | None = None) -> list[int]:
    """TSN sampling: one frame from each of ``num_segments`` equal segments.

    Training: a uniformly random frame inside each segment. Test: the frame at position
    ``(clip_idx + 0.5) / num_clips`` of each segment (``num_clips=1``: the segment middle).
    Example: 30 frames, 3 segments, test -> [5, 15, 25]. If ``num_frames < num_segments`` the
    segments are shorter than a frame and indices repeat (e.g. 2 frames, 4 segments -> [0, 0, 1, 1]).
    """
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if num_segments <= 0:
        raise ValueError(f"num_segments must be positive, got {num_segments}")
    edges = np.linspace(0, num_frames, num_segments + 1)
    out = []
    for start, end in zip(edges[:-1], edges[1:]):
        if train:
            lo = int(np.floor(start))
            out.append(_randint(lo, max(lo + 1, int(np.floor(end))), generator))
        else:
            out.append(int(np.floor(start + (end - start) * (clip_idx + 0.5) / num_clips)))
    return [min(i, num_frames - 1) for i in out]


def dense_indices(num_frames: int, clip_len: int, frame_interval: int, train: bool, num_clips: int = 1,
                  clip_idx: int = 0, generator: torch.Generator | None = None) -> list[int]:
    """Dense sampling: ``clip_len`` frames ``frame_interval`` apart (e.g. 8 x 8 for Kinetics).

    Training: a random start. Test: clip ``clip_idx`` of ``num_clips`` evenly spaced starts
    (``num_clips=1``: the centred clip). A video shorter than the span ``(clip_len-1)*interval+1``
    is sampled evenly over its whole length instead (indices repeat when it has < clip_len frames).
    """
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if clip_len <= 0 or frame_interval <= 0:
        raise ValueError(f"clip_len and frame_interval must be positive, got {clip_len}, {frame_interval}")
    span = (clip_len - 1) * frame_interval + 1
    if num_frames < span:  # too short for the interval: stretch the clip over the whole video
        return [int(i) for i in np.floor(np.arange(clip_len) * num_frames / clip_len)]
    room = num_frames - span + 1  # number of valid start positions
    if train:
        start = _randint(0, room, generator)
    else:
        start = int(np.floor(room * (clip_idx + 0.5) / num_clips))
    return [start + k * frame_interval for k in range(clip_len)]


def sample_indices(num_frames: int, clip_len: int, *, train: bool, sampling: str = "segment",
                   frame_interval: int = 1, num_clips: int = 1,
                   generator: torch.Generator | None = None) -> list[list[int]]:
    """Indices for every temporal view: ``num_clips`` lists of ``clip_len`` indices each.

    ``sampling`` is ``"segment"`` (TSN, the STAN recipe) or ``"dense"`` (clip_len x frame_interval).
    Training always returns one clip.
    """
    if sampling not in ("segment", "dense"):
        raise ValueError(f"sampling must be 'segment' or 'dense', got {sampling!r}")
    clips = 1 if train else num_clips
    if sampling == "segment":
        return [segment_indices(num_frames, clip_len, train, clips, k, generator) for k in range(clips)]
    return [dense_indices(num_frames, clip_len, frame_interval, train, clips, k, generator) for k in range(clips)]


# --------------------------------------------------------------------------------------------------
# writing (fixtures, benchmarks, tests)
# --------------------------------------------------------------------------------------------------
CODEC_FOR_SUFFIX = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264",
                    ".avi": "mpeg4", ".webm": "libvpx-vp9"}


def write_video(path: str | os.PathLike, frames: np.ndarray | torch.Tensor, fps: int = 25,
                codec: str | None = None, gop: int | None = None, quality: int | None = None,
                faststart: bool = False) -> Path:
    """Write RGB uint8 frames (T,H,W,3) with PyAV; the codec follows the extension (.mp4 H.264,
    .avi MPEG-4, .webm VP9). ``gop``: key-frame interval; ``quality``: CRF (H.264/VP9) or qscale;
    ``faststart``: put the mp4 index before the data (as streaming sites do)."""
    import av

    path = Path(path)
    frames = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (T,H,W,3), got {frames.dtype} {frames.shape}")
    codec = codec or CODEC_FOR_SUFFIX.get(path.suffix.lower())
    if codec is None:
        raise ValueError(f"no default codec for {path.suffix!r}; pass codec=")
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if gop:
            stream.codec_context.gop_size = gop
        if quality is not None:
            stream.options = {"crf": str(quality)} if codec != "mpeg4" else {"qscale": str(quality)}
        if codec == "libvpx-vp9":  # quick, deterministic single-pass encode
            stream.options = {**stream.options, "deadline": "realtime", "cpu-used": "8"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def frame_code(index: int) -> int:
    """Grey level that :func:`test_pattern` paints in the top-left 16x16 block of frame ``index``
    (distinct for the first 36 frames), so tests can check which frame a decoder returned."""
    return (12 + 7 * index) % 256


def decode_frame_code(frames: torch.Tensor | np.ndarray) -> list[int]:
    """Frame indices read back from :func:`test_pattern` frames, (T,H,W,3) or (T,3,H,W) uint8."""
    x = torch.as_tensor(np.asarray(frames)).float()
    block = x[:, 4:12, 4:12, :] if x.shape[-1] == 3 else x[:, :, 4:12, 4:12].permute(0, 2, 3, 1)
    values = block.mean(dim=(1, 2, 3)).tolist()
    table = {i: frame_code(i) for i in range(36)}
    return [min(table, key=lambda i: abs(table[i] - v)) for v in values]


def test_pattern(num_frames: int, height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    """Synthetic clip (T,H,W,3) uint8: a colour gradient background, a square moving left to
    right, and the frame index encoded in the top-left block (see :func:`frame_code`)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=3)
    yy, xx = np.mgrid[0:height, 0:width]
    background = (base[None, None, :] + 40 * np.sin(xx / width * np.pi)[..., None]
                  + 20 * (yy / height)[..., None]).clip(0, 255).astype(np.uint8)
    colour = rng.integers(0, 256, size=3).astype(np.uint8)
    side = max(8, min(height, width) // 5)
    frames = np.repeat(background[None], num_frames, axis=0)
    for t in range(num_frames):
        x = int((width - side) * t / max(1, num_frames - 1))
        y = (height - side) // 2
        frames[t, y:y + side, x:x + side] = colour
        frames[t, :16, :16] = frame_code(t)
    return frames


test_pattern.__test__ = False  # a helper, not a pytest test
