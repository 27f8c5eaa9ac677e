"""Datasets: annotation readers for the benchmarks STAN uses, and the two dataset classes.

Two dataset classes, one per task:

* :class:`VideoTextDataset` (retrieval: MSR-VTT, DiDeMo, LSMDC, MSVD, generic_text).
  ``videos`` (list of :class:`VideoRecord`), ``captions`` (list of str), ``caption_video`` (video
  index of each caption). ``mode="pairs"`` (training): one item per caption,
  ``{"frames": (T,3,H,W), "tokens": (C,), "video_idx", "caption_idx"}``; ``mode="videos"``
  (evaluation): one item per video, ``{"frames", "video_idx"}``, and ``tokens()`` gives all
  captions at once as (num_captions, C).
* :class:`VideoLabelDataset` (recognition: Kinetics-400, SSv2, generic_label). ``videos``,
  ``labels``, ``classes`` (class names, fed to the text encoder); item
  ``{"frames", "label", "video_idx"}``; with several test views (``num_clips`` x ``num_crops``,
  e.g. 1 x 3) frames is (V,T,3,H,W).

Bad videos: a decoding failure raises :class:`~stanlib.data.video.VideoDecodeError` (file + cause)
when ``on_error="raise"`` (default in evaluation). With ``on_error="skip"`` (default in training)
``dataset[i]`` returns ``None`` and :func:`collate` drops it and lists the file in
``batch["skipped"]``, so the trainer can count and report skips at the end of the epoch.
Malformed annotation files raise :class:`AnnotationError` with the file, line or key, and what was
expected: text that is not UTF-8 (a UTF-8 byte-order mark is fine), a video listed twice with
different labels, a label missing from the class-name file, an empty split. Without a class-name
file the classes are inferred from the labels used; names one edit apart (``jumping`` /
``jumpping``, likely a typo) are then announced with a warning. Videos listed in an annotation file but not found on disk are kept (so test sets keep
their size), announced with a warning, and fail when loaded; ``stanlib data check`` lists them.

``build_dataset(name, root, split, ...)`` reads the files below (``root`` is the dataset folder;
annotation files may also sit one folder down, e.g. ``root/annotations/``; videos are found by file
name anywhere under ``root``, or under ``video_dir`` if given). See each ``read_*`` function and
``data_samples/fixtures/README.md`` for the exact formats.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import pickle
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import Dataset

from .transforms import CLIP_MEAN, CLIP_STD, ClipTransform
from .video import VIDEO_EXTENSIONS, VideoDecodeError, get_backend, open_video, sample_indices

log = logging.getLogger("stanlib.data")

TEXT_DATASETS = ("msrvtt", "didemo", "lsmdc", "msvd", "generic_text")
LABEL_DATASETS = ("k400", "ssv2", "generic_label")


class AnnotationError(ValueError):
    """A malformed or missing annotation file; the message names the file, the line/key and what was expected."""


@dataclass(frozen=True)
class VideoRecord:
    """One video: where it is and the id the annotation files use for it."""

    path: Path
    video_id: str


@dataclass
class TextAnnotations:
    """What a retrieval reader returns (before decoding options are attached)."""

    videos: list[VideoRecord]
    captions: list[str]
    caption_video: list[int]
    source: str = ""  # the annotation file, for messages


@dataclass
class LabelAnnotations:
    """What a recognition reader returns."""

    videos: list[VideoRecord]
    labels: list[int]
    classes: list[str]
    source: str = ""
    inferred_classes: bool = False  # True: no class-name file, classes are the labels found in the data
    twins: list[int] | None = None  # declared reversal twins: index of each clip's time reversal (-1: none)
    class_twins: list[int] | None = None  # per class, the class that plays it backwards (-1: none)


# ==================================================================================================
# small file helpers (every error names the file and the place in it)
# ==================================================================================================
def _find_file(root: Path, names: Sequence[str], what: str) -> Path:
    """The first of ``names`` found in ``root`` or one folder below it."""
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} is not a directory")
    for name in names:
        if (root / name).is_file():
            return root / name
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        for name in names:
            if (sub / name).is_file():
                return sub / name
    raise FileNotFoundError(f"{what}: none of {list(names)} found in {root} (or one folder below it)")


def read_text(path: str | os.PathLike) -> str:
    """A text file's contents: UTF-8, with or without the byte-order mark spreadsheet programs write.

    Other encodings are an :class:`AnnotationError` that names the file and says how to fix it.
    """
    path = Path(path)
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise AnnotationError(f"{path}: the file is UTF-16 text; expected UTF-8. Re-save it as UTF-8 "
                              "(spreadsheets: 'CSV UTF-8')")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise AnnotationError(f"{path}: line {line}: byte {data[err.start]:#04x} is not UTF-8; expected UTF-8 "
                              "text. Re-save the file as UTF-8") from None
    if "\x00" in text:
        raise AnnotationError(f"{path}: the file holds NUL bytes (UTF-16 without a byte-order mark, or not "
                              "text); expected UTF-8 text")
    return text


def _read_json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}: line {err.lineno} column {err.colno}: invalid JSON ({err.msg})") from err


def _json_field(entry: Any, key: str, where: str, path: Path, types: type | tuple = str) -> Any:
    """``entry[key]`` checked for presence and type; ``where`` is e.g. ``sentences[12]``."""
    if not isinstance(entry, dict):
        raise AnnotationError(f"{path}: {where}: expected an object with key {key!r}, got {type(entry).__name__}")
    if key not in entry:
        raise AnnotationError(f"{path}: {where}: missing key {key!r} (keys present: {sorted(entry)})")
    value = entry[key]
    if not isinstance(value, types):
        raise AnnotationError(f"{path}: {where}.{key}: expected {types}, got {type(value).__name__} {value!r}")
    return value


def _json_list(data: Any, path: Path, where: str = "top level") -> list:
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: {where}: expected a JSON list, got {type(data).__name__}")
    return data


def _read_csv(path: Path, required: Sequence[str], delimiter: str = ",") -> Iterator[tuple[int, dict]]:
    """Rows of a CSV with a header, as (line number, row dict); checks columns and row lengths."""
    with io.StringIO(read_text(path), newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise AnnotationError(f"{path}: line 1: header must contain columns {list(required)}, "
                                  f"missing {missing} (header is {header})")
        for row in reader:
            line = reader.line_num
            if None in row:
                raise AnnotationError(f"{path}: line {line}: expected {len(header)} fields {header}, got "
                                      f"{len(header) + len(row[None])} (quote fields that contain '{delimiter}')")
            if any(row[c] is None for c in required):
                given = sum(v is not None for v in row.values())
                raise AnnotationError(f"{path}: line {line}: expected {len(header)} fields {header}, got {given}")
            yield line, row


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-empty stripped lines with their 1-based line numbers."""
    return [(i, ln.strip()) for i, ln in enumerate(read_text(path).split("\n"), 1) if ln.strip()]


class _OneLabelPerVideo:
    """Remembers where each video was listed and with which label: a video listed again with a
    different label is an :class:`AnnotationError` naming both places."""

    def __init__(self, path: Path):
        self.path = path
        self.seen: dict[str, tuple[str, str]] = {}

    def __call__(self, video: str, label: str, where: str) -> None:
        first_label, first_where = self.seen.setdefault(video, (label, where))
        if first_label != label:
            raise AnnotationError(f"{self.path}: {first_where} and {where} both list video {video!r}, with "
                                  f"different labels {first_label!r} and {label!r}; expected one label per video "
                                  "(correct or remove one of them)")


