"""Tests for stanlib.data: sampling, decoding (decord and PyAV), transforms, readers, bad input, CLI."""
from __future__ import annotations

import csv
import json
import pickle
import shutil
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from stanlib.data import (BACKEND_ENV, AnnotationError, VideoDecodeError, VideoLabelDataset, VideoTextDataset,
                          build_dataset, collate, decord_available, dense_indices, get_backend, open_video,
                          read_annotations, read_frames, sample_indices, segment_indices, test_transform,
                          train_transform)
from stanlib.data.tools import cli_main
from stanlib.data.transforms import CLIP_MEAN, CLIP_STD, denormalise
from stanlib.data.video import decode_frame_code, test_pattern, write_video

FIXTURES = Path(__file__).resolve().parents[1] / "data_samples" / "fixtures"
BACKENDS = [pytest.param("decord", marks=pytest.mark.skipif(not decord_available(), reason="decord not installed")),
            "pyav"]


# --------------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------------
def test_segment_sampling_test_mode_takes_segment_middles():
    assert segment_indices(30, 3, train=False) == [5, 15, 25]
    assert segment_indices(12, 12, train=False) == list(range(12))
    # two temporal views: positions 1/4 and 3/4 of each 10-frame segment
    assert segment_indices(30, 3, train=False, num_clips=2, clip_idx=0) == [2, 12, 22]
    assert segment_indices(30, 3, train=False, num_clips=2, clip_idx=1) == [7, 17, 27]


def test_segment_sampling_train_mode_draws_one_frame_per_segment():
    g = torch.Generator().manual_seed(0)
    seen = [set() for _ in range(3)]
    for _ in range(300):
        idx = segment_indices(30, 3, train=True, generator=g)
        for k, i in enumerate(idx):
            assert 10 * k <= i < 10 * (k + 1)
            seen[k].add(i)
    assert all(len(s) == 10 for s in seen)  # every frame of every segment gets drawn


def test_short_videos_repeat_indices_in_order():
    assert segment_indices(2, 4, train=False) == [0, 0, 1, 1]
    assert segment_indices(5, 8, train=False) == [0, 0, 1, 2, 2, 3, 4, 4]
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        idx = segment_indices(3, 8, train=True, generator=g)
        assert len(idx) == 8 and idx == sorted(idx) and set(idx) <= {0, 1, 2}
    assert segment_indices(1, 4, train=True) == [0, 0, 0, 0]


def test_dense_sampling():
    # 100 frames, 8 x 4: span 29, 72 valid starts; centred clip starts at 36
    assert dense_indices(100, 8, 4, train=False) == list(range(36, 65, 4))
    assert [dense_indices(100, 8, 4, train=False, num_clips=3, clip_idx=k)[0] for k in range(3)] == [12, 36, 60]
    g = torch.Generator().manual_seed(0)
    starts = {dense_indices(100, 8, 4, train=True, generator=g)[0] for _ in range(400)}
    assert min(starts) >= 0 and max(starts) <= 71 and len(starts) > 50
    # too short for the interval: evenly spread over the whole video, repeats when < clip_len frames
    assert dense_indices(10, 8, 4, train=False) == [0, 1, 2, 3, 5, 6, 7, 8]
    assert dense_indices(4, 8, 2, train=True) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_sample_indices_views_and_errors():
    assert sample_indices(30, 3, train=False, num_clips=2) == [[2, 12, 22], [7, 17, 27]]
    assert len(sample_indices(30, 3, train=True, num_clips=2)) == 1  # training: one clip
    with pytest.raises(ValueError, match="sampling"):
        sample_indices(30, 3, train=False, sampling="random")
    with pytest.raises(ValueError, match="positive"):
        segment_indices(0, 3, train=False)


