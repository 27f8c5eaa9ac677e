"""Clip transforms: uint8 frames (T,3,H,W) -> CLIP-normalised float frames.

Built on ``torchvision.transforms.v2`` (its RandomResizedCrop sampler and ``resized_crop`` on a
``tv_tensors.Video``); each random crop is drawn once per clip, so all T frames get the same crop.

* training (STAN recipe): short side -> ``resize`` (256 for 224 px) -> random resized crop (area
  ``scale`` = (0.08, 1) of the resized frame, aspect ``ratio`` = (3/4, 4/3)) -> ``size``; nothing else.
* test: short side -> ``size`` -> centre crop ``size`` (one view), or 3 crops along the long side
  (left/centre/right, or top/centre/bottom for portrait videos) for "1x3" recognition testing.

Speed: "resize, then crop, then resize the crop" is done as ONE ``resized_crop`` of the original
frames: the crop box is drawn by torchvision's RandomResizedCrop sampler in the coordinates of the
resized frame (exactly the recipe's distribution) and mapped back to the original pixels. Same crops, one interpolation instead of two,
and no full-frame resize (about 2x faster per clip, which matters in a CPU-bound video loader).

Where the normalisation runs: by default in the transform (float frames leave the DataLoader worker).
With ``normalise=False`` the transform returns the cropped uint8 frames and the consumer normalises after
copying them to its device (:func:`frames_to_device`): a quarter of the bytes through the workers' shared
memory, pinned memory and the host-to-GPU copy, and no float work in the workers. The Trainer does this on
CUDA (``Config.normalise_on``); both give the same numbers.

All sizes are configurable: the tiny teaching model uses ``size=64`` (``resize`` then defaults to
``round(64 * 256 / 224) = 73``), and small teaching sets may prefer a milder crop ``scale`` such as
(0.5, 1) so the moving object stays in view.
"""
from __future__ import annotations

import functools
from typing import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

# OpenAI CLIP's pixel statistics (RGB, on [0, 1] pixels)
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

Box = tuple[int, int, int, int]  # top, left, height, width


def default_resize(size: int) -> int:
    """Short side before the training crop: 256 for 224, scaled proportionally for other sizes."""
    return round(size * 256 / 224)


def random_crop_box(height: int, width: int, scale: tuple[float, float],
                    ratio: tuple[float, float]) -> Box:
    """RandomResizedCrop's box for a ``height`` x ``width`` frame (torchvision's own sampler: area
    fraction in ``scale``, aspect w/h log-uniform in ``ratio``, 10 tries then a centre crop)."""
    shape_only = torch.empty(()).expand(1, height, width)  # get_params reads only the size; no memory
    return tuple(v2.RandomResizedCrop.get_params(shape_only, list(scale), list(ratio)))


