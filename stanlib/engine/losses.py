"""Training losses: symmetric InfoNCE for retrieval, cosine cross-entropy for recognition.

Retrieval (docs/architecture.md section 6)::

    S = scale * cos(video_i, text_j)                       # (N, N), N = GLOBAL batch
    loss = -mean_i log softmax_row(S)_ii - mean_j log softmax_col(S)_jj

The negatives of a pair are the other pairs in the same batch. On several GPUs each process only
holds its slice of the batch, so the features are all-gathered across processes *with gradient*:
every process then scores its own clips against the whole global batch, and the number of
negatives grows with the number of GPUs. Gradient accumulation does NOT do this: each
micro-batch only sees its own negatives (see :mod:`stanlib.engine.trainer`).

Recognition: the classifier is CLIP's text encoder applied to the class names, computed once and
frozen (``logits = 100 * cos(video, class_text)``), optionally replaced by a linear head.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

# the gathering helpers moved to stanlib.engine.distributed; importable from here as before
from stanlib.engine.distributed import dist_ready, gather_no_grad, gather_with_grad  # noqa: F401


# --------------------------------------------------------------------------- retrieval
def info_nce(video: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor | float,
             offset: int = 0, all_video: Optional[torch.Tensor] = None,
             all_text: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Symmetric InfoNCE of L2-normalised ``video`` (n, E) and ``text`` (n, E) features.

    Pair ``i`` is (video[i], text[i]). With ``all_video``/``all_text`` (the global batch, N rows)
    the local rows are scored against all N candidates; their positives sit at ``offset + i``.
    Returns ``-mean_i log softmax_row(S)_ii - mean_j log softmax_col(S)_jj`` over the local rows;
    the mean of this over processes equals the loss of one process on the global batch.
    """
    all_video = video if all_video is None else all_video
    all_text = text if all_text is None else all_text
    target = torch.arange(video.shape[0], device=video.device) + offset
    v2t = logit_scale * video @ all_text.t()   # rows of S owned by this process
    t2v = logit_scale * text @ all_video.t()   # columns of S owned by this process
    return F.cross_entropy(v2t, target) + F.cross_entropy(t2v, target)


class ContrastiveLoss(nn.Module):
    """Symmetric InfoNCE with a fixed (default, STAN recipe) or learnable logit scale.

    Args:
        logit_scale: 1/tau: 100 for B/32, 50 for B/16, 20 for DiDeMo (docs/architecture.md section 7).
        learnable: learn ``log(scale)`` (CLIP-style, clamped at 100) instead of fixing it.

    ``forward(video, text, logit_scale=None)`` takes UN-normalised per-process features (n, E)
    and returns the loss; pass ``logit_scale`` (e.g. ``model.logit_scale``) to use the model's own
    scale instead of this module's. When torch.distributed is initialised the features are
    gathered with gradient first.
    """

    def __init__(self, logit_scale: float = 100.0, learnable: bool = False):
        super().__init__()
        self.learnable = learnable
        log_scale = torch.tensor(math.log(logit_scale))
        if learnable:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100.0)

    def forward(self, video: torch.Tensor, text: torch.Tensor,
                logit_scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        scale = self.scale if logit_scale is None else logit_scale.float()
        if video.shape != text.shape:
            raise ValueError(f"video features {tuple(video.shape)} and text features {tuple(text.shape)} "
                             "must have the same shape (one caption per clip in a training batch)")
        video, text = F.normalize(video.float(), dim=-1), F.normalize(text.float(), dim=-1)
        if not dist_ready():
            return info_nce(video, text, scale)
        all_video, offset = gather_with_grad(video)
        all_text, _ = gather_with_grad(text)
        return info_nce(video, text, scale, offset, all_video, all_text)


# --------------------------------------------------------------------------- recognition
@torch.no_grad()
def class_text_embeddings(model: nn.Module, class_names: list[str], template: str = "{}",
                          batch_size: int = 256, warn_unknown: bool = True) -> torch.Tensor:
    """L2-normalised text embeddings (C, E) of ``template.format(name)`` for every class name.

    Uses ``model.tokenize`` and ``model.encode_text`` (the STANModel API) in eval mode, without
    gradient: the classifier is frozen, as in the STAN recipe. With ``warn_unknown`` (default), class
    names holding words that ``model.tokenizer`` maps to ``<unk>`` (the tiny CLIP's word-level
    vocabulary) raise a warning that names the words: such classes may embed identically.
    """
    if not class_names:
        raise ValueError("class_text_embeddings: empty list of class names")
    tokenizer = getattr(model, "tokenizer", None)
    if warn_unknown and tokenizer is not None:
        from stanlib.model.tokenizer import check_words

        check_words([template.format(name) for name in class_names], tokenizer, "the class names", allow=True)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(class_names), batch_size):
        prompts = [template.format(name) for name in class_names[start:start + batch_size]]
        tokens = model.tokenize(prompts).to(device)
        out.append(F.normalize(model.encode_text(tokens).float(), dim=-1))
    model.train(was_training)
    return torch.cat(out)


