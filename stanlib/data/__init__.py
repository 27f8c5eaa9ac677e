"""Video data: decoding (decord, PyAV fallback), sampling, transforms, dataset readers.

Typical use::

    from stanlib.data import build_dataset, collate
    train = build_dataset("msrvtt", "/data/msrvtt", "train", tokenizer=model.tokenize,
                          num_frames=12, image_size=224)
    loader = DataLoader(train, batch_size=32, shuffle=True, num_workers=8, collate_fn=collate)
    for batch in loader:          # batch["frames"] (B,T,3,H,W), batch["tokens"], batch["skipped"]
        ...

Command line: ``stanlib data check <dataset> --root DIR`` and ``stanlib data bench``.
The synthetic teaching videos live in ``stanlib.teaching.synth`` (``stanlib synth``).
"""
from .datasets import (LABEL_DATASETS, READERS, TEXT_DATASETS, AnnotationError, ClipOptions, LabelAnnotations,
                       TextAnnotations, VideoIndex, VideoLabelDataset, VideoRecord, VideoTextDataset, build_dataset,
                       collate, read_annotations, read_didemo, read_generic_label, read_generic_text, read_k400,
                       read_lsmdc, read_msrvtt, read_msvd, read_ssv2, ssv2_class_name)
from .transforms import (CLIP_MEAN, CLIP_STD, ClipTransform, denormalise, frames_to_device, normalise,
                         random_crop_box, test_crop_boxes, test_transform, train_transform)
from .video import (BACKEND_ENV, VIDEO_EXTENSIONS, VideoDecodeError, VideoReader, decord_available, dense_indices,
                    get_backend, open_video, read_frames, sample_indices, segment_indices, write_video)

__all__ = [
    # datasets
    "build_dataset", "collate", "VideoTextDataset", "VideoLabelDataset", "VideoRecord", "ClipOptions",
    "AnnotationError", "TextAnnotations", "LabelAnnotations", "read_annotations", "READERS",
    "TEXT_DATASETS", "LABEL_DATASETS", "VideoIndex", "ssv2_class_name",
    "read_msrvtt", "read_didemo", "read_lsmdc", "read_msvd", "read_k400", "read_ssv2",
    "read_generic_text", "read_generic_label",
    # transforms
    "ClipTransform", "train_transform", "test_transform", "random_crop_box", "test_crop_boxes", "denormalise",
    "normalise", "frames_to_device", "CLIP_MEAN", "CLIP_STD",
    # decoding and sampling
    "open_video", "read_frames", "write_video", "VideoReader", "VideoDecodeError", "get_backend",
    "decord_available", "BACKEND_ENV", "VIDEO_EXTENSIONS", "segment_indices", "dense_indices", "sample_indices",
]