def test_crop_boxes(height: int, width: int, side: int, num_crops: int) -> list[Box]:
    """``num_crops`` (1 or 3) square boxes of ``side`` pixels: centre, or start/centre/end of the long side."""
    if num_crops == 1:
        return [((height - side) // 2, (width - side) // 2, side, side)]
    if width >= height:
        return [((height - side) // 2, left, side, side) for left in (0, (width - side) // 2, width - side)]
    return [(top, (width - side) // 2, side, side) for top in (0, (height - side) // 2, height - side)]


test_crop_boxes.__test__ = False  # not a pytest test despite the name


class ClipTransform:
    """Callable: uint8 (T,3,H,W) -> float (T,3,size,size), or (V,T,3,size,size) when ``num_crops>1``.

    Args:
        size: output side length (224 for CLIP-B, 64 for stan-tiny).
        train: random resized crop (training) or centre/3-crop (test).
        resize: short side before cropping; training default ``round(size*256/224)``, test default ``size``.
        scale: random crop area range (fraction of the resized frame).
        ratio: random crop aspect-ratio range (width / height).
        num_crops: test only: 1 (centre) or 3 (start/centre/end along the long side).
        mean, std: normalisation (CLIP's by default).
        normalise: False: return the cropped frames as uint8; normalise later with :func:`frames_to_device`.
    """

    def __init__(self, size: int = 224, train: bool = False, resize: int | None = None,
                 scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 num_crops: int = 1, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD,
                 normalise: bool = True):
        if num_crops not in (1, 3):
            raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
        if train and num_crops != 1:
            raise ValueError("multi-crop views are for testing; use num_crops=1 with train=True")
        if not (0 < scale[0] <= scale[1] <= 1):
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        if not (0 < ratio[0] <= ratio[1]):
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
        self.size, self.train, self.num_crops, self.normalise_frames = size, train, num_crops, normalise
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.resize = resize or (default_resize(size) if train else size)
        if self.resize < size:
            raise ValueError(f"resize ({self.resize}) must be >= size ({size})")
        self.mean, self.std = tuple(mean), tuple(std)

    def boxes(self, height: int, width: int) -> list[Box]:
        """Crop boxes in ORIGINAL pixel coordinates for a ``height`` x ``width`` clip."""
        factor = self.resize / min(height, width)  # the short-side resize, not performed
        if self.train:
            # the frame as Resize(resize) would make it (short side exact, long side truncated)
            rh, rw = (self.resize, int(self.resize * width / height)) if height <= width else \
                     (int(self.resize * height / width), self.resize)
            box = random_crop_box(rh, rw, self.scale, self.ratio)
            top, left, h, w = (v / factor for v in box)
            h, w = max(1, min(height, round(h))), max(1, min(width, round(w)))
            return [(min(round(top), height - h), min(round(left), width - w), h, w)]
        side = min(height, width, round(self.size / factor))
        return test_crop_boxes(height, width, side, self.num_crops)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"expected frames of shape (T,3,H,W), got {tuple(frames.shape)}")
        # Decoders give (T,H,W,3) memory permuted to (T,3,H,W): keep that channels-last layout, the
        # uint8 antialiased resize is about 2x faster on it than on contiguous (T,3,H,W).
        video = tv_tensors.Video(frames)
        views = [F.resized_crop(video, top, left, h, w, [self.size, self.size], antialias=True)
                 for top, left, h, w in self.boxes(*frames.shape[-2:])]
        views = [v.as_subclass(torch.Tensor) for v in views]
        if self.normalise_frames:
            views = [self.normalise(v) for v in views]
        out = torch.stack(views).contiguous()
        return out[0] if len(views) == 1 else out

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (...,3,H,W) -> float, CLIP-normalised (same result as ToDtype(scale=True) + Normalize)."""
        return normalise(frames, self.mean, self.std)

    def __repr__(self) -> str:
        kind = f"train, scale={self.scale}, ratio={tuple(round(r, 3) for r in self.ratio)}" if self.train \
            else f"test x{self.num_crops} crop"
        uint8 = "" if self.normalise_frames else ", uint8 out"
        return f"ClipTransform({kind}, resize={self.resize}, size={self.size}{uint8})"


@functools.lru_cache(maxsize=16)
def _stats255(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """255 * mean and 255 * std as (3,1,1) float32 tensors on ``device``, made once per device (no per-batch
    host-to-device copy)."""
    return tuple(torch.tensor(v, dtype=torch.float32).view(3, 1, 1).mul(255).to(device) for v in (mean, std))


def normalise(frames: torch.Tensor, mean: Sequence[float] = CLIP_MEAN,
              std: Sequence[float] = CLIP_STD) -> torch.Tensor:
    """uint8 (...,3,H,W) -> float32 ``(x/255 - mean)/std``, computed as ``(x - 255 mean)/(255 std)``: one
    float conversion and two in-place operations, on whatever device ``frames`` is on."""
    mean255, std255 = _stats255(tuple(mean), tuple(std), frames.device)
    return frames.to(torch.float32).sub_(mean255).div_(std255)


def pixel_stats(dataset) -> tuple[tuple, tuple]:
    """The (mean, std) a dataset's frames are normalised with (its ``options``; CLIP's otherwise)."""
    options = getattr(dataset, "options", None)
    return getattr(options, "mean", CLIP_MEAN), getattr(options, "std", CLIP_STD)


def frames_to_device(frames: torch.Tensor, device: torch.device | str, mean: Sequence[float] = CLIP_MEAN,
                     std: Sequence[float] = CLIP_STD) -> torch.Tensor:
    """Frames as the model takes them, on ``device``: float frames are moved; uint8 frames (a dataset built
    with ``normalise=False``) are moved as uint8, then normalised there."""
    frames = frames.to(device, non_blocking=True)
    return normalise(frames, mean, std) if frames.dtype == torch.uint8 else frames


def train_transform(size: int = 224, resize: int | None = None, scale: tuple[float, float] = (0.08, 1.0),
                    ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> ClipTransform:
    """STAN training augmentation (short side -> random resized crop, the same crop for every frame)."""
    return ClipTransform(size, train=True, resize=resize, scale=scale, ratio=ratio)


def test_transform(size: int = 224, num_crops: int = 1, resize: int | None = None) -> ClipTransform:
    """Test view(s): short side -> ``size`` (or ``resize``) -> centre crop, or 3 crops."""
    return ClipTransform(size, train=False, resize=resize, num_crops=num_crops)


test_transform.__test__ = False  # not a pytest test despite the name


def denormalise(frames: torch.Tensor, mean: Sequence[float] = CLIP_MEAN,
                std: Sequence[float] = CLIP_STD) -> torch.Tensor:
    """Inverse of the normalisation, for display: float (...,3,H,W) -> float in [0, 1]."""
    m = torch.tensor(mean, dtype=frames.dtype).view(3, 1, 1)
    s = torch.tensor(std, dtype=frames.dtype).view(3, 1, 1)
    return (frames * s + m).clamp(0, 1)
