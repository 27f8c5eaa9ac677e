"""Metrics against brute force, DSL / QB-Norm against hand-computed values, recognition helpers."""
import math

import numpy as np
import pytest
import torch

from stanlib.engine.evaluate import (average_views, confusion_matrix, dsl, format_rows, qb_norm, rank_metrics,
                              recognition_metrics, retrieval_metrics, retrieval_report, t2v_ranks, v2t_ranks)


def brute_t2v(sim, caption_video):
    ranks = []
    for q in range(sim.shape[0]):
        order = sorted(range(sim.shape[1]), key=lambda v: -sim[q, v])
        ranks.append(order.index(caption_video[q]) + 1)
    return np.array(ranks)


def brute_v2t(sim, caption_video):
    ranks = []
    for v in range(sim.shape[1]):
        order = sorted(range(sim.shape[0]), key=lambda q: -sim[q, v])
        ranks.append(next(i for i, q in enumerate(order) if caption_video[q] == v) + 1)
    return np.array(ranks)


def brute_metrics(ranks):
    out = {f"R@{k}": 100.0 * sum(r <= k for r in ranks) / len(ranks) for k in (1, 5, 10)}
    s = sorted(ranks)
    n = len(s)
    out["MdR"] = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    out["MnR"] = sum(ranks) / n
    return out


@pytest.mark.parametrize("seed,videos,per_video", [(0, 30, 1), (1, 25, 3), (2, 40, 0)])
def test_retrieval_metrics_equal_brute_force(seed, videos, per_video):
    rng = np.random.default_rng(seed)
    if per_video:
        caption_video = np.repeat(np.arange(videos), per_video)
    else:  # uneven: 1 to 4 captions per video, shuffled
        caption_video = np.concatenate([[v] * rng.integers(1, 5) for v in range(videos)])
        rng.shuffle(caption_video)
    # a weakly informative random similarity so ranks spread over 1..videos
    sim = rng.normal(size=(len(caption_video), videos))
    sim[np.arange(len(caption_video)), caption_video] += 1.5
    m = retrieval_metrics(torch.tensor(sim), torch.tensor(caption_video))
    for direction, brute in (("t2v", brute_t2v), ("v2t", brute_v2t)):
        ranks = brute(sim, caption_video)
        expected = brute_metrics(ranks)
        for key, value in expected.items():
            assert m[direction][key] == pytest.approx(value), (direction, key)
        assert 0 < m[direction]["R@1"] < 100                   # the test matrix is not trivial


