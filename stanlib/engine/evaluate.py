"""Evaluation: retrieval and recognition metrics, DSL / QB-Norm re-ranking, features from a model.

Metric functions are pure tensor code (no model): give them a similarity matrix or logits. Evaluating a
training checkpoint (``stanlib eval``) is :mod:`stanlib.inference.evaluate`.
Conventions:

- Similarity matrices are (num_captions, num_videos), rows = text queries. ``caption_video[c]`` is
  the index of the video that caption ``c`` describes (several captions may share a video).
- Ranks start at 1. Ties are counted AGAINST the model (a candidate scoring equal to the true
  one is ranked ahead of it), so a collapsed model that gives every pair the same score gets
  R@1 = 0, not 100.
- text->video: the rank of the caption's video among all videos.
  video->text: the rank of the video's best-ranked caption among all captions.
- DSL and QB-Norm use the statistics of the whole test set (or training captions): they are
  transductive, so their rows carry a ``*`` and ``transductive=True`` and are never merged with
  the plain rows (docs/architecture.md section 6).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch

from stanlib.data.transforms import frames_to_device, pixel_stats
from stanlib.engine.distributed import dist_ready, gather_no_grad

RANK_CUTOFFS = (1, 5, 10)


# --------------------------------------------------------------------------- retrieval ranks
def _check_sim(sim: torch.Tensor, caption_video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    sim = torch.as_tensor(sim)
    caption_video = torch.as_tensor(caption_video, dtype=torch.long, device=sim.device)
    if sim.ndim != 2:
        raise ValueError(f"similarity matrix must be 2-D (num_captions, num_videos), got {tuple(sim.shape)}")
    if caption_video.shape != (sim.shape[0],):
        raise ValueError(f"caption_video must have one entry per caption row: got {tuple(caption_video.shape)} "
                         f"for a {tuple(sim.shape)} similarity matrix")
    if len(caption_video) and (caption_video.min() < 0 or caption_video.max() >= sim.shape[1]):
        raise ValueError(f"caption_video holds video indices outside [0, {sim.shape[1]})")
    if torch.isnan(sim).any():
        raise ValueError("similarity matrix contains NaN (diverged model or an all-zero feature?)")
    return sim, caption_video


def t2v_ranks(sim: torch.Tensor, caption_video: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Rank (1 = best) of each caption's own video among all videos. ``sim``: (captions, videos)."""
    if caption_video is None:
        caption_video = torch.arange(sim.shape[0])
    sim, caption_video = _check_sim(sim, caption_video)
    true = sim.gather(1, caption_video[:, None])                    # (Q, 1)
    ahead = (sim >= true).sum(dim=1) - 1                            # others scoring >= the true video
    return ahead + 1