# --------------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------------
FIXTURE_VIDEOS = ["msrvtt/videos/all/video0.mp4",  # H.264 mp4
                  "lsmdc/videos/1001_Example_Movie/1001_Example_Movie_00.00.51.926-00.00.54.129.avi",  # MPEG-4 avi
                  "ssv2/20bn-something-something-v2/78687.webm"]  # VP9 webm


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("video", FIXTURE_VIDEOS)
def test_backends_return_the_requested_frames(backend, video):
    path = FIXTURES / video
    with open_video(path, backend) as reader:
        assert len(reader) == 30 and reader.fps == pytest.approx(25)
        frames = reader.get_batch([29, 0, 7, 7, 15])  # any order, repeats allowed
    assert frames.shape == (5, 120, 160, 3) and frames.dtype == np.uint8
    assert decode_frame_code(frames) == [29, 0, 7, 7, 15]  # the frame index painted in each frame


def test_backends_agree_on_pixels():
    if not decord_available():
        pytest.skip("decord not installed")
    path = FIXTURES / FIXTURE_VIDEOS[0]
    a = read_frames(path, [0, 10, 20], backend="decord").float()
    b = read_frames(path, [0, 10, 20], backend="pyav").float()
    assert a.shape == b.shape == (3, 3, 120, 160)
    assert (a - b).abs().mean() < 2.0