def _one_edit_apart(a: str, b: str) -> bool:
    """True if ``b`` is ``a`` with one character inserted, deleted or replaced (Levenshtein 1)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)):] == b[i + 1:]


def near_duplicate_classes(names: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of class names one edit apart or equal up to case (likely typos of one class).

    Purely numeric names (classes named by their ids) are never reported.
    """
    words = [n for n in names if not n.isdigit()]
    pairs = []
    for i, a in enumerate(words):
        for b in words[i + 1:]:
            if a.lower() == b.lower() or _one_edit_apart(a, b):
                pairs.append((a, b))
    return pairs


def _warn_near_duplicates(classes: Sequence[str], source: Path) -> None:
    pairs = near_duplicate_classes(classes)
    if pairs:
        shown = ", ".join(f"{a!r}/{b!r}" for a, b in pairs[:5])
        warnings.warn(f"{source}: no class-name file, so the classes are the {len(classes)} labels found in the "
                      f"data; {len(pairs)} pair(s) differ by one character ({shown}): a typo makes a new class. "
                      "Fix the labels or add a class-name file (one name per line).", stacklevel=3)


class _NoObjectsUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds plain containers (dict/list/str/...): loading a dataset's
    caption pickle must not be able to run code."""

    def find_class(self, module: str, name: str):  # noqa: D401
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: captions pickle may only hold "
                                     "dicts, lists and strings")


def _read_pickle(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return _NoObjectsUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise AnnotationError(f"{path}: not a readable captions pickle ({err})") from err


# ==================================================================================================
# finding video files
# ==================================================================================================
class VideoIndex:
    """Every video file under a folder, by file name and by name without extension.

    Lets readers find ``video0`` as ``videos/all/video0.mp4`` or DiDeMo's ``x.mov`` as ``x.mov.mp4``
    without knowing the folder layout a user unpacked the dataset into.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self._paths: dict[str, Path] = {}
        for folder, subdirs, files in os.walk(directory, followlinks=True):
            subdirs.sort()
            for name in sorted(files):
                if Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                    path = Path(folder) / name
                    self._paths.setdefault(name, path)
                    self._paths.setdefault(Path(name).stem, path)

    def find(self, *keys: str) -> Path | None:
        for key in keys:
            if key in self._paths:
                return self._paths[key]
        return None

    def __len__(self) -> int:
        return len(set(self._paths.values()))


class _Resolver:
    """Maps annotation ids to video paths and remembers which were not found (for one warning)."""

    def __init__(self, root: Path, video_dir: str | os.PathLike | None):
        self.directory = Path(video_dir) if video_dir else root
        if video_dir and not self.directory.is_absolute() and not self.directory.exists():
            self.directory = root / self.directory
        if not self.directory.is_dir():
            raise FileNotFoundError(f"video folder {self.directory} does not exist")
        self.index = VideoIndex(self.directory)
        self.missing: list[Path] = []

    def __call__(self, *keys: str, default: str | None = None) -> Path:
        """Path of the first key found; else a guess ``directory/default`` (recorded as missing)."""
        path = self.index.find(*keys)
        if path is None:
            guess = default or keys[0]
            path = self.directory / (guess if Path(guess).suffix.lower() in VIDEO_EXTENSIONS else guess + ".mp4")
            self.missing.append(path)
        return path

    def warn_missing(self, source: Path, name: str, total: int) -> None:
        if self.missing:
            warnings.warn(f"{len(self.missing)} of {total} videos listed in {source} were not found under "
                          f"{self.directory} (first: {self.missing[0].name}); they will fail when loaded. "
                          f"Run `stanlib data check {name} --root ...` for the list.", stacklevel=3)


def _split_alias(split: str, aliases: dict[str, str], name: str) -> str:
    key = split.lower()
    if key not in aliases:
        raise ValueError(f"{name}: unknown split {split!r}; use one of {sorted(set(aliases))}")
    return aliases[key]


# ==================================================================================================
# retrieval readers
# ==================================================================================================
def read_msrvtt(root: str | os.PathLike, split: str = "train", video_dir: str | None = None,
                train_csv: str = "MSRVTT_train.9k.csv", test_csv: str = "MSRVTT_JSFUSION_test.csv",
                data_json: str = "MSRVTT_data.json") -> TextAnnotations:
    """MSR-VTT in the CLIP4Clip layout (used by STAN).

    * train: ``MSRVTT_train.9k.csv`` (header ``video_id``; one id per line, e.g. ``video0``) selects
      the videos; every caption of those videos in ``MSRVTT_data.json`` (``{"videos": [...],
      "sentences": [{"caption", "video_id", "sen_id"}, ...]}``) is a training pair (9k x 20).
    * test (alias val, 1k-A): ``MSRVTT_JSFUSION_test.csv`` with header ``key,vid_key,video_id,sentence``
      (``ret0,msr7579,video7579,a girl ...``): one caption per video, 1000 videos.
    Videos: ``<video_id>.mp4`` (any extension) anywhere under ``root`` (usually ``videos/all/``).
    """
    root = Path(root)
    which = _split_alias(split, {"train": "train", "test": "test", "val": "test", "1k-a": "test"}, "msrvtt")
    resolve = _Resolver(root, video_dir)
    if which == "test":
        path = _find_file(root, [test_csv], "MSR-VTT test captions")
        position: dict[str, int] = {}
        captions, caption_video = [], []
        for line, row in _read_csv(path, ["video_id", "sentence"]):
            vid = row["video_id"].strip()
            if not vid:
                raise AnnotationError(f"{path}: line {line}: empty video_id")
            captions.append(row["sentence"].strip())
            caption_video.append(position.setdefault(vid, len(position)))
        ids = list(position)
    else:
        path = _find_file(root, [train_csv], "MSR-VTT training list")
        ids = list(OrderedDict.fromkeys(row["video_id"].strip() for _, row in _read_csv(path, ["video_id"])))
        json_path = _find_file(root, [data_json], "MSR-VTT captions")
        data = _read_json(json_path)
        sentences = _json_list(_json_field(data, "sentences", "top level", json_path, list), json_path, "sentences")
        position = {vid: i for i, vid in enumerate(ids)}
        captions, caption_video = [], []
        for k, sent in enumerate(sentences):
            vid = _json_field(sent, "video_id", f"sentences[{k}]", json_path)
            if vid in position:
                captions.append(_json_field(sent, "caption", f"sentences[{k}]", json_path).strip())
                caption_video.append(position[vid])
        uncaptioned = sorted(set(range(len(ids))) - set(caption_video))
        if uncaptioned:
            raise AnnotationError(f"{json_path}: no sentences for {len(uncaptioned)} videos listed in {path} "
                                  f"(first: {ids[uncaptioned[0]]}); expected every listed video to have captions")
    videos = [VideoRecord(resolve(vid), vid) for vid in ids]
    resolve.warn_missing(path, "msrvtt", len(videos))
    return TextAnnotations(videos, captions, caption_video, str(path))