def v2t_ranks(sim: torch.Tensor, caption_video: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Rank of each video's best-ranked own caption among all captions. ``sim``: (captions, videos)."""
    if caption_video is None:
        caption_video = torch.arange(sim.shape[0])
    sim, caption_video = _check_sim(sim, caption_video)
    num_videos = sim.shape[1]
    own = caption_video[:, None] == torch.arange(num_videos, device=sim.device)[None]  # (Q, V)
    if not own.any(dim=0).all():
        missing = (~own.any(dim=0)).nonzero().flatten()[:10].tolist()
        raise ValueError(f"videos {missing} have no caption, so video->text is undefined for them")
    best_own = sim.masked_fill(~own, -math.inf).max(dim=0).values  # (V,)
    ahead = ((sim >= best_own[None]) & ~own).sum(dim=0)            # other videos' captions at least as good
    return ahead + 1


def rank_metrics(ranks: torch.Tensor) -> dict[str, float]:
    """R@1/R@5/R@10 (percent), MdR (median rank) and MnR (mean rank) of 1-based ranks."""
    r = torch.as_tensor(ranks).double().cpu().numpy()
    if r.size == 0:
        raise ValueError("rank_metrics: no ranks (empty test set?)")
    out = {f"R@{k}": float(100.0 * np.mean(r <= k)) for k in RANK_CUTOFFS}
    out["MdR"] = float(np.median(r))
    out["MnR"] = float(np.mean(r))
    return out


def retrieval_metrics(sim: torch.Tensor, caption_video: Optional[torch.Tensor] = None) -> dict[str, dict]:
    """``{"t2v": {R@1, R@5, R@10, MdR, MnR}, "v2t": {...}}`` from a (captions, videos) matrix."""
    return {"t2v": rank_metrics(t2v_ranks(sim, caption_video)),
            "v2t": rank_metrics(v2t_ranks(sim, caption_video))}


# --------------------------------------------------------------------------- re-ranking (inference only)
def dsl(sim: torch.Tensor, theta: float = 0.01) -> torch.Tensor:
    """Dual softmax (DSL): ``S'_qv = S_qv * softmax_q'(S_q'v / theta)``.

    Each score is re-weighted by how strongly the video prefers this query over all other queries
    (softmax down each column). ``theta`` = 1/100 matches the training logit scale of B/32 models.
    Rows are queries: pass ``sim.T`` to re-rank video->text.
    """
    sim = torch.as_tensor(sim).double()
    return sim * torch.softmax(sim / theta, dim=0)


def qb_norm(sim: torch.Tensor, bank_sim: torch.Tensor, beta: float = 20.0, k: int = 1) -> torch.Tensor:
    """QB-Norm with the dynamic inverted softmax (docs/architecture.md section 6).

    Args:
        sim: (queries, galleries) test similarities, e.g. test captions x test videos.
        bank_sim: (bank, galleries) similarities of the query bank (e.g. TRAINING captions) to the
            same gallery items.
        beta: inverse temperature of the inverted softmax (default 20).
        k: a gallery item is "activated" when it is in the top-k of at least one bank query.

    A test query whose raw top-1 item is activated gets ``exp(beta*S_qv) / sum_b exp(beta*S_bv)``
    for every item v (hubs, which many bank queries like, are damped); other queries keep raw scores.
    """
    sim, bank_sim = torch.as_tensor(sim).double(), torch.as_tensor(bank_sim).double()
    if bank_sim.ndim != 2 or bank_sim.shape[1] != sim.shape[1]:
        raise ValueError(f"bank_sim must be (bank, {sim.shape[1]}) to match sim {tuple(sim.shape)}; "
                         f"got {tuple(bank_sim.shape)}")
    k = min(k, sim.shape[1])
    activated = torch.zeros(sim.shape[1], dtype=torch.bool, device=sim.device)
    activated[bank_sim.topk(k, dim=1).indices.flatten()] = True
    # exp(beta S) / sum_b exp(beta S_b), computed in the log domain to avoid overflow
    normalised = torch.exp(beta * sim - torch.logsumexp(beta * bank_sim, dim=0, keepdim=True))
    use = activated[sim.argmax(dim=1)]
    return torch.where(use[:, None], normalised, sim)


def retrieval_report(sim: torch.Tensor, caption_video: Optional[torch.Tensor] = None, *,
                     use_dsl: bool = False, dsl_theta: float = 0.01,
                     qb_bank_t2v: Optional[torch.Tensor] = None, qb_bank_v2t: Optional[torch.Tensor] = None,
                     qb_beta: float = 20.0, qb_k: int = 1) -> list[dict]:
    """Labelled metric rows: plain t2v/v2t first, then opt-in transductive ``*`` rows.

    Args:
        sim: (captions, videos) test similarities; caption_video: caption -> video index.
        use_dsl: add ``t2v* DSL`` and ``v2t* DSL`` rows.
        qb_bank_t2v: (bank captions, test videos) similarities, e.g. training captions vs test
            videos: adds a ``t2v* QB-Norm`` row. qb_bank_v2t: (bank videos, test captions)
            similarities: adds ``v2t* QB-Norm``.

    Each row: ``{"row", "direction", "method", "transductive", "R@1", "R@5", "R@10", "MdR", "MnR"}``.
    """
    if caption_video is None:
        caption_video = torch.arange(sim.shape[0])
    sim = torch.as_tensor(sim).double()
    rows = []

    def add(direction: str, method: str, matrix: torch.Tensor):
        ranks = t2v_ranks(matrix, caption_video) if direction == "t2v" else v2t_ranks(matrix, caption_video)
        star = method != "raw"
        label = direction + (f"* {method}" if star else "")
        rows.append({"row": label, "direction": direction, "method": method, "transductive": star,
                     **rank_metrics(ranks)})

    add("t2v", "raw", sim)
    add("v2t", "raw", sim)
    if use_dsl:
        add("t2v", "DSL", dsl(sim, dsl_theta))
        add("v2t", "DSL", dsl(sim.t(), dsl_theta).t())
    if qb_bank_t2v is not None:
        add("t2v", "QB-Norm", qb_norm(sim, qb_bank_t2v, qb_beta, qb_k))
    if qb_bank_v2t is not None:
        add("v2t", "QB-Norm", qb_norm(sim.t(), qb_bank_v2t, qb_beta, qb_k).t())
    return rows


def format_rows(rows: Sequence[dict], keys: Sequence[str] = ("R@1", "R@5", "R@10", "MdR", "MnR")) -> str:
    """A plain-text table of metric rows (``row`` label + the given keys)."""
    width = max([len(r.get("row", "")) for r in rows] + [4])
    lines = [f"{'':<{width}}  " + "  ".join(f"{k:>7}" for k in keys)]
    for r in rows:
        lines.append(f"{r.get('row', ''):<{width}}  " + "  ".join(f"{r[k]:>7.2f}" for k in keys))
    return "\n".join(lines)


# --------------------------------------------------------------------------- recognition
def average_views(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, C): softmax per view, averaged over views.

    ``logits`` is (N, C) for single-view testing or (N, V, C) for multi-view testing (e.g. 1x3:
    1 temporal clip x 3 spatial crops, V = 3; 4x3: V = 12).
    """
    logits = torch.as_tensor(logits).float()
    if logits.ndim == 2:
        return logits.softmax(dim=-1)
    if logits.ndim == 3:
        return logits.softmax(dim=-1).mean(dim=1)
    raise ValueError(f"logits must be (N, C) or (N, views, C), got {tuple(logits.shape)}")


def recognition_metrics(logits: torch.Tensor, labels: torch.Tensor, topk: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy (percent) with multi-view softmax averaging. ``k`` is capped at the class count."""
    probs = average_views(logits)
    labels = torch.as_tensor(labels, dtype=torch.long, device=probs.device)
    if labels.shape != (probs.shape[0],):
        raise ValueError(f"labels {tuple(labels.shape)} do not match {probs.shape[0]} predictions")
    order = probs.argsort(dim=-1, descending=True)
    hits = order == labels[:, None]                                 # (N, C), one True per row
    return {f"top{k}": float(100.0 * hits[:, :min(k, probs.shape[1])].any(dim=1).float().mean())
            for k in topk}


def twin_scores(logits: torch.Tensor, labels: torch.Tensor, twin_index: Optional[Sequence[int]] = None,
                class_twin: Optional[Sequence[int]] = None) -> dict[str, torch.Tensor]:
    """Per clip: the class its time reversal belongs to, and the scores of both classes.

    The partner class of clip i is the class of its twin clip ``labels[twin_index[i]]`` when it has
    one (``twin_index[i] >= 0``), else ``class_twin[labels[i]]`` when the classes come in declared
    reversal pairs (``-1``: none), else -1. Scores are the class probabilities (softmax, averaged
    over views, as for top-1). Returns ``{"partner", "own", "twin", "correct"}`` (N,) tensors; ``twin``
    is NaN and ``correct`` False where there is no partner. ``correct``: own score strictly above the
    partner's (a tie counts as wrong).
    """
    probs = average_views(logits)
    n, num_classes = probs.shape
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.shape != (n,):
        raise ValueError(f"labels {tuple(labels.shape)} do not match {n} predictions")
    partner = torch.full((n,), -1, dtype=torch.long)
    if class_twin is not None:
        class_twin = torch.as_tensor(class_twin, dtype=torch.long)
        if class_twin.shape != (num_classes,) or (class_twin >= num_classes).any() or (class_twin < -1).any():
            raise ValueError(f"class_twin must hold one class in [-1, {num_classes}) per class, got shape "
                             f"{tuple(class_twin.shape)}")
        partner = class_twin[labels]
    if twin_index is not None:
        twin_index = torch.as_tensor(twin_index, dtype=torch.long)
        if twin_index.shape != (n,) or (twin_index >= n).any() or (twin_index < -1).any():
            raise ValueError(f"twin_index must hold one clip index in [-1, {n}) per clip, got shape "
                             f"{tuple(twin_index.shape)}")
        has = twin_index >= 0
        partner = torch.where(has, labels[twin_index.clamp(min=0)], partner)
    own = probs.gather(1, labels[:, None])[:, 0]
    twin = torch.where(partner >= 0, probs.gather(1, partner.clamp(min=0)[:, None])[:, 0],
                       torch.full_like(own, float("nan")))
    return {"partner": partner, "own": own, "twin": twin, "correct": (partner >= 0) & (own > twin)}


def direction_metrics_from_twins(logits: torch.Tensor, labels: torch.Tensor,
                                 twin_index: Optional[Sequence[int]] = None,
                                 class_twin: Optional[Sequence[int]] = None,
                                 class_names: Optional[Sequence[str]] = None) -> dict:
    """Direction accuracy (percent): a clip counts when its own class scores strictly above the class of
    its time reversal (ties count as wrong), over the clips that have a declared twin (or a class twin).

    ``twin_index[i]``: index of clip i's time-reversed twin (-1: none); ``class_twin[c]``: the class
    that reverses class c (-1: none), used for clips without a twin clip (see :func:`twin_scores`).
    An order-blind model scores a clip and its reversal identically, so on a set of twins at most one
    of the two is right: exactly 50% without ties. Returns ``{"direction", "n", "per_pair"}``;
    ``per_pair`` maps ``"class A / class B"`` (lower class id first) to ``{"direction", "n"}``.
    """
    scores = twin_scores(logits, labels, twin_index, class_twin)
    labels = torch.as_tensor(labels, dtype=torch.long)
    mask = scores["partner"] >= 0
    if not mask.any():
        raise ValueError("no clip has a declared twin (twin_index) or a reversal class (class_twin): "
                         "declare twins in the dataset to measure direction")
    correct = scores["correct"].float()
    name = (lambda c: class_names[c]) if class_names is not None else str
    pairs: dict[tuple[int, int], list[int]] = {}
    for i in mask.nonzero()[:, 0].tolist():
        a, b = int(labels[i]), int(scores["partner"][i])
        pairs.setdefault((min(a, b), max(a, b)), []).append(i)
    per_pair = {f"{name(a)} / {name(b)}": {"direction": 100.0 * float(correct[idx].mean()), "n": len(idx)}
                for (a, b), idx in sorted(pairs.items())}
    return {"direction": 100.0 * float(correct[mask].mean()), "n": int(mask.sum()), "per_pair": per_pair}


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, C) counts: row = true class, column = predicted class."""
    preds = torch.as_tensor(preds, dtype=torch.long).flatten()
    labels = torch.as_tensor(labels, dtype=torch.long).flatten()
    if preds.shape != labels.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and labels {tuple(labels.shape)} differ in length")
    for name, t in (("preds", preds), ("labels", labels)):
        if len(t) and (t.min() < 0 or t.max() >= num_classes):
            raise ValueError(f"{name} hold values outside [0, {num_classes})")
    flat = labels * num_classes + preds
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def plot_confusion_matrix(cm: torch.Tensor, class_names: Optional[Sequence[str]] = None, path=None,
                          normalize: bool = True, title: str = "confusion matrix", values: bool = True, ax=None):
    """Draw a confusion matrix (rows normalised to recall by default); save to ``path`` if given.

    ``values``: write each non-zero cell's clip count in it. ``ax``: draw into this matplotlib axes
    (e.g. one panel of a side-by-side figure) instead of a new figure. Returns the figure.
    """
    import matplotlib.pyplot as plt  # matplotlib picks a headless backend by itself without a display

    cm = torch.as_tensor(cm).double()
    shown = cm / cm.sum(dim=1, keepdim=True).clamp(min=1) if normalize else cm
    n = cm.shape[0]
    if ax is None:
        size = max(4.0, 0.35 * n + 2)
        fig, ax = plt.subplots(figsize=(size, size))
    else:
        fig = ax.figure
    im = ax.imshow(shown.numpy(), cmap="Blues", vmin=0, vmax=1 if normalize else None)
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    ax.set_xticks(range(n), names, rotation=90, fontsize=9)
    ax.set_yticks(range(n), names, fontsize=9)
    if values:
        top = float(shown.max()) or 1.0
        for i in range(n):
            for j in range(n):
                if cm[i, j] > 0:
                    ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                            color="white" if shown[i, j] > 0.6 * top else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the row" if normalize else "clips")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


# --------------------------------------------------------------------------- features from a model
def _amp_context(device: torch.device, amp_dtype: Optional[torch.dtype]):
    import contextlib

    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def _eval_loader(dataset, batch_size: int, num_workers: int, collate_fn=None):
    """Sequential loader; under torch.distributed each process takes a strided share (padded)."""
    from torch.utils.data import DataLoader, DistributedSampler

    sampler = DistributedSampler(dataset, shuffle=False, drop_last=False) if dist_ready() else None
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=num_workers,
                      collate_fn=collate_fn or default_collate_fn(), drop_last=False)


def default_collate_fn():
    """``stanlib.data.collate`` when the data package provides it, else torch's default collate."""
    try:
        from stanlib.data import collate
        return collate
    except ImportError:
        pass
    try:
        from stanlib.data.datasets import collate
        return collate
    except ImportError:
        from torch.utils.data import default_collate
        return default_collate


