"""Inference on your own videos: "video + text -> score" and "video + class names -> class".

The five lines (the README's example: a bundled clip and a model of the teaching zoo, both
shipped inside the package (:mod:`stanlib.assets`, :mod:`stanlib.weights.zoo`), so they run from any
folder; the model is the paper's recognition recipe on ``stan-tiny-v2``, whose text tower knows the
motion words, so it scores free text, also in words it was not trained with)::

    import stanlib
    video = stanlib.assets.video("402")                              # a bundled clip: a yellow cross fading out
    model = stanlib.Predictor("zoo:motion/stan-self-v2")             # tiny STAN-self, the paper's class-name head
    print(model.similarity(video, ["a yellow cross fades out", "a yellow cross fades in"]))
    print(model.similarity(video, ["the cross disappears", "the cross appears"]))   # words it was not trained on

:class:`Predictor` applies the model's own test recipe, with the data pipeline's functions:
decode (:func:`stanlib.data.video.open_video`), TSN test sampling of ``model.config.num_frames``
frames (each segment's middle frame), short side -> ``model.image_size`` + centre crop + CLIP
normalisation (:func:`stanlib.data.transforms.test_transform`), and the model's tokenizer.

Command line::

    stanlib predict --video clip.mp4 --text "a red circle moves left" --text "a red circle moves right"
    stanlib predict --video clip.mp4 --classes "moves left,moves right,grows" --checkpoint my_model/
    stanlib predict --video clip.mp4 --checkpoint runs/tiny-motion/best.pt    # the run's own classes
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from stanlib import assets
from stanlib.data.transforms import test_transform
from stanlib.data.video import open_video, sample_indices
from stanlib.engine.losses import orthogonal_classes

Video = Union[str, os.PathLike, torch.Tensor]

# the bundled tiny teaching model (the zoo's motion STAN-self), used when no checkpoint is given
DEFAULT_CHECKPOINT = assets.TINY_STAN


class Predictor:
    """Scores a video against texts, or names its class, with the model's test-time recipe.

    Args:
        model: a :class:`~stanlib.STANModel` (moved to ``device`` and set to eval mode), or anything
            :func:`stanlib.from_pretrained` loads (a folder, ``"zoo:motion/stan-self"``, a Hub id).
        device: ``"cuda"``, ``"cpu"``...; default: CUDA if available.
        num_frames: frames sampled per video; default ``model.config.num_frames``.
        backend: video decoder, ``"decord"`` or ``"pyav"`` (default: automatic).
    """

    def __init__(self, model, device: Optional[Union[str, torch.device]] = None,
                 num_frames: Optional[int] = None, backend: Optional[str] = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if isinstance(model, (str, os.PathLike)):
            from stanlib.weights.pretrained import from_pretrained

            model = from_pretrained(model)
        self.model = model.to(self.device).eval()
        self.num_frames = int(num_frames or model.config.num_frames)
        self.transform = test_transform(model.image_size)
        self.backend = backend
        self._class_cache: dict[tuple[str, ...], torch.Tensor] = {}

    # ------------------------------------------------------------------ inputs
    def load_video(self, video: Video) -> torch.Tensor:
        """A video file (or uint8 frames (N,3,H,W)) -> CLIP-normalised test clip (T,3,S,S)."""
        if isinstance(video, torch.Tensor):
            if video.dtype != torch.uint8 or video.ndim != 4 or video.shape[1] != 3:
                raise ValueError(f"video tensor must be uint8 frames (N,3,H,W), got {video.dtype} "
                                 f"{tuple(video.shape)}")
            idx = sample_indices(len(video), self.num_frames, train=False)[0]
            frames = video[idx]
        else:
            with open_video(video, self.backend) as reader:
                if len(reader) == 0:
                    raise ValueError(f"{video}: the video has no frames")
                idx = sample_indices(len(reader), self.num_frames, train=False)[0]
                frames = torch.from_numpy(reader.get_batch(idx)).permute(0, 3, 1, 2)
        return self.transform(frames)

    # ------------------------------------------------------------------ embeddings (L2-normalised)
    @torch.no_grad()
    def encode_video(self, video: Video) -> torch.Tensor:
        """(E,) unit-length video embedding."""
        clip = self.load_video(video).unsqueeze(0).to(self.device)
        return F.normalize(self.model.encode_video(clip), dim=-1)[0]

    def _class_vectors(self, names: tuple, template: str) -> torch.Tensor:
        extra = self.model.config.extra or {}
        if extra.get("head") != "orthogonal":
            return self.encode_text([template.format(n) for n in names])
        trained = tuple(extra.get("classes", ()))
        if names != trained:
            raise ValueError(f"this model was trained with fixed class vectors for its own classes {list(trained)}; "
                             "pass exactly model.config.extra['classes'] (same order) to classify")
        return orthogonal_classes(len(names), self.model.embed_dim).to(self.device)

    @torch.no_grad()
    def encode_text(self, texts: Union[str, Sequence[str]]) -> torch.Tensor:
        """(N, E) unit-length text embeddings."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("give at least one text")
        tokens = self.model.tokenize(texts).to(self.device)
        return F.normalize(self.model.encode_text(tokens), dim=-1)

    # ------------------------------------------------------------------ tasks
    def similarity(self, video: Video, texts: Union[str, Sequence[str]]) -> torch.Tensor:
        """Cosine similarity (N,) in [-1, 1] between the video and each text, in the given order."""
        return (self.encode_text(texts) @ self.encode_video(video)).cpu()

    def classify(self, video: Video, class_names: Optional[Sequence[str]] = None, topk: int = 5,
                 template: str = "{}") -> list[tuple[str, float]]:
        """The ``topk`` most likely classes as ``[(name, probability), ...]``, best first.

        Recognition as in STAN: the text encoder embeds each ``template.format(name)`` (cached),
        logits = logit scale x cosine, softmax over the classes. A model trained with the
        teaching world's fixed class vectors (``model.config.extra["head"] == "orthogonal"``,
        :func:`stanlib.engine.losses.orthogonal_classes`) uses them instead of text: pass the class
        list it was trained with (``model.config.extra["classes"]``), in that order.
        ``class_names=None``: the classes the model was trained with (``model.config.extra["classes"]``).
        """
        if class_names is None:
            class_names = (self.model.config.extra or {}).get("classes")
            if not class_names:
                raise ValueError("this model records no class list (config.extra['classes']); pass class_names")
        names = tuple(class_names)
        if len(names) < 2:
            raise ValueError(f"classify needs at least two class names, got {list(names)}")
        key = names + (template,)
        if key not in self._class_cache:
            self._class_cache[key] = self._class_vectors(names, template)
        logits = self.model.logit_scale.detach() * (self._class_cache[key] @ self.encode_video(video))
        probs = logits.softmax(dim=-1).cpu()
        top = probs.topk(min(topk, len(names)))
        return [(names[i], float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist())]