def read_didemo(root: str | os.PathLike, split: str = "train", video_dir: str | None = None) -> TextAnnotations:
    """DiDeMo (paragraph-to-video retrieval): ``{train,val,test}_data.json``.

    Each file is a JSON list of moments ``{"annotation_id", "description", "video", "times",
    "download_link", "num_segments"}``; all descriptions of a video are joined (in file order)
    into ONE query, so there is one caption per video. ``video`` is the original file name
    (``10015567@N08_3655084291.mov``); it is found on disk as that name, that name + ``.mp4`` or
    its stem with any video extension.
    """
    root = Path(root)
    which = _split_alias(split, {"train": "train", "val": "val", "validation": "val", "test": "test"}, "didemo")
    path = _find_file(root, [f"{which}_data.json"], f"DiDeMo {which} annotations")
    moments = _json_list(_read_json(path), path)
    texts: OrderedDict[str, list[str]] = OrderedDict()
    for k, moment in enumerate(moments):
        video = _json_field(moment, "video", f"[{k}]", path)
        texts.setdefault(video, []).append(_json_field(moment, "description", f"[{k}]", path).strip())
    resolve = _Resolver(root, video_dir)
    videos = [VideoRecord(resolve(v, Path(v).stem, default=v + ".mp4"), v) for v in texts]
    resolve.warn_missing(path, "didemo", len(videos))
    captions = [" ".join(t for t in parts if t) for parts in texts.values()]
    return TextAnnotations(videos, captions, list(range(len(videos))), str(path))


LSMDC_FILES = {"train": "LSMDC16_annos_training.csv", "val": "LSMDC16_annos_val.csv",
               "test": "LSMDC16_challenge_1000_publictect.csv"}


def read_lsmdc(root: str | os.PathLike, split: str = "train", video_dir: str | None = None) -> TextAnnotations:
    """LSMDC: tab-separated, no header, 6 fields per line:
    ``clip_id<TAB>start_aligned<TAB>end_aligned<TAB>start_extracted<TAB>end_extracted<TAB>sentence``.

    Files: train ``LSMDC16_annos_training.csv``, val ``LSMDC16_annos_val.csv``, test (the 1000-clip
    retrieval test) ``LSMDC16_challenge_1000_publictect.csv``. Videos: ``<movie>/<clip_id>.avi``
    (any extension/folder under ``root``). Sentences contain unbalanced quotes, so lines are split on
    tabs rather than parsed as CSV.
    """
    root = Path(root)
    which = _split_alias(split, {"train": "train", "val": "val", "validation": "val", "test": "test"}, "lsmdc")
    path = _find_file(root, [LSMDC_FILES[which]], f"LSMDC {which} annotations")
    resolve = _Resolver(root, video_dir)
    ids: OrderedDict[str, int] = OrderedDict()
    captions, caption_video = [], []
    for line, text in _read_lines(path):
        fields = text.split("\t")
        if len(fields) != 6:
            raise AnnotationError(f"{path}: line {line}: expected 6 tab-separated fields (clip_id, 4 "
                                  f"time-stamps, sentence), got {len(fields)}: {text[:80]!r}")
        clip_id, sentence = fields[0].strip(), fields[5].strip()
        captions.append(sentence)
        caption_video.append(ids.setdefault(clip_id, len(ids)))
    videos = [VideoRecord(resolve(c, default=f"{c.rsplit('_', 1)[0]}/{c}.avi"), c) for c in ids]
    resolve.warn_missing(path, "lsmdc", len(videos))
    return TextAnnotations(videos, captions, caption_video, str(path))


def read_msvd(root: str | os.PathLike, split: str = "train", video_dir: str | None = None) -> TextAnnotations:
    """MSVD in the CLIP4Clip layout: ``{train,val,test}_list.txt`` (one video id per line, e.g.
    ``-4wsuPCjDBc_5_15``) + ``raw-captions.pkl`` (a pickled dict ``video_id -> list of captions``,
    each caption a list of words or a string). Every caption is an item (~40 per video).
    Videos: ``YouTubeClips/<video_id>.avi`` (any folder/extension under ``root``).
    The pickle is loaded with an unpickler that only accepts plain containers and strings.
    """
    root = Path(root)
    which = _split_alias(split, {"train": "train", "val": "val", "validation": "val", "test": "test"}, "msvd")
    list_path = _find_file(root, [f"{which}_list.txt"], f"MSVD {which} list")
    pkl_path = _find_file(root, ["raw-captions.pkl"], "MSVD captions")
    raw = _read_pickle(pkl_path)
    if not isinstance(raw, dict):
        raise AnnotationError(f"{pkl_path}: expected a dict video_id -> captions, got {type(raw).__name__}")
    resolve = _Resolver(root, video_dir)
    videos, captions, caption_video = [], [], []
    for line, vid in _read_lines(list_path):
        if vid not in raw:
            raise AnnotationError(f"{list_path}: line {line}: video {vid!r} has no captions in {pkl_path}")
        entries = raw[vid]
        if not isinstance(entries, list) or not entries:
            raise AnnotationError(f"{pkl_path}: key {vid!r}: expected a non-empty list of captions")
        for k, cap in enumerate(entries):
            if isinstance(cap, list) and all(isinstance(w, str) for w in cap):
                cap = " ".join(cap)
            if not isinstance(cap, str):
                raise AnnotationError(f"{pkl_path}: key {vid!r}[{k}]: expected a caption (str or list of words)")
            captions.append(cap.strip())
            caption_video.append(len(videos))
        videos.append(VideoRecord(resolve(vid, default=f"{vid}.avi"), vid))
    resolve.warn_missing(list_path, "msvd", len(videos))
    return TextAnnotations(videos, captions, caption_video, str(list_path))


def _generic_file(root: Path, split: str) -> Path:
    if root.is_file():
        return root
    for suffix in (".csv", ".json"):
        if (root / f"{split}{suffix}").is_file():
            return root / f"{split}{suffix}"
    raise FileNotFoundError(f"generic dataset: neither {split}.csv nor {split}.json found in {root}")


def _generic_rows(path: Path, value_key: str) -> list[tuple[str, str, Any]]:
    """(where, video, value) rows of a generic CSV/JSON annotation file."""
    rows = []
    if path.suffix.lower() == ".json":
        for k, entry in enumerate(_json_list(_read_json(path), path)):
            video = _json_field(entry, "video", f"[{k}]", path)
            rows.append((f"[{k}]", video, _json_field(entry, value_key, f"[{k}]", path, (str, int, list))))
    else:
        for line, row in _read_csv(path, ["video", value_key]):
            rows.append((f"line {line}", row["video"].strip(), row[value_key].strip()))
    return rows


def _generic_video(path: Path, video: str, video_dir: str | None) -> Path:
    p = Path(video)
    if p.is_absolute():
        return p
    return (Path(video_dir) if video_dir else path.parent) / p


def read_generic_text(root: str | os.PathLike, split: str = "train", video_dir: str | None = None) -> TextAnnotations:
    """Your own retrieval data: a folder of videos + ``<split>.csv`` or ``<split>.json``.

    * CSV, header ``video,caption``: one row per caption (a video may have several rows).
    * JSON: a list of ``{"video": "videos/a.mp4", "caption": "..." or ["...", "..."]}``.
    ``video`` is a path relative to the annotation file's folder (or to ``video_dir``), or absolute.
    ``root`` may also be the annotation file itself (``split`` is then ignored).
    """
    path = _generic_file(Path(root), split)
    ids: OrderedDict[str, int] = OrderedDict()
    captions, caption_video = [], []
    for where, video, value in _generic_rows(path, "caption"):
        texts = value if isinstance(value, list) else [value]
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise AnnotationError(f"{path}: {where}: expected a non-empty caption (or list of captions), got {value!r}")
        if not video:
            raise AnnotationError(f"{path}: {where}: empty video path")
        index = ids.setdefault(video, len(ids))
        for text in texts:
            captions.append(text.strip())
            caption_video.append(index)
    videos = [VideoRecord(_generic_video(path, v, video_dir), Path(v).stem) for v in ids]
    _warn_missing_paths(videos, path, "generic_text")
    return TextAnnotations(videos, captions, caption_video, str(path))