def test_ties_count_against_the_model():
    sim = torch.zeros(4, 4)                                    # a collapsed model
    m = retrieval_metrics(sim)
    assert m["t2v"]["R@1"] == 0.0 and m["t2v"]["MnR"] == 4.0
    assert m["v2t"]["R@1"] == 0.0
    assert t2v_ranks(torch.eye(3)).tolist() == [1, 1, 1]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="NaN"):
        t2v_ranks(torch.tensor([[float("nan"), 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="one entry per caption"):
        t2v_ranks(torch.zeros(3, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"videos \[2\] have no caption"):
        v2t_ranks(torch.zeros(2, 3), torch.tensor([0, 1]))


def test_rank_metrics_median_of_even_count():
    m = rank_metrics(torch.tensor([1, 2, 3, 10]))
    assert m["MdR"] == 2.5 and m["MnR"] == 4.0 and m["R@1"] == 25.0 and m["R@10"] == 100.0


def test_dsl_hand_computed():
    sim = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    e = math.e
    # column 0: softmax over queries of (2, 1) = (e/(e+1), 1/(e+1)); column 1: (0, 1) -> (1/(1+e), e/(1+e))
    expected = torch.tensor([[2 * e / (e + 1), 0.0], [1 / (e + 1), e / (e + 1)]], dtype=torch.float64)
    out = dsl(sim, theta=1.0)
    torch.testing.assert_close(out, expected)
    # caption 1 ties between its video (1) and video 0 in raw scores; DSL resolves it
    assert t2v_ranks(sim).tolist() == [1, 2]
    assert t2v_ranks(out).tolist() == [1, 1]


def test_qb_norm_hand_computed():
    bank = torch.tensor([[3.0, 0.0, 0.0], [2.0, 1.0, 0.0]])     # both bank queries' top-1: video 0
    sim = torch.tensor([[1.0, 0.5, 0.0],                          # top-1 video 0: activated -> normalised
                        [0.0, 1.0, 0.2]])                         # top-1 video 1: not activated -> raw
    e = math.e
    row0 = [e / (e**3 + e**2), e**0.5 / (1 + e), 1 / 2]
    out = qb_norm(sim, bank, beta=1.0, k=1)
    torch.testing.assert_close(out[0], torch.tensor(row0, dtype=torch.float64))
    torch.testing.assert_close(out[1], sim[1].double())
    # the hub (video 0) is damped: query 0 now prefers video 2
    assert out[0].argmax().item() == 2
    # k=2 activates video 1 as well (second choice of bank row 1), so query 1 is normalised too
    out_k2 = qb_norm(sim, bank, beta=1.0, k=2)
    torch.testing.assert_close(out_k2[1], torch.tensor([1 / (e**3 + e**2), e / (1 + e), e**0.2 / 2],
                                                       dtype=torch.float64))


def test_qb_norm_large_beta_is_finite_and_shape_checked():
    g = torch.Generator().manual_seed(0)
    out = qb_norm(torch.rand(5, 4, generator=g), torch.rand(50, 4, generator=g), beta=20.0)
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="bank_sim must be"):
        qb_norm(torch.rand(5, 4), torch.rand(3, 5))


def test_report_rows_are_labelled_and_transductive_rows_separate():
    g = torch.Generator().manual_seed(4)
    sim = torch.randn(12, 6, generator=g)
    caption_video = torch.arange(12) % 6
    bank = torch.randn(20, 6, generator=g)
    rows = retrieval_report(sim, caption_video, use_dsl=True, qb_bank_t2v=bank)
    labels = [r["row"] for r in rows]
    assert labels == ["t2v", "v2t", "t2v* DSL", "v2t* DSL", "t2v* QB-Norm"]
    assert [r["transductive"] for r in rows] == [False, False, True, True, True]
    plain = retrieval_metrics(sim, caption_video)
    assert rows[0]["R@1"] == plain["t2v"]["R@1"] and rows[1]["MnR"] == plain["v2t"]["MnR"]
    dsl_t2v = retrieval_metrics(dsl(sim), caption_video)["t2v"]
    assert rows[2]["MnR"] == dsl_t2v["MnR"]
    assert "t2v* QB-Norm" in format_rows(rows)


def brute_topk(logits, labels, k):
    probs = torch.softmax(logits, dim=-1)
    if probs.ndim == 3:
        probs = probs.mean(dim=1)
    hits = 0
    for p, y in zip(probs.tolist(), labels.tolist()):
        best = sorted(range(len(p)), key=lambda c: -p[c])[:k]
        hits += y in best
    return 100.0 * hits / len(labels)


@pytest.mark.parametrize("views", [None, 3, 12])
def test_recognition_metrics_with_views(views):
    g = torch.Generator().manual_seed(views or 0)
    shape = (40, 10) if views is None else (40, views, 10)
    logits = torch.randn(*shape, generator=g) * 2
    labels = torch.randint(0, 10, (40,), generator=g)
    m = recognition_metrics(logits, labels)
    assert m["top1"] == pytest.approx(brute_topk(logits, labels, 1))
    assert m["top5"] == pytest.approx(brute_topk(logits, labels, 5))
    assert m["top1"] <= m["top5"]


def test_view_averaging_is_softmax_then_mean():
    # one very confident view for class 0 (logit margin 10) against two views that prefer class 1
    # by a margin of 4: mean logits pick class 0 (3.33 vs 2.67); mean probabilities pick class 1
    # (each view's vote is capped at probability 1): (1 + 0.02 + 0.02)/3 < (0 + 0.98 + 0.98)/3
    logits = torch.tensor([[[10.0, 0.0], [0.0, 4.0], [0.0, 4.0]]])
    assert logits.mean(dim=1).argmax().item() == 0
    probs = average_views(logits)
    assert probs.argmax().item() == 1
    torch.testing.assert_close(probs.sum(dim=-1), torch.ones(1))
    assert recognition_metrics(logits, torch.tensor([1]))["top1"] == 100.0


def test_confusion_matrix():
    preds = torch.tensor([0, 1, 1, 2, 2, 2])
    labels = torch.tensor([0, 1, 2, 2, 2, 0])
    cm = confusion_matrix(preds, labels, 3)
    expected = torch.zeros(3, 3, dtype=torch.long)
    for p, y in zip(preds.tolist(), labels.tolist()):
        expected[y, p] += 1
    assert torch.equal(cm, expected) and cm.sum() == 6
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(torch.tensor([3]), torch.tensor([0]), 3)


def test_plot_confusion_matrix(tmp_path):
    from stanlib.engine.evaluate import plot_confusion_matrix

    path = tmp_path / "cm.png"
    plot_confusion_matrix(torch.tensor([[3, 1], [0, 4]]), ["a", "b"], path=path)
    assert path.stat().st_size > 1000