def orthogonal_classes(num_classes: int, dim: int, seed: int = 0) -> torch.Tensor:
    """``num_classes`` fixed random orthonormal class vectors (C, E): a frozen classifier that
    ignores the class names (deterministic for a given seed, on any machine).

    The teaching world's recognition head (docs/experiments.md 2.5): the tiny CLIP never saw the
    motion words, so "Something moves up" / "... down" / "... right" embed at cosine 0.97-0.98 and
    a frozen classifier on them cannot tell these classes apart (up/down recognised as the wrong
    pair 90% of the time); real CLIP knows the words. Random orthonormal vectors are also nearly
    orthogonal to CLIP's video embeddings, so training starts from small logits (the text-derived
    equiangular variant started at loss ~30 and was unstable at demo size).
    """
    if not 2 <= num_classes <= dim:
        raise ValueError(f"need 2 <= num_classes <= dim for orthonormal class vectors, got {num_classes} "
                         f"classes in {dim} dimensions")
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, num_classes, generator=gen, dtype=torch.float64))
    return q.t().float().contiguous()


class RecognitionHead(nn.Module):
    """Cosine classifier over frozen class-name embeddings, or a linear head.

    Args:
        class_embeddings: (C, E) class text embeddings (normalised here; stored as a buffer, frozen).
        scale: logit scale of the cosine classifier (100 in the STAN recipe).
        linear: use a trainable ``nn.Linear(E, C)`` on the normalised video feature instead. It is
            initialised from ``scale * class_embeddings`` so step 0 equals the cosine classifier.
        label_smoothing: passed to the cross-entropy.

    ``logits(video)`` -> (..., C); ``forward(video, labels)`` -> scalar cross-entropy.
    """

    def __init__(self, class_embeddings: torch.Tensor, scale: float = 100.0, linear: bool = False,
                 label_smoothing: float = 0.0):
        super().__init__()
        if class_embeddings.ndim != 2:
            raise ValueError(f"class_embeddings must be (num_classes, dim), got {tuple(class_embeddings.shape)}")
        emb = F.normalize(class_embeddings.detach().float(), dim=-1)
        self.register_buffer("class_embeddings", emb)
        self.scale = scale
        self.label_smoothing = label_smoothing
        self.linear = None
        if linear:
            self.linear = nn.Linear(emb.shape[1], emb.shape[0])
            with torch.no_grad():
                self.linear.weight.copy_(scale * emb)
                self.linear.bias.zero_()

    @property
    def num_classes(self) -> int:
        return self.class_embeddings.shape[0]

    def logits(self, video: torch.Tensor) -> torch.Tensor:
        video = F.normalize(video.float(), dim=-1)
        if self.linear is not None:
            return self.linear(video)
        return self.scale * video @ self.class_embeddings.t()

    def forward(self, video: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f"labels must lie in [0, {self.num_classes}); got range "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        return F.cross_entropy(self.logits(video), labels, label_smoothing=self.label_smoothing)