def _warn_missing_paths(videos: list[VideoRecord], source: Path, name: str) -> None:
    missing = [v.path for v in videos if not v.path.exists()]
    if missing:
        warnings.warn(f"{len(missing)} of {len(videos)} videos listed in {source} do not exist (first: "
                      f"{missing[0]}); they will fail when loaded. Run `stanlib data check {name} --root ...`.",
                      stacklevel=3)


# ==================================================================================================
# recognition readers
# ==================================================================================================
CLASS_FILES = ("classes.txt", "label_map_k400.txt", "label_map.txt")


def _read_class_file(path: Path) -> list[str]:
    names = [text for _, text in _read_lines(path)]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise AnnotationError(f"{path}: class {dup!r} is listed twice; expected one unique class name per line")
    return names


def _optional_file(root: Path, names: Sequence[str]) -> Path | None:
    try:
        return _find_file(root, names, "")
    except FileNotFoundError:
        return None


K400_CSV = {"train": ("train.csv",), "val": ("validate.csv", "val.csv"), "test": ("test.csv",)}


def read_k400(root: str | os.PathLike, split: str = "train", video_dir: str | None = None,
              format: str = "auto") -> LabelAnnotations:
    """Kinetics-400, either of its two usual annotation formats.

    * ``csv`` (the official files): ``train.csv`` / ``validate.csv`` (or ``val.csv``) / ``test.csv``
      with header ``label,youtube_id,time_start,time_end,split``. Videos are
      ``<youtube_id>_<start:06d>_<end:06d>.mp4`` (or ``<youtube_id>.mp4``), in any folder under
      ``root`` (e.g. ``train/abseiling/``). Class names: ``classes.txt`` / ``label_map_k400.txt``
      (one per line, line i = label i) if present, else the sorted label names of all csv files.
    * ``list`` (mmaction style): ``kinetics400_{train,val}_list_videos.txt`` (or ``{split}_list.txt``),
      lines ``<path relative to root> <label id>``; class names from ``label_map_k400.txt`` /
      ``classes.txt``.
    ``format="auto"`` uses the csv if it exists, else the list.
    """
    root = Path(root)
    which = _split_alias(split, {"train": "train", "val": "val", "validate": "val", "validation": "val",
                                 "test": "test"}, "k400")
    if format not in ("auto", "csv", "list"):
        raise ValueError(f"k400 format must be 'auto', 'csv' or 'list', got {format!r}")
    class_file = _optional_file(root, CLASS_FILES)
    csv_path = _optional_file(root, K400_CSV[which]) if format in ("auto", "csv") else None
    if format == "csv" and csv_path is None:
        raise FileNotFoundError(f"k400: none of {list(K400_CSV[which])} found in {root}")
    resolve = _Resolver(root, video_dir)
    if csv_path is not None:
        classes = _read_class_file(class_file) if class_file else _k400_csv_classes(root)
        if not class_file:
            _warn_near_duplicates(classes, csv_path)
        position = {name: i for i, name in enumerate(classes)}
        videos, labels = [], []
        once = _OneLabelPerVideo(csv_path)
        for line, row in _read_csv(csv_path, ["label", "youtube_id", "time_start", "time_end"]):
            label = row["label"].strip()
            if label not in position:
                raise AnnotationError(f"{csv_path}: line {line}: label {label!r} is not one of the "
                                      f"{len(classes)} classes{f' in {class_file}' if class_file else ''}")
            yid = row["youtube_id"].strip()
            try:
                stem = f"{yid}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
            except ValueError as err:
                raise AnnotationError(f"{csv_path}: line {line}: time_start/time_end must be numbers, got "
                                      f"{row['time_start']!r}, {row['time_end']!r}") from err
            once(stem, label, f"line {line}")
            videos.append(VideoRecord(resolve(stem, yid), stem))
            labels.append(position[label])
        source = csv_path
    else:
        names = {"train": ["kinetics400_train_list_videos.txt", "train_list.txt", "train_list_videos.txt"],
                 "val": ["kinetics400_val_list_videos.txt", "val_list.txt", "val_list_videos.txt"],
                 "test": ["kinetics400_test_list_videos.txt", "test_list.txt", "test_list_videos.txt"]}[which]
        source = _find_file(root, names, f"k400 {which} list (csv files {list(K400_CSV[which])} were not found either)")
        videos, labels = _read_path_label_list(source, resolve)
        classes = _read_class_file(class_file) if class_file else _numbered_classes(labels, source)
        bad = next((i for i, lab in enumerate(labels) if lab >= len(classes)), None)
        if bad is not None:
            raise AnnotationError(f"{source}: entry {bad + 1}: label {labels[bad]} is out of range for the "
                                  f"{len(classes)} classes in {class_file}")
    resolve.warn_missing(source, "k400", len(videos))
    twins = _Twins(videos, labels, classes, split)
    twins.add_file(root)
    return LabelAnnotations(videos, labels, classes, str(source), inferred_classes=class_file is None,
                            twins=twins.index())


def _k400_csv_classes(root: Path) -> list[str]:
    """Sorted label names over every K400 csv present, so train and val agree on label ids."""
    names: set[str] = set()
    for files in K400_CSV.values():
        path = _optional_file(root, files)
        if path is not None:
            with io.StringIO(read_text(path), newline="") as f:
                names.update(row["label"].strip() for row in csv.DictReader(f) if row.get("label"))
    return sorted(names)


def _read_path_label_list(path: Path, resolve: _Resolver) -> tuple[list[VideoRecord], list[int]]:
    videos, labels = [], []
    once = _OneLabelPerVideo(path)
    for line, text in _read_lines(path):
        parts = text.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise AnnotationError(f"{path}: line {line}: expected '<video path> <integer label>', got {text!r}")
        rel, label = parts[0], int(parts[1])
        if label < 0:
            raise AnnotationError(f"{path}: line {line}: label must be >= 0, got {label}")
        once(rel, str(label), f"line {line}")
        candidate = Path(rel) if Path(rel).is_absolute() else resolve.directory / rel
        video = candidate if candidate.exists() else resolve(Path(rel).name, Path(rel).stem, default=rel)
        videos.append(VideoRecord(video, Path(rel).stem))
        labels.append(label)
    return videos, labels


def _numbered_classes(labels: list[int], source: Path) -> list[str]:
    warnings.warn(f"{source}: no class-name file ({' / '.join(CLASS_FILES)}) found; classes are named by "
                  "their ids, which the text-encoder classifier cannot read", stacklevel=3)
    return [str(i) for i in range(max(labels) + 1)] if labels else []


def ssv2_class_name(template: str) -> str:
    """SSv2 template -> class name: ``"Putting [something] onto [something]"`` -> ``"Putting something onto something"``."""
    return re.sub(r"\[([^\]]*)\]", r"\1", template).strip()