def _place(features: torch.Tensor, index: torch.Tensor, total: int, what: str) -> torch.Tensor:
    """Put gathered rows at their dataset indices; duplicates (sampler padding) overwrite each other."""
    out = torch.full((total, *features.shape[1:]), float("nan"), dtype=features.dtype)
    out[index.long().cpu()] = features.cpu()
    seen = torch.zeros(total, dtype=torch.bool)
    seen[index.long().cpu()] = True
    if not seen.all():
        missing = (~seen).nonzero().flatten()[:10].tolist()
        raise RuntimeError(f"{what}: no features for items {missing} (of {total}); did the loader skip videos? "
                           "Evaluation must see every test video (run `stanlib data check`).")
    return out


@torch.no_grad()
def encode_videos(model, dataset, *, batch_size: int = 16, device=None, num_workers: int = 0,
                  amp_dtype: Optional[torch.dtype] = None, collate_fn=None, desc: str = "videos",
                  head=None) -> torch.Tensor:
    """Video embeddings (N, E) of every item of ``dataset``, in dataset order (``video_idx``).

    Items with multi-view frames (V, T, 3, H, W) give (N, V, E); with ``head`` (a
    :class:`~stanlib.engine.losses.RecognitionHead`) the result is class logits instead of embeddings.
    Under torch.distributed every process encodes its share and all processes receive the union.
    """
    from tqdm.auto import tqdm

    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    loader = _eval_loader(dataset, batch_size, num_workers, collate_fn)
    stats = pixel_stats(dataset)
    show = not dist_ready() or torch.distributed.get_rank() == 0
    feats, index = [], []
    for batch in tqdm(loader, desc=f"encode {desc}", leave=False, disable=not show):
        frames = frames_to_device(batch["frames"], device, *stats)  # uint8 frames are normalised on the device
        if "video_idx" not in batch:
            raise KeyError("evaluation batches need 'video_idx' (the dataset item's index)")
        views = frames.shape[1] if frames.ndim == 6 else None
        flat = frames.flatten(0, 1) if views else frames
        with _amp_context(device, amp_dtype):
            emb = model.encode_video(flat).float()
        if head is not None:
            emb = head.logits(emb)
        if views:
            emb = emb.view(frames.shape[0], views, -1)
        feats.append(emb)
        index.append(torch.as_tensor(batch["video_idx"], device=device))
    model.train(was_training)
    feats = gather_no_grad(torch.cat(feats)) if feats else torch.empty(0)
    index = gather_no_grad(torch.cat(index)) if index else torch.empty(0, dtype=torch.long)
    return _place(feats, index, len(dataset), f"encode {desc}")