def test_backend_choice(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert get_backend() == ("decord" if decord_available() else "pyav")
    monkeypatch.setenv(BACKEND_ENV, "pyav")
    assert get_backend() == "pyav"
    assert get_backend("pyav") == "pyav"
    monkeypatch.setenv(BACKEND_ENV, "opencv")
    with pytest.raises(ValueError, match="STANLIB_VIDEO_BACKEND"):
        get_backend()


def test_pyav_fallback_is_chosen_when_decord_cannot_be_imported(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "decord", None)  # makes `import decord` raise ImportError
    assert not decord_available()
    assert get_backend() == "pyav"
    with pytest.raises(ImportError, match="pyav"):
        get_backend("decord")
    ds = build_dataset("msrvtt", FIXTURES / "msrvtt", "test", num_frames=4, image_size=32)
    assert ds.options.backend == "pyav"
    assert ds[0]["frames"].shape == (4, 3, 32, 32)


# --------------------------------------------------------------------------------------------------
# transforms
# --------------------------------------------------------------------------------------------------
def test_train_transform_applies_one_crop_to_every_frame():
    torch.manual_seed(0)
    image = torch.randint(0, 256, (1, 3, 90, 120), dtype=torch.uint8)
    clip = image.repeat(6, 1, 1, 1)
    tf = train_transform(48)
    out_a, out_b = tf(clip), tf(clip)
    assert out_a.shape == (6, 3, 48, 48) and out_a.dtype == torch.float32
    for out in (out_a, out_b):  # identical input frames stay identical: the crop is shared
        assert torch.equal(out, out[:1].expand_as(out))
    assert not torch.allclose(out_a, out_b)  # ... and it is random from clip to clip


def test_crop_scale_and_resize_are_configurable():
    clip = torch.randint(0, 256, (2, 3, 60, 80), dtype=torch.uint8)
    tf = train_transform(32, resize=40, scale=(1.0, 1.0), ratio=(4 / 3, 4 / 3))  # whole frame, no randomness
    assert tf.resize == 40 and train_transform(64).resize == 73 and train_transform(224).resize == 256
    assert torch.equal(tf(clip), tf(clip))


def test_normalisation_uses_clip_statistics():
    grey = torch.full((2, 3, 40, 40), 128, dtype=torch.uint8)
    out = test_transform(32)(grey)
    expected = (128 / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(out[:, :, 5, 5], expected.expand(2, 3), atol=1e-5)
    assert torch.allclose(denormalise(out), torch.full_like(out, 128 / 255), atol=1e-5)


def test_uint8_frames_normalised_on_the_device_equal_the_workers_float_frames():
    from stanlib.data import ClipTransform, frames_to_device

    clip = torch.randint(0, 256, (3, 3, 50, 70), dtype=torch.uint8)
    for views in (1, 3):  # test views: deterministic crops, so both transforms crop the same boxes
        floats = ClipTransform(32, num_crops=views)(clip)
        raw = ClipTransform(32, num_crops=views, normalise=False)(clip)
        assert raw.dtype == torch.uint8 and raw.shape == floats.shape
        assert "uint8 out" in repr(ClipTransform(32, normalise=False))
        moved = frames_to_device(raw, "cpu")
        assert moved.dtype == torch.float32 and torch.equal(moved, floats)  # bit for bit
    assert frames_to_device(floats, "cpu") is floats  # float frames are only moved
    other = frames_to_device(raw, "cpu", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert not torch.equal(other, floats) and torch.allclose(other, raw.float() / 127.5 - 1, atol=1e-6)


def test_dataset_with_normalise_false_yields_uint8_frames():
    ds = build_dataset("msrvtt", FIXTURES / "msrvtt", "test", num_frames=4, image_size=32, normalise=False)
    ref = build_dataset("msrvtt", FIXTURES / "msrvtt", "test", num_frames=4, image_size=32)
    item, expected = ds[0]["frames"], ref[0]["frames"]
    assert item.dtype == torch.uint8 and ds.options.normalise is False
    from stanlib.data import frames_to_device
    assert torch.equal(frames_to_device(item, "cpu"), expected)


def test_train_crop_box_is_drawn_on_the_resized_frame_and_mapped_back():
    # 128x128 frame, short side resized to 256 (x2): a 1/4-area square crop there is 128 px, i.e.
    # 64 px of the original; with size=64 the crop is copied 1:1, so it spans exactly 64 columns
    clip = _columns(128, 128)
    tf = train_transform(64, resize=256, scale=(0.25, 0.25), ratio=(1.0, 1.0))
    torch.manual_seed(0)
    lefts = set()
    for _ in range(20):
        out = (denormalise(tf(clip)) * 255).round()
        assert out[0, 0, 0, -1] - out[0, 0, 0, 0] == 63  # 64 consecutive original columns
        lefts.add(int(out[0, 0, 0, 0]))
    assert len(lefts) > 5 and max(lefts) <= 64  # random positions, always inside the frame


def _columns(width: int, height: int) -> torch.Tensor:
    """Frames whose pixel value is the column index (landscape) - crops are then easy to locate."""
    return torch.arange(width, dtype=torch.uint8).view(1, 1, 1, width).expand(2, 3, height, width).contiguous()


def test_centre_crop_and_three_crop_positions():
    clip = _columns(96, 64)  # short side already 64: no resize
    centre = denormalise(test_transform(64)(clip)) * 255
    assert centre[0, 0, 0, 0].round() == 16 and centre[0, 0, 0, -1].round() == 79
    views = denormalise(test_transform(64, num_crops=3)(clip)) * 255
    assert views.shape == (3, 2, 3, 64, 64)
    assert [int(v[0, 0, 0, 0].round()) for v in views] == [0, 16, 32]  # left, centre, right
    portrait = clip.transpose(-1, -2)  # 96 high, 64 wide: crops go top/centre/bottom
    rows = denormalise(test_transform(64, num_crops=3)(portrait)) * 255
    assert [int(v[0, 0, 0, 0].round()) for v in rows] == [0, 16, 32]


# --------------------------------------------------------------------------------------------------
# readers on the fixtures
# --------------------------------------------------------------------------------------------------
def _msrvtt_train_caption_count() -> int:
    root = FIXTURES / "msrvtt"
    with open(root / "MSRVTT_train.9k.csv") as f:
        ids = {row["video_id"] for row in csv.DictReader(f)}
    sentences = json.loads((root / "MSRVTT_data.json").read_text())["sentences"]
    return sum(s["video_id"] in ids for s in sentences)


# (dataset, split, videos, captions or labels)
TEXT_CASES = [("msrvtt", "train", 4, _msrvtt_train_caption_count()), ("msrvtt", "test", 3, 3),
              ("didemo", "train", 2, 2), ("didemo", "test", 1, 1), ("lsmdc", "train", 3, 3), ("lsmdc", "test", 2, 2),
              ("msvd", "train", 2, 5), ("msvd", "test", 1, 2), ("generic_text", "train", 2, 3),
              ("generic_text", "test", 1, 2)]
LABEL_CASES = [("k400", "train", 4, [0, 1, 2, 0]), ("k400", "val", 2, [1, 2]), ("ssv2", "train", 3, [1, 2, 4]),
               ("ssv2", "val", 2, [3, 0]), ("generic_label", "train", 2, [1, 1]), ("generic_label", "test", 1, [1])]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,split,num_videos,num_captions", TEXT_CASES)
def test_text_readers_load_their_fixtures(name, split, num_videos, num_captions, backend):
    ds = build_dataset(name, FIXTURES / name, split, tokenizer="stan-tiny", context_length=12,
                       num_frames=4, image_size=32, backend=backend, mode="pairs")
    assert isinstance(ds, VideoTextDataset)
    assert len(ds.videos) == num_videos and len(ds.captions) == num_captions == len(ds) == len(ds.caption_video)
    assert all(v.path.is_file() and v.video_id for v in ds.videos)
    assert sorted(set(ds.caption_video)) == list(range(num_videos))  # every video has a caption
    tokens = ds.tokens()
    assert tokens.shape == (num_captions, 12) and tokens.dtype == torch.long
    for i in range(len(ds)):
        item = ds[i]
        assert item["frames"].shape == (4, 3, 32, 32) and item["frames"].dtype == torch.float32
        assert torch.isfinite(item["frames"]).all()
        assert item["caption_idx"] == i and item["video_idx"] == ds.caption_video[i]
        assert torch.equal(item["tokens"], tokens[i])
    videos = VideoTextDataset(ds.videos, ds.captions, ds.caption_video, mode="videos", num_frames=4,
                              image_size=32, backend=backend)
    assert len(videos) == num_videos and set(videos[0]) == {"frames", "video_idx"}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,split,num_videos,labels", LABEL_CASES)
def test_label_readers_load_their_fixtures(name, split, num_videos, labels, backend):
    ds = build_dataset(name, FIXTURES / name, split, num_frames=4, image_size=32, backend=backend)
    assert isinstance(ds, VideoLabelDataset)
    assert len(ds) == num_videos and ds.labels == labels
    for i in range(len(ds)):
        item = ds[i]
        assert item["frames"].shape == (4, 3, 32, 32) and item["label"] == labels[i] and item["video_idx"] == i


def test_msrvtt_pairs_and_captions():
    train = read_annotations("msrvtt", FIXTURES / "msrvtt", "train")
    sentences = json.loads((FIXTURES / "msrvtt" / "MSRVTT_data.json").read_text())["sentences"]
    video0 = [s["caption"] for s in sentences if s["video_id"] == "video0"]
    assert [train.captions[i] for i, v in enumerate(train.caption_video) if v == 0] == video0
    test = read_annotations("msrvtt", FIXTURES / "msrvtt", "test")
    assert [v.video_id for v in test.videos] == ["video7010", "video7011", "video7012"]
    assert test.captions[0].startswith("a girl wearing red top")


def test_didemo_joins_all_descriptions_of_a_video():
    moments = json.loads((FIXTURES / "didemo" / "train_data.json").read_text())
    ann = read_annotations("didemo", FIXTURES / "didemo", "train")
    first = moments[0]["video"]
    assert ann.videos[0].video_id == first
    assert ann.captions[0] == " ".join(m["description"] for m in moments if m["video"] == first)
    assert ann.videos[0].path.name == first + ".mp4"  # found as <name>.mp4
    assert ann.videos[1].path.name == "45139289@N00_2386862069.mp4"  # found by stem


def test_lsmdc_keeps_quotes_and_finds_movie_folders():
    ann = read_annotations("lsmdc", FIXTURES / "lsmdc", "train")
    assert ann.captions[1] == 'He says "hello" and waves.'
    assert ann.videos[0].path.parent.name == "1001_Example_Movie"


def test_ssv2_class_names_drop_brackets():
    ds = build_dataset("ssv2", FIXTURES / "ssv2", "train", num_frames=2, image_size=32)
    assert "Putting number of something onto something" in ds.classes
    assert all("[" not in c for c in ds.classes)
    with pytest.raises(ValueError, match="no labels"):
        read_annotations("ssv2", FIXTURES / "ssv2", "test")


def test_k400_csv_and_path_label_list_agree():
    from_csv = read_annotations("k400", FIXTURES / "k400", "train")
    from_list = read_annotations("k400", FIXTURES / "k400", "train", format="list")
    assert from_csv.classes == from_list.classes == ["abseiling", "air drumming", "passing American football (in game)"]
    assert from_csv.labels == from_list.labels
    assert [v.path.resolve() for v in from_csv.videos] == [v.path.resolve() for v in from_list.videos]


def test_k400_classes_from_csv_names_without_label_map(tmp_path):
    root = tmp_path / "k400"
    shutil.copytree(FIXTURES / "k400", root)
    (root / "label_map_k400.txt").unlink()
    with open(FIXTURES / "k400" / "train.csv") as f:
        names = sorted({row["label"] for row in csv.DictReader(f)})
    assert read_annotations("k400", root, "val").classes == names


def test_multi_view_frames_and_collate():
    ds = build_dataset("k400", FIXTURES / "k400", "val", num_frames=4, image_size=32, num_clips=2, num_crops=3)
    assert ds.num_views == 6 and ds[0]["frames"].shape == (6, 4, 3, 32, 32)
    one_by_three = build_dataset("generic_label", FIXTURES / "generic_label", "test", num_frames=4, image_size=32,
                                 num_views=3)  # the portrait video: crops along its height
    assert one_by_three[0]["frames"].shape == (3, 4, 3, 32, 32)
    batch = collate([ds[0], ds[1]])
    assert batch["frames"].shape == (2, 6, 4, 3, 32, 32) and batch["label"].tolist() == ds.labels
    assert batch["size"] == 2 and batch["skipped"] == []
    with pytest.raises(ValueError, match="evaluation"):
        build_dataset("k400", FIXTURES / "k400", "train", num_crops=3)


def test_dataset_decodes_the_sampled_frames_and_repeats_short_videos():
    ann = read_annotations("msrvtt", FIXTURES / "msrvtt", "test")
    raw = VideoTextDataset(ann.videos, ann.captions, ann.caption_video, num_frames=8,
                           transform=lambda frames: frames)  # keep the decoded uint8 frames
    long_clip, short_clip = raw.load_clip(0), raw.load_clip(2)  # 30 frames, 5 frames
    assert decode_frame_code(long_clip) == segment_indices(30, 8, train=False)
    assert decode_frame_code(short_clip) == [0, 0, 1, 2, 2, 3, 4, 4]


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------
@pytest.fixture()
def bad_dataset(tmp_path):
    """A generic_label dataset with one good video and every kind of broken one."""
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(FIXTURES / "generic_label" / "videos" / "r1.mp4", videos / "good.mp4")
    (videos / "empty.mp4").write_bytes(b"")
    (videos / "garbage.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    data = bytearray(write_video(tmp_path / "src.mp4", test_pattern(30)).read_bytes())
    (videos / "truncated.mp4").write_bytes(data[: len(data) // 2])  # index (moov) at the end is lost
    start, end = data.find(b"mdat") + 8, data.find(b"moov")  # container intact, frame data garbled
    a, b = start + (end - start) // 4, start + 3 * (end - start) // 4
    data[a:b] = np.random.default_rng(1).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    (videos / "corrupt.mp4").write_bytes(data)
    fast = bytearray(write_video(tmp_path / "src_fs.mp4", test_pattern(30), faststart=True).read_bytes())
    (videos / "truncated_faststart.mp4").write_bytes(fast[: fast.find(b"mdat") + 8 + (len(fast) - fast.find(b"mdat")) // 2])
    names = ["good", "missing", "empty", "garbage", "truncated", "corrupt", "truncated_faststart"]
    with open(tmp_path / "train.csv", "w") as f:
        f.write("video,label\n" + "".join(f"videos/{n}.mp4,{'a' if i % 2 else 'b'}\n" for i, n in enumerate(names)))
    (tmp_path / "classes.txt").write_text("a\nb\n")
    return tmp_path, names


@pytest.mark.parametrize("backend", BACKENDS)
def test_eval_mode_raises_naming_the_file(bad_dataset, backend):
    root, names = bad_dataset
    with pytest.warns(UserWarning, match="1 of 7 videos"):  # the missing one, announced at load time
        ds = build_dataset("generic_label", root, "train", train=False, backend=backend, num_frames=4, image_size=32)
    assert ds.options.on_error == "raise"
    assert ds[0]["frames"].shape == (4, 3, 32, 32)
    expected = {"missing": "file not found", "empty": "empty file", "garbage": "cannot open",
                "truncated": "cannot open", "corrupt": "decoding frames failed"}
    for i, name in enumerate(names[1:], 1):
        with pytest.raises(VideoDecodeError) as info:
            ds[i]
        assert f"{name}.mp4" in str(info.value) and info.value.path.endswith(f"{name}.mp4")
        assert expected.get(name, "") in info.value.reason


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("workers", [0, 1])
def test_train_mode_skips_and_reports_bad_videos(bad_dataset, backend, workers):
    root, names = bad_dataset
    with pytest.warns(UserWarning):
        ds = build_dataset("generic_label", root, "train", backend=backend, num_frames=4, image_size=32)
    assert ds.train and ds.options.on_error == "skip"
    assert ds[1] is None  # the item contract: a skipped video is None
    collate([None])  # (drains the record of that direct call)
    loader = DataLoader(ds, batch_size=3, collate_fn=collate, num_workers=workers)
    kept, skipped = 0, []
    for batch in loader:
        kept += batch["size"]
        skipped += batch["skipped"]
        if batch["size"]:
            assert batch["frames"].shape[0] == batch["size"] and torch.isfinite(batch["frames"]).all()
    assert kept == 1
    assert sorted(Path(p).stem for p in skipped) == sorted(names[1:])
    with pytest.warns(UserWarning):
        strict = build_dataset("generic_label", root, "train", on_error="raise", backend=backend, num_frames=4)
    with pytest.raises(VideoDecodeError, match="missing.mp4"):
        strict[1]


def test_pyav_reports_frames_missing_from_a_truncated_avi(tmp_path):
    data = (FIXTURES / "msvd" / "YouTubeClips" / "-4wsuPCjDBc_5_15.avi").read_bytes()
    path = tmp_path / "half.avi"
    path.write_bytes(data[: len(data) * 9 // 10])  # the AVI header still promises 30 frames
    with open_video(path, "pyav") as reader:
        assert len(reader) == 30
        assert decode_frame_code(reader.get_batch([0, 20])) == [0, 20]
        with pytest.raises(VideoDecodeError, match="truncated: header says 30 frames but only"):
            reader.get_batch([0, 29])


def test_both_decord_exception_types_are_handled(bad_dataset, monkeypatch):
    if not decord_available():
        pytest.skip("decord not installed")
    import decord
    from decord._ffi.base import DECORDError

    assert not issubclass(DECORDError, RuntimeError)
    root, _ = bad_dataset
    corrupt = root / "videos" / "corrupt.mp4"
    reader = decord.VideoReader(str(corrupt), num_threads=1)  # opens fine ...
    with pytest.raises(DECORDError):  # ... and fails only in get_batch, with the non-RuntimeError type
        reader.get_batch(list(range(len(reader))))

    good = root / "videos" / "good.mp4"
    with pytest.warns(UserWarning, match="do not exist"):
        records = read_annotations("generic_label", root, "train").videos
    for error in (DECORDError("fake decord failure"), RuntimeError("fake runtime failure")):
        class Failing:
            def __init__(self, *args, **kwargs):
                self._len = 30

            def __len__(self):
                return 30

            def get_avg_fps(self):
                return 25.0

            def get_batch(self, indices):
                raise error

        monkeypatch.setattr(decord, "VideoReader", Failing)
        ds = VideoLabelDataset(records[:1], [0], ["a"], train=True, backend="decord",
                               decode_fallback=False, num_frames=4, image_size=32)
        assert ds[0] is None
        batch = collate([ds[0]])
        assert batch["skipped"] == [str(good)] and "fake" in batch["skip_reasons"][0]
        ds.options.on_error = "raise"
        with pytest.raises(VideoDecodeError, match="good.mp4.*fake"):
            ds[0]


def test_check_command_lists_bad_videos_and_writes_a_clean_list(bad_dataset, capsys):
    root, names = bad_dataset
    out = root / "clean" / "train_clean.csv"
    rc = cli_main(["check", "generic_label", "--root", str(root), "--split", "train", "--write-clean", str(out)])
    text = capsys.readouterr().out
    assert rc == 1
    assert "7 videos" in text and "1 ok, 6 bad" in text
    bad_lines = [ln for ln in text.splitlines() if ln.startswith("BAD ")]
    assert sorted(Path(ln.split(": ")[0][4:]).stem for ln in bad_lines) == sorted(names[1:])
    assert any("missing.mp4: file not found" in ln for ln in bad_lines)
    assert any("empty.mp4: empty file" in ln for ln in bad_lines)
    clean = build_dataset("generic_label", out, num_frames=2, image_size=32)
    assert [v.path.name for v in clean.videos] == ["good.mp4"] and clean.classes == ["a", "b"]
    assert clean.labels == [1] and clean[0]["frames"].shape == (2, 3, 32, 32)


def test_check_command_min_frames_and_clean_fixture(capsys):
    assert cli_main(["check", "msrvtt", "--root", str(FIXTURES / "msrvtt"), "--split", "test", "--full"]) == 0
    out = capsys.readouterr().out
    assert "3 ok, 0 bad" in out and "note: 1 usable videos have fewer than 8 frames" in out
    assert cli_main(["check", "msrvtt", "--root", str(FIXTURES / "msrvtt"), "--split", "test",
                     "--min-frames", "8"]) == 1
    assert "video7012.mp4: too short: 5 frames" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------
# malformed annotation files
# --------------------------------------------------------------------------------------------------
def _copy(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    return root


def test_broken_json_names_file_and_line(tmp_path):
    root = _copy(tmp_path, "msrvtt")
    path = root / "MSRVTT_data.json"
    path.write_text(path.read_text()[:300])
    with pytest.raises(AnnotationError, match=r"MSRVTT_data\.json: line \d+ column \d+: invalid JSON"):
        read_annotations("msrvtt", root, "train")


def test_json_entry_missing_key(tmp_path):
    root = _copy(tmp_path, "msrvtt")
    path = root / "MSRVTT_data.json"
    data = json.loads(path.read_text())
    del data["sentences"][4]["caption"]
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r"MSRVTT_data\.json: sentences\[4\]: missing key 'caption'"):
        read_annotations("msrvtt", root, "train")


def test_csv_header_and_row_errors(tmp_path):
    root = _copy(tmp_path, "k400")
    (root / "validate.csv").write_text("label,youtube,time_start,time_end,split\nabseiling,x,1,11,val\n")
    with pytest.raises(AnnotationError, match=r"validate\.csv: line 1: header must contain.*youtube_id"):
        read_annotations("k400", root, "val")
    (root / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                       "abseiling,x,1,11,val\nabseiling,y,1,11,val,extra\n")
    with pytest.raises(AnnotationError, match=r"validate\.csv: line 3: expected 5 fields"):
        read_annotations("k400", root, "val")
    (root / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\nskydiving,x,1,11,val\n")
    with pytest.raises(AnnotationError, match=r"line 2: label 'skydiving' is not one of the 3 classes"):
        read_annotations("k400", root, "val")
    (root / "kinetics400_val_list_videos.txt").write_text("videos/a.mp4 0\nvideos/b.mp4\n")
    with pytest.raises(AnnotationError, match=r"kinetics400_val_list_videos\.txt: line 2: expected '<video path> <integer label>'"):
        read_annotations("k400", root, "val", format="list")


def test_lsmdc_wrong_field_count(tmp_path):
    root = _copy(tmp_path, "lsmdc")
    path = root / "LSMDC16_annos_training.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("\t", " ", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=r"LSMDC16_annos_training\.csv: line 2: expected 6 tab-separated fields.*got 5"):
        read_annotations("lsmdc", root, "train")


def test_ssv2_unknown_template(tmp_path):
    root = _copy(tmp_path, "ssv2")
    path = root / "something-something-v2-validation.json"
    data = json.loads(path.read_text())
    data[1]["template"] = "Juggling [something]"
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r"\[1\]\.template: 'Juggling \[something\]'"):
        read_annotations("ssv2", root, "val")


def test_msvd_pickle_may_not_hold_objects(tmp_path):
    root = _copy(tmp_path, "msvd")
    with open(root / "raw-captions.pkl", "wb") as f:
        pickle.dump(OrderedDict(a=[["x"]]), f)
    with pytest.raises(AnnotationError, match="refusing to load collections.OrderedDict"):
        read_annotations("msvd", root, "train")


def test_generic_label_unknown_class_and_check_exit_code(tmp_path, capsys):
    root = _copy(tmp_path, "generic_label")
    (root / "train.csv").write_text("video,label\nvideos/r1.mp4,moving right\nvideos/r2.mp4,moving up\n")
    with pytest.raises(AnnotationError, match=r"train\.csv: line 3: label 'moving up'"):
        read_annotations("generic_label", root, "train")
    assert cli_main(["check", "generic_label", "--root", str(root)]) == 2
    assert "moving up" in capsys.readouterr().err


def test_missing_videos_are_kept_and_announced(tmp_path):
    root = _copy(tmp_path, "msrvtt")
    (root / "videos" / "all" / "video7011.mp4").unlink()
    with pytest.warns(UserWarning, match="1 of 3 videos.*video7011"):
        ann = read_annotations("msrvtt", root, "test")
    assert len(ann.videos) == 3 and not ann.videos[1].path.exists()  # the test set keeps its size


# --------------------------------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------------------------------
def test_bench_prints_clips_per_second(capsys):
    rc = cli_main(["bench", "--videos", "2", "--seconds", "0.5", "--width", "96", "--height", "72",
                   "--frames", "4", "--size", "32", "--workers", "0", "--repeats", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and "clips/s" in out
    row = next(ln for ln in out.splitlines() if ln.split()[:2] == [get_backend(), "0"])
    sampled, every, _, sampled_cpu, every_cpu = row.split()[2:7]
    assert float(sampled) > 0 and float(every) > 0 and float(sampled_cpu) > 0 and float(every_cpu) > 0
