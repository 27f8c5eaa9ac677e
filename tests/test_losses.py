"""Losses: InfoNCE against an explicit formula, the recognition head, class-name embeddings."""
import math

import pytest
import torch
import torch.nn.functional as F

from stanlib.engine.losses import ContrastiveLoss, RecognitionHead, class_text_embeddings, info_nce


def brute_force_infonce(video, text, scale):
    """-mean_i log softmax_row(S)_ii - mean_j log softmax_col(S)_jj with explicit loops."""
    v, t = F.normalize(video.double(), dim=-1), F.normalize(text.double(), dim=-1)
    n = len(v)
    s = [[scale * float(v[i] @ t[j]) for j in range(n)] for i in range(n)]
    rows = -sum(s[i][i] - math.log(sum(math.exp(s[i][j]) for j in range(n))) for i in range(n)) / n
    cols = -sum(s[j][j] - math.log(sum(math.exp(s[i][j]) for i in range(n))) for j in range(n)) / n
    return rows + cols


@pytest.mark.parametrize("scale", [1.0, 20.0, 100.0])
def test_contrastive_loss_matches_formula(scale):
    g = torch.Generator().manual_seed(0)
    video, text = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    loss = ContrastiveLoss(logit_scale=scale)(video, text)
    assert loss.item() == pytest.approx(brute_force_infonce(video, text, scale), rel=1e-5)


def test_loss_is_asymmetric_in_rows_and_columns():
    # Swapping the roles of video and text gives the same loss (symmetric), but a non-symmetric
    # similarity matrix has different row and column terms: check both terms are present.
    g = torch.Generator().manual_seed(1)
    v, t = F.normalize(torch.randn(5, 4, generator=g), dim=-1), F.normalize(torch.randn(5, 4, generator=g), dim=-1)
    full = info_nce(v, t, 10.0)
    target = torch.arange(5)
    rows_only = F.cross_entropy(10.0 * v @ t.t(), target)
    assert full.item() == pytest.approx(rows_only.item() + F.cross_entropy(10.0 * t @ v.t(), target).item(), rel=1e-6)
    assert not math.isclose(full.item(), 2 * rows_only.item(), rel_tol=1e-3)
    assert ContrastiveLoss(10.0)(v, t).item() == pytest.approx(ContrastiveLoss(10.0)(t, v).item(), rel=1e-6)


def test_learnable_scale_gets_gradient_and_external_scale_overrides():
    g = torch.Generator().manual_seed(2)
    video, text = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    fixed = ContrastiveLoss(50.0)
    assert not any(p.requires_grad for p in fixed.parameters())
    learn = ContrastiveLoss(50.0, learnable=True)
    learn(video, text).backward()
    assert learn.log_scale.grad is not None and learn.log_scale.grad.abs() > 0
    ext = fixed(video, text, logit_scale=torch.tensor(7.0))
    assert ext.item() == pytest.approx(brute_force_infonce(video, text, 7.0), rel=1e-5)


def test_perfect_alignment_gives_low_loss_and_shape_mismatch_errors():
    x = torch.eye(4)
    assert ContrastiveLoss(100.0)(x, x).item() < 1e-6
    with pytest.raises(ValueError, match="same shape"):
        ContrastiveLoss()(torch.randn(4, 8), torch.randn(3, 8))


def test_recognition_head_cosine_linear_and_smoothing():
    g = torch.Generator().manual_seed(3)
    classes, video = torch.randn(5, 8, generator=g), torch.randn(6, 8, generator=g)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    head = RecognitionHead(classes, scale=100.0)
    expected = 100.0 * F.normalize(video, dim=-1) @ F.normalize(classes, dim=-1).t()
    torch.testing.assert_close(head.logits(video), expected)
    assert list(head.parameters()) == []                      # frozen: a buffer, no parameters
    assert head(video, labels).item() == pytest.approx(F.cross_entropy(expected, labels).item(), rel=1e-5)
    smooth = RecognitionHead(classes, label_smoothing=0.1)
    assert smooth(video, labels).item() == pytest.approx(
        F.cross_entropy(expected, labels, label_smoothing=0.1).item(), rel=1e-5)
    lin = RecognitionHead(classes, linear=True)
    torch.testing.assert_close(lin.logits(video), expected, rtol=1e-4, atol=1e-4)  # starts as the cosine head
    lin(video, labels).backward()
    assert lin.linear.weight.grad is not None
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        head(video, torch.tensor([0, 1, 2, 3, 4, 5]))


def test_class_text_embeddings_with_tiny_model():
    from stanlib.model import create_model

    torch.manual_seed(0)
    model = create_model(clip="stan-tiny", temporal="attn", depth=1)
    model.train()
    emb = class_text_embeddings(model, ["red circle", "blue square", "green cross"], template="a video of {}")
    assert emb.shape == (3, model.embed_dim)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    assert model.training                                      # mode restored
    assert not emb.requires_grad
    direct = F.normalize(model.encode_text(model.tokenize(["a video of blue square"])), dim=-1)
    torch.testing.assert_close(emb[1:2], direct.detach(), rtol=1e-5, atol=1e-5)