def read_ssv2(root: str | os.PathLike, split: str = "train", video_dir: str | None = None) -> LabelAnnotations:
    """Something-Something-v2: ``something-something-v2-{train,validation}.json`` + ``-labels.json``
    (also accepted: ``train.json`` / ``validation.json`` / ``labels.json``, e.g. in ``labels/``).

    Split files are JSON lists of ``{"id": "78687", "label": "holding potato next to ...",
    "template": "Holding [something] next to [something]", "placeholders": [...]}``; the labels file
    maps class names (templates without brackets) to string ids: ``{"Approaching something with
    your camera": "0", ...}``. Class = the template with its brackets removed. Videos:
    ``<id>.webm`` anywhere under ``root`` (e.g. ``20bn-something-something-v2/``).
    ``class_twins``: the templates that are each other's time reversal (``Pushing something from left
    to right`` / ``... from right to left``, :func:`reversal_class_pairs`); clip twins as in
    :func:`read_twins`.
    """
    root = Path(root)
    which = _split_alias(split, {"train": "train", "val": "validation", "validation": "validation",
                                 "test": "test"}, "ssv2")
    if which == "test":
        raise ValueError("ssv2: the test split has no labels; evaluate on split='val' (validation)")
    labels_path = _find_file(root, ["something-something-v2-labels.json", "labels.json"], "SSv2 labels")
    table = _read_json(labels_path)
    if not isinstance(table, dict):
        raise AnnotationError(f"{labels_path}: expected an object {{class name: id}}, got {type(table).__name__}")
    try:
        ids = {name: int(value) for name, value in table.items()}
    except (TypeError, ValueError) as err:
        raise AnnotationError(f"{labels_path}: every value must be an integer id (as in \"0\"), {err}") from err
    if sorted(ids.values()) != list(range(len(ids))):
        raise AnnotationError(f"{labels_path}: ids must be 0..{len(ids) - 1} with no gaps or repeats")
    classes = [name for name, _ in sorted(ids.items(), key=lambda kv: kv[1])]
    path = _find_file(root, [f"something-something-v2-{which}.json", f"{which}.json"], f"SSv2 {which} annotations")
    resolve = _Resolver(root, video_dir)
    videos, labels = [], []
    once = _OneLabelPerVideo(path)
    for k, entry in enumerate(_json_list(_read_json(path), path)):
        vid = str(_json_field(entry, "id", f"[{k}]", path, (str, int)))
        template = _json_field(entry, "template", f"[{k}]", path)
        name = ssv2_class_name(template)
        if name not in ids:
            raise AnnotationError(f"{path}: [{k}].template: {template!r} (class {name!r}) is not in {labels_path}")
        once(vid, name, f"[{k}]")
        videos.append(VideoRecord(resolve(vid, default=f"{vid}.webm"), vid))
        labels.append(ids[name])
    resolve.warn_missing(path, "ssv2", len(videos))
    twins = _Twins(videos, labels, classes, split)
    twins.add_file(root)
    return LabelAnnotations(videos, labels, classes, str(path), twins=twins.index(),
                            class_twins=_class_twins_or_none(classes))


def read_generic_label(root: str | os.PathLike, split: str = "train", video_dir: str | None = None) -> LabelAnnotations:
    """Your own recognition data: a folder of videos + ``<split>.csv`` or ``<split>.json``.

    * CSV, header ``video,label``; JSON, a list of ``{"video": "videos/a.mp4", "label": "jumping"}``.
    * ``label`` is a class name or an integer id. Class names come from ``classes.txt`` beside the
      annotation file (one per line; line i = id i) if present, else the sorted names used in the
      ``train/val/test`` annotation files of that folder.
    * Reversal twins (optional): a ``twin`` column (JSON: ``"twin"`` key) giving the video (path as in
      ``video``, or its file name or id) that is this clip's exact time reversal, empty for none; or a
      ``twins.csv`` / ``twins.txt`` beside the annotation file (see :func:`read_twins`). Declaring one
      side of a pair is enough. The twin must be in the same split.
    * Reversal classes: class names that are each other's time reversal by the swaps of
      :data:`REVERSAL_SWAPS` (``moves left`` / ``moves right``) give ``class_twins``
      (:func:`reversal_class_pairs`).
    Paths as in :func:`read_generic_text`.
    """
    path = _generic_file(Path(root), split)
    rows = _generic_rows(path, "label")
    class_file = path.parent / "classes.txt"
    if class_file.is_file():
        classes = _read_class_file(class_file)
    elif rows and all(str(v).isdigit() for _, _, v in rows):
        classes = _numbered_classes([int(v) for _, _, v in rows], path)
    else:
        names = {str(v) for _, _, v in rows}
        for other in ("train", "val", "test"):
            for suffix in (".csv", ".json"):
                f = path.parent / f"{other}{suffix}"
                if f.is_file() and f != path:
                    names.update(str(v) for _, _, v in _generic_rows(f, "label"))
        classes = sorted(names)
    inferred = not class_file.is_file()
    if inferred:
        _warn_near_duplicates(classes, path)
    position = {name: i for i, name in enumerate(classes)}
    videos, labels = [], []
    once = _OneLabelPerVideo(path)
    for where, video, value in rows:
        value = str(value)
        if value in position:
            label = position[value]
        elif value.isdigit() and int(value) < len(classes):
            label = int(value)
        else:
            raise AnnotationError(f"{path}: {where}: label {value!r} is neither a class name nor an id "
                                  f"below {len(classes)}{f' (classes from {class_file})' if class_file.is_file() else ''}")
        if not video:
            raise AnnotationError(f"{path}: {where}: empty video path")
        record = VideoRecord(_generic_video(path, video, video_dir), Path(video).stem)
        once(os.path.normpath(record.path), classes[label], where)
        videos.append(record)
        labels.append(label)
    _warn_missing_paths(videos, path, "generic_label")
    twins = _Twins(videos, labels, classes, split, lambda raw: _generic_video(path, raw, video_dir))
    twins.add(_generic_twin_column(path), path)
    twins.add_file(path.parent)
    return LabelAnnotations(videos, labels, classes, str(path), inferred_classes=inferred, twins=twins.index(),
                            class_twins=_class_twins_or_none(classes))


# ==================================================================================================
# declared reversal twins (recognition)
# ==================================================================================================
TWIN_FILES = ("twins.csv", "twins.txt")
SYNTH_META = "synth_meta.json"  # written by `stanlib synth`: every clip's id and its twin's id


def read_twins(folder: str | os.PathLike) -> tuple[list[tuple[str, str, str]], Path] | None:
    """The reversal pairs a dataset folder declares, as ``([(where, video, twin), ...], file)``; None if none.

    Looked for in ``folder`` (or one folder below), first found wins:

    * ``twins.csv``: header ``video,twin``, one pair per row (an empty ``twin``: no twin);
    * ``twins.txt``: one pair per line, the two videos separated by a space or a comma (``#``: comment);
    * ``synth_meta.json``: the ``id`` / ``twin`` of every item (``stanlib synth`` writes it).

    A video is named by its path (relative to the folder), file name or id. One file may cover every
    split: a split uses the pairs whose videos it lists.
    """
    folder = Path(folder)
    for name in TWIN_FILES:
        path = _optional_file(folder, [name]) if folder.is_dir() else None
        if path is None:
            continue
        if name.endswith(".csv"):
            rows = [(f"line {line}", row["video"].strip(), (row["twin"] or "").strip())
                    for line, row in _read_csv(path, ["video", "twin"])]
        else:
            rows = []
            for line, text in _read_lines(path):
                if text.startswith("#"):
                    continue
                parts = text.replace(",", " ").split()
                if len(parts) != 2:
                    raise AnnotationError(f"{path}: line {line}: expected two videos (a clip and its time reversal) "
                                          f"separated by a space or a comma, got {text!r}")
                rows.append((f"line {line}", parts[0], parts[1]))
        return [r for r in rows if r[1] and r[2]], path
    meta = folder / SYNTH_META
    if meta.is_file():
        data = _read_json(meta)
        items = data.get("items") if isinstance(data, dict) else None
        if isinstance(items, list):
            return [(f"items[{k}]", str(item["id"]), str(item["twin"])) for k, item in enumerate(items)
                    if isinstance(item, dict) and "id" in item and item.get("twin") is not None], meta
    return None