# ----------------------------------------------------------------------------------------------
# command line: stanlib predict


def default_model():
    """The bundled tiny model, or (loudly) a random-init stan-tiny if it is missing."""
    from stanlib.weights.pretrained import from_pretrained

    if (DEFAULT_CHECKPOINT / "config.json").is_file():
        return from_pretrained(DEFAULT_CHECKPOINT)
    import stanlib

    msg = (f"bundled tiny model not found at {DEFAULT_CHECKPOINT}: using a RANDOMLY INITIALISED stan-tiny. "
           "Scores below are meaningless; pass --checkpoint DIR (a save_pretrained folder).")
    warnings.warn(msg, stacklevel=2)
    print(f"\n*** WARNING: {msg} ***\n", file=sys.stderr)
    return stanlib.create_model(clip="stan-tiny", temporal="attn", depth=2, num_frames=8)


def cli_main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stanlib predict",
        description="Score a video against texts (cosine similarity) and/or pick its class.")
    parser.add_argument("--video", required=True, help="video file (mp4, webm, avi...)")
    parser.add_argument("--text", action="append", default=[], help="a caption to score (repeatable)")
    parser.add_argument("--classes", help="comma-separated class names, e.g. 'moves left,moves right' (default, "
                                          "without --text: the classes the model was trained with)")
    parser.add_argument("--topk", type=int, default=5, help="classes to print (default 5)")
    parser.add_argument("--template", default="{}", help="prompt for class names, e.g. 'a video of {}'")
    parser.add_argument("--checkpoint", help="save_pretrained folder, zoo name, Hub repo id, a `stanlib train` "
                                             "last.pt / best.pt, or authors' .pth "
                                             f"(default: the bundled tiny model, {DEFAULT_CHECKPOINT})")
    parser.add_argument("--num-frames", type=int, help="frames to sample (default: the model's recipe)")
    parser.add_argument("--device", help="cuda / cpu (default: cuda if available)")
    parser.add_argument("--backend", choices=("decord", "pyav"), help="video decoder (default: automatic)")
    args = parser.parse_args(argv)
    classes = [c.strip() for c in (args.classes or "").split(",") if c.strip()]

    try:
        if args.checkpoint:
            from stanlib.weights.pretrained import load_model

            model = load_model(args.checkpoint)
        else:
            model = default_model()
        if not args.text and not classes:
            classes = list((model.config.extra or {}).get("classes") or [])
            if not classes:
                parser.error("give --text (one or more) and/or --classes (this model records no class list)")
        template = args.template
        if template == "{}" and (model.config.extra or {}).get("class_prompt"):
            template = model.config.extra["class_prompt"]   # the prompt the run trained its class names with
        predictor = Predictor(model, device=args.device, num_frames=args.num_frames, backend=args.backend)
        if args.text:
            scores = predictor.similarity(args.video, args.text)
            print(f"cosine similarity (video: {args.video})")
            for text, score in zip(args.text, scores.tolist()):
                print(f"  {score:+.4f}  {text}")
        if classes:
            print(f"top-{min(args.topk, len(classes))} classes (video: {args.video})")
            for name, prob in predictor.classify(args.video, classes, args.topk, template):
                print(f"  {prob:6.1%}  {name}")
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        print(f"stanlib predict: error: {err}", file=sys.stderr)
        return 1
    return 0