@torch.no_grad()
def encode_texts(model, tokens: torch.Tensor, *, batch_size: int = 256, device=None,
                 amp_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """Text embeddings (N, E) of a token matrix; split over processes under torch.distributed."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    rank, world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if dist_ready() else (0, 1)
    share = torch.arange(len(tokens)).tensor_split(world)[rank]     # contiguous share of the rows
    was_training = model.training
    model.eval()
    out = []
    for chunk in share.split(batch_size):
        with _amp_context(device, amp_dtype):
            out.append(model.encode_text(tokens[chunk].to(device)).float())
    model.train(was_training)
    dim = int(model.embed_dim) if hasattr(model, "embed_dim") else 0
    mine = torch.cat(out) if out else torch.empty(0, dim, device=device)
    return gather_no_grad(mine).cpu()  # shares are contiguous and in rank order


def _on_main(fn):
    """Run ``fn`` on the main process only and share its (small, plain) result with the others."""
    if not dist_ready():
        return fn()
    box = [fn() if torch.distributed.get_rank() == 0 else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.double(), dim=-1)


@torch.no_grad()
def evaluate_retrieval(model, dataset, *, batch_size: int = 16, device=None, num_workers: int = 0,
                       amp_dtype: Optional[torch.dtype] = None, collate_fn=None, use_dsl: bool = False,
                       bank_tokens: Optional[torch.Tensor] = None, qb_beta: float = 20.0, qb_k: int = 1
                       ) -> tuple[list[dict], torch.Tensor]:
    """Encode a retrieval test set and return ``(rows, sim)``.

    ``dataset`` is a ``VideoTextDataset`` in mode ``"videos"`` (items ``frames``, ``video_idx``) with
    ``tokens()`` (all captions) and ``caption_video``. ``bank_tokens`` (e.g. the training captions)
    enables the QB-Norm row; ``use_dsl`` the DSL rows. ``sim`` is (captions, videos) cosine.
    """
    videos = encode_videos(model, dataset, batch_size=batch_size, device=device, num_workers=num_workers,
                           amp_dtype=amp_dtype, collate_fn=collate_fn)
    texts = encode_texts(model, dataset.tokens(), device=device, amp_dtype=amp_dtype)
    v = _normalise(videos)
    sim = _normalise(texts) @ v.t()
    bank = None
    if bank_tokens is not None:
        bank = _normalise(encode_texts(model, bank_tokens, device=device, amp_dtype=amp_dtype)) @ v.t()
    caption_video = torch.as_tensor(dataset.caption_video, dtype=torch.long)
    rows = _on_main(lambda: retrieval_report(sim, caption_video, use_dsl=use_dsl, qb_bank_t2v=bank,
                                             qb_beta=qb_beta, qb_k=qb_k))
    return rows, sim


@torch.no_grad()
def evaluate_recognition(model, dataset, head, *, batch_size: int = 16, device=None, num_workers: int = 0,
                         amp_dtype: Optional[torch.dtype] = None, collate_fn=None) -> tuple[dict, torch.Tensor]:
    """Top-1/top-5 (multi-view softmax averaging) of ``model`` + ``head`` on a ``VideoLabelDataset``,
    and ``direction`` (:func:`direction_metrics_from_twins`) when some clip has a partner: a declared
    twin clip (``dataset.twins``) or a reversal class (``dataset.class_twins``); a twin clip wins.

    Returns ``(metrics, logits)`` with logits (N, C) or (N, views, C) in dataset order.
    """
    logits = encode_videos(model, dataset, batch_size=batch_size, device=device, num_workers=num_workers,
                           amp_dtype=amp_dtype, collate_fn=collate_fn, head=head, desc="clips")
    labels = torch.as_tensor(dataset.labels, dtype=torch.long)

    def metrics() -> dict:
        out = recognition_metrics(logits, labels)
        direction = dataset_direction(logits, dataset)
        if direction is not None:
            out["direction"] = direction["direction"]
        return out

    return _on_main(metrics), logits


def dataset_direction(logits: torch.Tensor, dataset) -> Optional[dict]:
    """:func:`direction_metrics_from_twins` of a recognition dataset's logits with its clip twins
    (``dataset.twins``) and reversal classes (``dataset.class_twins``), plus ``"clip_partners"`` and
    ``"class_partners"``: how many clips are measured against their twin clip and how many against
    their reversal class. None when no clip has either."""
    twins = getattr(dataset, "twins", None)
    class_twins = getattr(dataset, "class_twins", None)
    if twins is None and class_twins is None:
        return None
    partner = twin_scores(logits, dataset.labels, twins, class_twins)["partner"]
    if not (partner >= 0).any():
        return None
    out = direction_metrics_from_twins(logits, dataset.labels, twins, class_twins,
                                       class_names=getattr(dataset, "classes", None))
    clip = sum(1 for t in twins if t >= 0) if twins is not None else 0
    return {**out, "clip_partners": clip, "class_partners": out["n"] - clip}


def flatten_rows(rows: Sequence[dict]) -> dict[str, float]:
    """``[{"row": "t2v", "R@1": ..}, ..]`` -> ``{"t2v/R@1": .., ..}`` (for histories and best-metric)."""
    keys = ("R@1", "R@5", "R@10", "MdR", "MnR")
    return {f"{r['row']}/{k}": r[k] for r in rows for k in keys}


# --------------------------------------------------------------------------- moved names
_MOVED = {"cli_main": "stanlib.inference.evaluate", "load_trained": "stanlib.inference.evaluate"}


def __getattr__(name: str):
    """Deprecated aliases (PEP 562): ``stanlib eval`` moved to :mod:`stanlib.inference.evaluate`."""
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(f"stanlib.engine.evaluate.{name} moved to {_MOVED[name]}.{name}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'stanlib.engine.evaluate' has no attribute {name!r}")