def _generic_twin_column(path: Path) -> list[tuple[str, str, str]]:
    """(where, video, twin) of the rows of a generic annotation file that fill the optional ``twin`` field."""
    rows = []
    if path.suffix.lower() == ".json":
        for k, entry in enumerate(_json_list(_read_json(path), path)):
            twin = entry.get("twin") if isinstance(entry, dict) else None
            if twin is None or twin == "":
                continue
            if not isinstance(twin, (str, int)):
                raise AnnotationError(f"{path}: [{k}].twin: expected the video of the clip's time reversal "
                                      f"(a path or id), got {twin!r}")
            rows.append((f"[{k}]", str(entry.get("video", "")).strip(), str(twin).strip()))
    else:
        for line, row in _read_csv(path, ["video"]):
            twin = (row.get("twin") or "").strip()
            if twin:
                rows.append((f"line {line}", row["video"].strip(), twin))
    return rows


class _Twins:
    """Turns declared (video, twin) pairs into the twin index of each clip of one split, checking them:
    the twin must be in the split, a clip has one twin, and the two clips have different classes."""

    def __init__(self, videos: Sequence[VideoRecord], labels: Sequence[int], classes: Sequence[str], split: str,
                 resolve: Callable[[str], Path] | None = None):
        self.videos, self.labels, self.classes, self.split, self.resolve = videos, labels, classes, split, resolve
        self.twins = [-1] * len(videos)
        self.keys: dict[str, int] = {}
        self.ambiguous: set[str] = set()
        for i, v in enumerate(videos):
            norm = os.path.normpath(v.path)
            for key in {v.video_id, norm, v.path.name}:
                j = self.keys.setdefault(key, i)
                if j != i and os.path.normpath(videos[j].path) != norm:
                    self.ambiguous.add(key)

    def find(self, raw: str, source: Path, where: str) -> int | None:
        candidates = [raw, os.path.normpath(self.resolve(raw)) if self.resolve else raw, Path(raw).name,
                      Path(raw).stem]
        for key in candidates:
            if key in self.ambiguous:
                raise AnnotationError(f"{source}: {where}: {raw!r} matches several videos of split {self.split!r}; "
                                      "name the twin by its path")
            if key in self.keys:
                return self.keys[key]
        return None

    def add(self, pairs: Sequence[tuple[str, str, str]], source: Path) -> None:
        for where, video, twin in pairs:
            a, b = self.find(video, source, where), self.find(twin, source, where)
            if a is None and b is None:
                continue  # a pair of another split
            if a is None or b is None:
                missing, present = (video, twin) if a is None else (twin, video)
                raise AnnotationError(f"{source}: {where}: twin {missing!r} of {present!r} is not a video of split "
                                      f"{self.split!r}; a clip's twin (its exact time reversal) must be in the same "
                                      "split: add it, or remove the pair")
            if a == b:
                raise AnnotationError(f"{source}: {where}: {video!r} is declared its own twin; a twin is another "
                                      "clip, the time reversal of this one")
            for x, y in ((a, b), (b, a)):
                if self.twins[x] not in (-1, y):
                    raise AnnotationError(
                        f"{source}: {where}: {self.videos[x].video_id!r} is declared the twin of both "
                        f"{self.videos[self.twins[x]].video_id!r} and {self.videos[y].video_id!r}; a clip has one "
                        "time reversal")
                self.twins[x] = y
            if self.labels[a] == self.labels[b]:
                raise AnnotationError(
                    f"{source}: {where}: twins {video!r} and {twin!r} are both in class "
                    f"{self.classes[self.labels[a]]!r}; a clip and its time reversal belong to the two classes of a "
                    "reversal pair (e.g. 'moves left' / 'moves right'): fix the labels or remove the pair")

    def add_file(self, folder: Path) -> None:
        found = read_twins(folder)
        if found is not None:
            self.add(*found)

    def index(self) -> list[int] | None:
        return self.twins if any(t >= 0 for t in self.twins) else None


# ==================================================================================================
# reversal classes: class names that are each other's time reversal
# ==================================================================================================
# Phrase swaps, each read both ways. A phrase matches whole words, case-insensitively, and its
# replacement keeps the case of the first letter matched ("Opening" -> "Closing"). Covered
# Something-Something-v2 pairs: left / right (pushing, pulling, turning the camera), up / down
# (moving something), upwards / downwards (turning the camera), towards / away from the camera,
# closer to / away from (something; each other), approaching / moving away from something with
# the camera, opening / closing, folding / unfolding, covering / uncovering, putting into / taking
# out of, burying in / digging out of. The synthetic worlds: moves left / right, up / down, grows /
# shrinks, rotates clockwise / counterclockwise, fades in / out. Zooming in on / out of matches no SSv2
# template; it serves other label sets.
REVERSAL_SWAPS: tuple[tuple[str, str], ...] = (
    ("left", "right"),
    ("up", "down"),
    ("upwards", "downwards"),
    ("towards", "away from"),
    ("closer to", "away from"),
    ("approaching something with your camera", "moving away from something with your camera"),
    ("zooming in on", "zooming out of"),
    ("opening", "closing"),
    ("folding", "unfolding"),
    ("covering something with something", "uncovering something"),
    ("putting something into something", "taking something out of something"),
    ("burying something in something", "digging something out of something"),
    ("grows", "shrinks"),
    ("clockwise", "counterclockwise"),
    ("fades in", "fades out"),
)


def _swap(name: str, a: str, b: str) -> str:
    """``name`` with every whole-word ``a`` and ``b`` exchanged at once (first-letter case kept)."""
    other = {a.lower(): b, b.lower(): a}
    pattern = re.compile(r"\b(" + "|".join(re.escape(p) for p in sorted((a, b), key=len, reverse=True)) + r")\b",
                         re.IGNORECASE)

    def replace(match: re.Match) -> str:
        text = match.group(0)
        new = other[text.lower()]
        return new[0].upper() + new[1:] if text[0].isupper() else new

    return pattern.sub(replace, name)


def reversal_class_pairs(classes: Sequence[str],
                         swaps: Sequence[tuple[str, str]] = REVERSAL_SWAPS) -> list[int]:
    """Per class, the index of the class that is its time reversal, -1 for none.

    Each swap of ``swaps`` is applied alone to a class name; a name whose swaps give exactly one other
    class name proposes that class. Two classes pair when each proposes the other; a class with no
    proposal, several proposals, or a proposal not proposing it back gets -1.
    """
    position = {name: i for i, name in enumerate(classes)}
    proposal = []
    for name in classes:
        found = {position[swapped] for a, b in swaps
                 if (swapped := _swap(name, a, b)) != name and swapped in position}
        found.discard(position[name])
        proposal.append(found.pop() if len(found) == 1 else -1)
    return [p if p >= 0 and proposal[p] == c else -1 for c, p in enumerate(proposal)]


def _class_twins_or_none(classes: Sequence[str]) -> list[int] | None:
    """:func:`reversal_class_pairs` of ``classes``, or None when no class has a partner."""
    pairs = reversal_class_pairs(classes)
    return pairs if any(p >= 0 for p in pairs) else None


READERS: dict[str, Callable[..., TextAnnotations | LabelAnnotations]] = {
    "msrvtt": read_msrvtt, "didemo": read_didemo, "lsmdc": read_lsmdc, "msvd": read_msvd,
    "generic_text": read_generic_text,
    "k400": read_k400, "ssv2": read_ssv2, "generic_label": read_generic_label,
}


def read_annotations(name: str, root: str | os.PathLike, split: str = "train",
                     **kwargs: Any) -> TextAnnotations | LabelAnnotations:
    """Run the reader of dataset ``name`` (see ``READERS``) without building a dataset."""
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(READERS)}")
    return READERS[name](root, split, **kwargs)


# ==================================================================================================
# skipped-video bookkeeping between __getitem__ and collate
# ==================================================================================================
# A skipped item is returned as None. DataLoader calls collate_fn in the same process (worker)
# right after fetching that batch's items, so each process keeps its recent skips here and
# collate() takes the last ones: the files are reported without changing the item contract.
_SKIP_LOG: list[tuple[str, str]] = []
_WARNED: set[str] = set()


def _record_skip(path: str, reason: str) -> None:
    _SKIP_LOG.append((path, reason))
    del _SKIP_LOG[:-10_000]  # bounded if someone indexes a dataset without ever collating


def collate(batch: Sequence[dict | None]) -> dict[str, Any]:
    """Collate dataset items, dropping skipped (``None``) ones.

    Returns a dict with the stacked fields (``frames`` (B,T,3,H,W) or (B,V,T,3,H,W), ``tokens``,
    ``label``, ``video_idx``, ``caption_idx`` as tensors), ``size`` (items kept), and
    ``skipped`` / ``skip_reasons`` (paths and causes of dropped videos). If every item was
    skipped, only ``size`` (0), ``skipped`` and ``skip_reasons`` are present.
    """
    n_skipped = sum(item is None for item in batch)
    recent = _SKIP_LOG[-n_skipped:] if n_skipped else []
    _SKIP_LOG.clear()
    recent = [("<unknown: skipped in another process>", "")] * (n_skipped - len(recent)) + recent
    items = [item for item in batch if item is not None]
    out: dict[str, Any] = {"skipped": [p for p, _ in recent], "skip_reasons": [r for _, r in recent],
                           "size": len(items)}
    if not items:
        return out
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], (int, float)):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    return out


# ==================================================================================================
# datasets
# ==================================================================================================
@dataclass
class ClipOptions:
    """How clips are sampled, decoded and transformed (shared by both dataset classes)."""

    num_frames: int = 8
    image_size: int = 224
    train: bool = False
    sampling: str = "segment"  # "segment" (TSN) or "dense"
    frame_interval: int = 1  # dense sampling only
    num_clips: int = 1  # test: temporal views
    num_crops: int = 1  # test: 1 (centre) or 3 spatial crops
    resize: int | None = None  # short side before cropping (train default 256 for 224 px)
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    backend: str | None = None  # None: $STANLIB_VIDEO_BACKEND or decord if installed, else pyav
    decode_fallback: bool = True  # a file decord cannot read is read with PyAV (see stanlib.data.video)
    num_threads: int = 1  # decoder threads per DataLoader worker
    normalise: bool = True  # False: uint8 frames out; the consumer normalises (transforms.frames_to_device)
    on_error: str | None = None  # "raise" | "skip"; None: skip in training, raise in evaluation

    def __post_init__(self):
        if self.on_error is None:
            self.on_error = "skip" if self.train else "raise"
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {self.on_error!r}")
        if self.train and (self.num_clips != 1 or self.num_crops != 1):
            raise ValueError("multi-view (num_clips/num_crops > 1) is for evaluation; set train=False")
        self.backend = get_backend(self.backend)  # fail early on a bad backend name


class _ClipDataset(Dataset):
    """Shared clip loading: sampling -> decoding only the needed frames -> transform."""

    videos: list[VideoRecord]

    def __init__(self, options: ClipOptions, transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.options = options
        self.transform = transform or ClipTransform(
            options.image_size, train=options.train, resize=options.resize, scale=options.crop_scale,
            ratio=options.crop_ratio, num_crops=options.num_crops, mean=options.mean, std=options.std,
            normalise=options.normalise)

    @property
    def train(self) -> bool:
        return self.options.train

    @property
    def num_views(self) -> int:
        return self.options.num_clips * self.options.num_crops

    def load_clip(self, video_idx: int) -> torch.Tensor:
        """Frames of one video: float (T,3,H,W), or (V,T,3,H,W) with several test views.

        Raises :class:`VideoDecodeError` (file + cause) whatever ``on_error`` says.
        """
        o = self.options
        record = self.videos[video_idx]
        with open_video(record.path, o.backend, o.num_threads, fallback=o.decode_fallback) as reader:
            if len(reader) == 0:
                raise VideoDecodeError(record.path, "video has no frames")
            clips = sample_indices(len(reader), o.num_frames, train=o.train, sampling=o.sampling,
                                   frame_interval=o.frame_interval, num_clips=o.num_clips)
            flat = [i for clip in clips for i in clip]
            frames = torch.from_numpy(reader.get_batch(flat)).permute(0, 3, 1, 2)  # (K*T,3,H,W)
        views = []
        for k in range(len(clips)):
            view = self.transform(frames[k * o.num_frames:(k + 1) * o.num_frames])
            views.append(view if view.ndim == 5 else view.unsqueeze(0))
        out = torch.cat(views)  # clip-major: clip 0 crops, clip 1 crops, ...
        return out[0] if out.shape[0] == 1 else out

    def _frames_or_skip(self, video_idx: int) -> torch.Tensor | None:
        try:
            return self.load_clip(video_idx)
        except VideoDecodeError as err:
            if self.options.on_error == "raise":
                raise
            if err.path not in _WARNED:  # once per file and process; the trainer reports the totals
                _WARNED.add(err.path)
                log.warning("skipping %s", err)
            _record_skip(err.path, err.reason)
            return None

    def _describe(self) -> str:
        o = self.options
        views = f", views={o.num_clips}x{o.num_crops}" if self.num_views > 1 else ""
        return (f"{len(self.videos)} videos, {'train' if o.train else 'eval'}, {o.num_frames} frames "
                f"({o.sampling}), {o.image_size}px{views}, backend={o.backend}, on_error={o.on_error}")


class VideoTextDataset(_ClipDataset):
    """Video-text retrieval data (see the module docstring for the item contract).

    Args:
        videos, captions, caption_video: the annotations (``caption_video[i]`` = video of caption i).
        tokenizer: a callable ``texts -> LongTensor`` (e.g. from ``stanlib.model.tokenizer.get_tokenizer``
            or ``model.tokenize``) or a CLIP name such as ``"stan-tiny"``; None: items carry no tokens.
        context_length: text length passed to the tokenizer (recipes: 32, DiDeMo 64); None: its default.
        mode: ``"pairs"`` (one item per caption; default when training) or ``"videos"`` (one item per
            video; default in evaluation).
        options / **clip_kwargs: a :class:`ClipOptions` or its fields (num_frames, image_size, train, ...).
    """

    def __init__(self, videos: Sequence[VideoRecord], captions: Sequence[str], caption_video: Sequence[int], *,
                 tokenizer: Callable | str | None = None, context_length: int | None = None,
                 mode: str | None = None, options: ClipOptions | None = None,
                 transform: Callable | None = None, **clip_kwargs: Any):
        super().__init__(options or ClipOptions(**clip_kwargs), transform)
        self.videos = list(videos)
        self.captions = list(captions)
        self.caption_video = [int(v) for v in caption_video]
        if len(self.captions) != len(self.caption_video):
            raise ValueError(f"{len(self.captions)} captions but {len(self.caption_video)} caption_video entries")
        bad = [v for v in self.caption_video if not 0 <= v < len(self.videos)]
        if bad:
            raise ValueError(f"caption_video holds {bad[0]}, outside [0, {len(self.videos)})")
        self.mode = mode or ("pairs" if self.train else "videos")
        if self.mode not in ("pairs", "videos"):
            raise ValueError(f"mode must be 'pairs' or 'videos', got {self.mode!r}")
        if isinstance(tokenizer, str):
            from stanlib.model.tokenizer import get_tokenizer

            tokenizer = get_tokenizer(tokenizer, context_length)
        self.tokenizer = tokenizer
        self.context_length = context_length
        self._all_tokens: torch.Tensor | None = None

    @property
    def video_captions(self) -> list[list[int]]:
        """Caption indices of each video (MSR-VTT test: one each; MSVD: ~40 each)."""
        out: list[list[int]] = [[] for _ in self.videos]
        for c, v in enumerate(self.caption_video):
            out[v].append(c)
        return out

    def _tokenize(self, texts: list[str]) -> torch.Tensor:
        if self.tokenizer is None:
            raise RuntimeError("this dataset has no tokenizer; pass tokenizer=<callable or CLIP name>")
        if self.context_length is None:
            return self.tokenizer(texts)
        return self.tokenizer(texts, context_length=self.context_length)

    def tokens(self) -> torch.Tensor:
        """All captions tokenised: LongTensor (num_captions, C) (computed once)."""
        if self._all_tokens is None:
            self._all_tokens = self._tokenize(self.captions)
        return self._all_tokens

    def __len__(self) -> int:
        return len(self.captions) if self.mode == "pairs" else len(self.videos)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        if self.mode == "videos":
            frames = self._frames_or_skip(index)
            return None if frames is None else {"frames": frames, "video_idx": index}
        video_idx = self.caption_video[index]
        frames = self._frames_or_skip(video_idx)
        if frames is None:
            return None
        item = {"frames": frames, "video_idx": video_idx, "caption_idx": index}
        if self.tokenizer is not None:
            item["tokens"] = self._all_tokens[index] if self._all_tokens is not None else \
                self._tokenize([self.captions[index]])[0]
        return item

    def __repr__(self) -> str:
        return f"VideoTextDataset({len(self.captions)} captions, {self._describe()}, mode={self.mode})"


class VideoLabelDataset(_ClipDataset):
    """Video recognition data: item ``{"frames", "label", "video_idx"}``.

    ``frames`` is (T,3,H,W), or (V,T,3,H,W) with ``num_clips * num_crops = V > 1`` test views
    (the recipe's "1x3" is ``num_clips=1, num_crops=3``). ``classes`` holds the class names;
    ``twins`` (or None) the index of each clip's declared time reversal, -1 for none;
    ``class_twins`` (or None) per class, the class that plays it backwards, -1 for none.
    """

    def __init__(self, videos: Sequence[VideoRecord], labels: Sequence[int], classes: Sequence[str], *,
                 twins: Sequence[int] | None = None, class_twins: Sequence[int] | None = None,
                 options: ClipOptions | None = None,
                 transform: Callable | None = None, **clip_kwargs: Any):
        super().__init__(options or ClipOptions(**clip_kwargs), transform)
        self.videos = list(videos)
        self.labels = [int(v) for v in labels]
        self.classes = list(classes)
        if len(self.labels) != len(self.videos):
            raise ValueError(f"{len(self.videos)} videos but {len(self.labels)} labels")
        bad = [v for v in self.labels if not 0 <= v < len(self.classes)]
        if bad:
            raise ValueError(f"label {bad[0]} is outside [0, {len(self.classes)})")
        self.twins = None if twins is None else [int(t) for t in twins]
        if self.twins is not None and (len(self.twins) != len(self.videos) or
                                       any(not -1 <= t < len(self.videos) for t in self.twins)):
            raise ValueError(f"twins must hold one index in [-1, {len(self.videos)}) per video (-1: no twin)")
        self.class_twins = None if class_twins is None else [int(t) for t in class_twins]
        if self.class_twins is not None and (len(self.class_twins) != len(self.classes) or
                                             any(not -1 <= t < len(self.classes) for t in self.class_twins)):
            raise ValueError(f"class_twins must hold one class index in [-1, {len(self.classes)}) per class "
                             "(-1: no reversal class)")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        frames = self._frames_or_skip(index)
        return None if frames is None else {"frames": frames, "label": self.labels[index], "video_idx": index}

    def __repr__(self) -> str:
        return f"VideoLabelDataset({len(self.classes)} classes, {self._describe()})"


def build_dataset(name: str, root: str | os.PathLike, split: str = "train", *,
                  tokenizer: Callable | str | None = None, num_frames: int = 8, image_size: int = 224,
                  mode: str | None = None, context_length: int | None = None, train: bool | None = None,
                  num_views: int | None = None, video_dir: str | None = None,
                  reader_kwargs: dict | None = None, **clip_kwargs: Any) -> VideoTextDataset | VideoLabelDataset:
    """Read dataset ``name`` from ``root`` and wrap it in the matching dataset class.

    Args:
        name: ``msrvtt``, ``didemo``, ``lsmdc``, ``msvd``, ``generic_text`` (-> VideoTextDataset) or
            ``k400``, ``ssv2``, ``generic_label`` (-> VideoLabelDataset).
        root: the dataset folder (``generic_*``: or the annotation file itself).
        split: ``train`` / ``val`` / ``test`` (each reader documents its aliases).
        tokenizer, context_length, mode: retrieval only, see :class:`VideoTextDataset`.
        num_frames, image_size: T and the crop size.
        train: training sampling/augmentation; default ``split == "train"``.
        num_views: shorthand for the recipe's test views: 3 -> 1 clip x 3 crops (same as
            ``num_crops=3``); use ``num_clips`` / ``num_crops`` for other layouts.
        video_dir: where to look for videos (default: anywhere under ``root``).
        reader_kwargs: extra reader arguments (e.g. ``{"format": "list"}`` for k400).
        **clip_kwargs: other :class:`ClipOptions` fields: ``sampling``, ``frame_interval``,
            ``num_clips``, ``num_crops``, ``resize``, ``crop_scale``, ``crop_ratio``, ``backend``,
            ``num_threads``, ``on_error``, ``normalise``.
    """
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(READERS)}")
    if num_views is not None and num_views != 1:
        if num_views != 3 or clip_kwargs.get("num_crops", 1) != 1:
            raise ValueError(f"num_views={num_views}: only 3 (1 clip x 3 crops) is a shorthand; "
                             "pass num_clips and num_crops instead")
        clip_kwargs["num_crops"] = 3
    is_train = (split == "train") if train is None else train
    options = ClipOptions(num_frames=num_frames, image_size=image_size, train=is_train, **clip_kwargs)
    ann = read_annotations(name, root, split, video_dir=video_dir, **(reader_kwargs or {}))
    if not ann.videos:
        raise AnnotationError(f"{ann.source}: split {split!r} of {name} lists no videos; expected at least one "
                              "entry (is this the right file?)")
    if isinstance(ann, TextAnnotations):
        ds: VideoTextDataset | VideoLabelDataset = VideoTextDataset(
            ann.videos, ann.captions, ann.caption_video, tokenizer=tokenizer,
            context_length=context_length, mode=mode, options=options)
    else:
        if mode not in (None, "videos"):
            raise ValueError(f"{name} is a recognition dataset: mode {mode!r} does not apply")
        ds = VideoLabelDataset(ann.videos, ann.labels, ann.classes, twins=ann.twins,
                               class_twins=ann.class_twins, options=options)
    ds.name, ds.split, ds.source = name, split, ann.source
    return ds
