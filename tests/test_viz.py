"""stanlib.viz: attention capture, derived views, plots, GIF, explorer widget, CLI."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import stanlib
import stanlib.cli
from stanlib.model.branch import Attention
from stanlib.viz import (attention_rollout, capture_attention, cls_maps, gradient_saliency,
                         occlusion_saliency, patch_spatial_maps, patch_temporal, plot_clip_vs_stan,
                         plot_overlay_strip, plot_patch_attention, plot_saliency, plot_temporal_matrices,
                         rollout_maps, save_figure, save_overlay_gif, temporal_entropy)

T = 4


def tiny(temporal="attn", **kw):
    return stanlib.create_model(clip="stan-tiny", temporal=temporal, depth=2, **kw).eval()


@pytest.fixture(scope="module")
def frames():
    return torch.randn(2, T, 3, 64, 64, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def captured(frames):
    torch.manual_seed(0)
    model = tiny()
    with torch.no_grad(), capture_attention(model) as att:
        model.encode_video(frames)
    return model, att


def _hooks_off(model) -> bool:
    return (model.clip_record is None and "encode_video" not in vars(model)
            and all(m.record is None for m in model.modules() if isinstance(m, Attention)))


# ---------------------------------------------------------------------------------------------- capture
@pytest.mark.parametrize("kw", [dict(temporal="attn"), dict(temporal="conv"), dict(temporal=None, spatial=False),
                                dict(temporal="attn", arch="posterior")],
                         ids=["attn", "conv", "meanpool", "posterior"])
def test_capture_equals_fused_forward_and_shapes(kw, frames):
    model = tiny(**kw)
    b, (h, w) = frames.shape[0], model.clip.visual.grid_size
    s = 1 + h * w
    tokens = model.tokenize(["a red circle moves left", "a blue square"])
    with torch.no_grad():
        ref_video, ref_logits = model.encode_video(frames), model(frames, tokens)
        with capture_attention(model) as att:
            out_video = model.encode_video(frames)
        with capture_attention(model) as att2:
            out_logits = model(frames, tokens)  # forward goes through encode_video too
        after = model.encode_video(frames)
    assert torch.allclose(out_video, ref_video, atol=1e-6, rtol=0)
    assert torch.allclose(out_logits, ref_logits, atol=1e-4, rtol=0)  # logits = 100 x cosine
    assert torch.equal(after, ref_video) and _hooks_off(model)  # fused path again, bit for bit
    assert len(att.clip_spatial) == 4 and len(att2.clip_spatial) == 4
    assert all(a.shape == (b, T, 4, s, s) for a in att.clip_spatial)
    n_branch = {"attn": 2, "conv": 2, None: 0}[kw["temporal"]] if kw.get("spatial", True) else 0
    assert len(att.stan_spatial) == n_branch
    assert all(a.shape == (b, T, 4, s, s) for a in att.stan_spatial)
    assert len(att.stan_temporal) == (2 if kw["temporal"] == "attn" else 0)  # conv: no attention
    assert all(a.shape == (b, h * w, 4, T, T) for a in att.stan_temporal)
    for a in att.clip_spatial + att.stan_spatial + att.stan_temporal:
        assert torch.allclose(a.sum(-1), torch.ones(()), atol=1e-5)
        assert a.min() >= 0


def test_capture_per_video_matches_single_forward(captured, frames):
    """Reshaping (B*T) -> (B, T) keeps each video's maps apart: video 1 alone gives the same maps."""
    model, att = captured
    with torch.no_grad(), capture_attention(model) as one:
        model.encode_video(frames[1:])
    for a, b in zip(att.clip_spatial + att.stan_spatial + att.stan_temporal,
                    one.clip_spatial + one.stan_spatial + one.stan_temporal):
        assert torch.allclose(a[1:], b, atol=1e-5)
    assert att.branch_levels == [2, 3] and att.grid == (8, 8)


def test_capture_stacks_calls_restores_on_error_and_refuses_nesting(frames):
    assert stanlib.capture_attention is capture_attention  # the lazy top-level export
    model = tiny()
    with torch.no_grad(), capture_attention(model) as att:
        model.encode_video(frames[:1])
        model.encode_video(frames[1:])
    assert att.batch == 2 and att.stan_temporal[0].shape[0] == 2
    with pytest.raises(ValueError, match="frames must be"):
        with capture_attention(model):
            model.encode_video(frames[0])  # 4-D input: the model raises; hooks must come off anyway
    assert _hooks_off(model)
    with capture_attention(model):
        with pytest.raises(RuntimeError, match="already inside"):
            with capture_attention(model):
                pass
    assert _hooks_off(model)
    with pytest.raises(RuntimeError, match="no attention was captured"):
        with capture_attention(model) as empty:
            pass
        empty.num_frames


def test_capture_vit_b32_shapes():
    """One real-size config (random init, 1 clip, T=2) to check shapes beyond the tiny grid."""
    model = stanlib.create_model(clip="ViT-B-32", temporal="attn", depth=2).eval()
    x = torch.randn(1, 2, 3, 224, 224)
    with torch.no_grad():
        ref = model.encode_video(x)
        with capture_attention(model) as att:
            out = model.encode_video(x)
    assert torch.allclose(out, ref, atol=1e-5, rtol=0), (out - ref).abs().max()
    assert len(att.clip_spatial) == 12 and att.clip_spatial[0].shape == (1, 2, 12, 50, 50)
    assert [a.shape for a in att.stan_spatial] == [(1, 2, 12, 50, 50)] * 2
    assert [a.shape for a in att.stan_temporal] == [(1, 49, 12, 2, 2)] * 2
    assert att.branch_levels == [10, 11] and att.grid == (7, 7)
    assert torch.allclose(att.stan_temporal[1].sum(-1), torch.ones(()), atol=1e-5)


# ---------------------------------------------------------------------------------------------- views
def test_views_shapes_heads_and_rollout(captured):
    _, att = captured
    last = att.clip_spatial[-1]
    assert cls_maps(last, att.grid).shape == (2, T, 8, 8)
    per_head = cls_maps(last, att.grid, head="all")
    assert per_head.shape == (2, T, 4, 8, 8)
    assert torch.allclose(per_head.mean(2), cls_maps(last, att.grid))
    assert torch.equal(cls_maps(last, att.grid, head=3), per_head[:, :, 3])
    with pytest.raises(ValueError, match="head"):
        cls_maps(last, att.grid, head=4)
    # rollout of one layer = (0.5 A + 0.5 I); of all layers: still row-stochastic
    one = attention_rollout(att.clip_spatial[:1])
    eye = torch.eye(65)
    assert torch.allclose(one, 0.5 * att.clip_spatial[0].mean(2) + 0.5 * eye, atol=1e-6)
    full = attention_rollout(att.clip_spatial)
    assert full.shape == (2, T, 65, 65) and torch.allclose(full.sum(-1), torch.ones(()), atol=1e-5)
    maps = rollout_maps(att.clip_spatial, att.grid)
    assert maps.shape == (2, T, 8, 8) and torch.allclose(maps.sum((-1, -2)), torch.ones(()), atol=1e-5)
    # a patch's view: its own row of the map, and its temporal rows
    sp = patch_spatial_maps(att.stan_spatial[0], (2, 5), att.grid)
    assert torch.allclose(sp.flatten(2), att.stan_spatial[0][:, :, :, 1 + 2 * 8 + 5, 1:].mean(2))
    tm = patch_temporal(att.stan_temporal[0], (2, 5), att.grid, head=1)
    assert tm.shape == (2, T, T) and torch.equal(tm, att.stan_temporal[0][:, 21, 1])
    with pytest.raises(ValueError, match="outside"):
        patch_temporal(att.stan_temporal[0], (8, 0), att.grid)


def test_untrained_temporal_attention_is_near_uniform(captured):
    """Fresh temporal attention over random input spreads over frames (normalised entropy near 1)."""
    _, att = captured
    ent = torch.stack([temporal_entropy(a).mean() for a in att.stan_temporal])
    assert (ent > 0.85).all(), ent
    peaked = torch.zeros(1, 1, 1, T, T)
    peaked[..., 0] = 1.0
    assert temporal_entropy(peaked).max() < 1e-6  # the measure can fail


def test_occlusion_and_gradient_saliency_conv(frames):
    """Model-agnostic saliency on STAN-conv (no attention): finite, one value per frame, and a
    frame that matters gives a larger drop than an identical copy of the fill."""
    torch.manual_seed(0)
    model = tiny("conv")
    with torch.no_grad():  # make the conv branch non-trivial (zero-init output would hide it)
        model.branch.temporal[0].temporal_fc.weight.normal_(0, 0.05)
    clip = frames[:1].clone()
    clip[0, 2] = clip[0, [0, 1, 3]].mean(0)  # then frame 2 IS the clip's mean frame: replacing it changes nothing
    occ = occlusion_saliency(model, clip, "a red circle moves left")
    assert occ.shape == (1, T) and torch.isfinite(occ).all()
    assert occ[0, 2].abs() < 1e-5 and occ[0, [0, 1, 3]].abs().min() > 1e-5
    self_occ = occlusion_saliency(model, clip, None, fill="zero")
    assert (self_occ > 0).all()  # similarity to the unmasked embedding can only drop (cos <= 1)
    grad = gradient_saliency(model, clip, "a red circle moves left")
    assert grad.shape == (1, T, 64, 64) and (grad >= 0).all() and grad.sum() > 0
    assert not model.training


# ---------------------------------------------------------------------------------------------- plots
def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def _png_ok(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.format == "PNG" and im.size[0] > 100


def test_plots_write_pngs_with_expected_panels(captured, frames, tmp_path):
    _, att = captured
    clip = frames[0]
    strip = plot_overlay_strip(clip, cls_maps(att.clip_spatial[-1], att.grid)[0], "CLS map")
    assert len(_image_axes(strip)) == T
    temporal = plot_temporal_matrices(att, sample=1)
    assert len(_image_axes(temporal)) == len(att.stan_temporal)  # colourbar axes hold no image
    side = plot_clip_vs_stan(clip, att)
    assert len(_image_axes(side)) == 2 * T
    patch = plot_patch_attention(clip, att, (3, 4), query_frame=1)
    assert len(_image_axes(patch)) == T and len(patch.axes[0].patches) == 1
    assert patch.axes[1].get_title().endswith("(query)")
    sal = plot_saliency(clip, torch.rand(T), torch.rand(T, 64, 64))
    assert len(_image_axes(sal)) == T and len(sal.axes) == T + 1  # bar chart + T overlays
    for name, fig in dict(strip=strip, temporal=temporal, side=side, patch=patch, sal=sal).items():
        assert _png_ok(save_figure(fig, tmp_path / f"{name}.png"))
    with pytest.raises(ValueError, match="no temporal attention"):
        plot_temporal_matrices(type(att)(att.clip_spatial, [], [], att.grid, [], "meanpool", None))


def test_gif_has_one_frame_per_video_frame(captured, frames, tmp_path):
    from PIL import Image

    _, att = captured
    clip = frames[0].clone()
    clip[1] = clip[0]  # identical consecutive frames must not be merged by the GIF encoder
    maps = cls_maps(att.clip_spatial[-1], att.grid)[0]
    maps[1] = maps[0]
    path = save_overlay_gif(clip, maps, tmp_path / "a.gif", scale=2)
    with Image.open(path) as im:
        assert im.n_frames == T and im.size == (128, 128)


# ---------------------------------------------------------------------------------------------- explorer
def test_explorer_builds_and_updates_without_display(captured, frames):
    pytest.importorskip("ipywidgets")
    from stanlib.viz import AttentionExplorer

    _, att = captured
    ex = AttentionExplorer(frames, att, sample=1)
    first, renders = ex.image.value, ex.renders
    assert first[:4] == b"\x89PNG"
    ex.frame.value = 2
    assert ex.renders == renders + 1 and ex.image.value != first
    ex.head.value = 1
    ex.row.value, ex.col.value = 0, 7
    ex.source.value = "CLIP"
    assert ex.layer.options[0] == ("rollout", -1) and len(ex.layer.options) == 5
    ex.layer.value = 0
    assert ex.figure().get_suptitle() == "CLIP layer 0, head 1, frame 2"
    ex.source.value = "STAN"
    assert [v for _, v in ex.layer.options] == [0, 1] and ex.layer.value == 1
    assert ex.renders == renders + 7  # one render per change, none lost or doubled
    assert ex.figure().get_suptitle() == "STAN layer 1, head 1, frame 2"
    conv = AttentionExplorer.from_model(tiny("conv"), frames[0])
    assert "STAN-conv" in conv.figure().axes[2].texts[0].get_text()  # no temporal attention to draw


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_writes_figures_and_gif(tmp_path, monkeypatch):
    np = pytest.importorskip("numpy")
    pytest.importorskip("av")
    from stanlib.teaching.synth import render_clip, sample_spec, write_mp4

    from stanlib.viz import cli

    video = tmp_path / "clip.mp4"
    write_mp4(video, render_clip(sample_spec(np.random.default_rng(0), "red", "circle", "left", num_frames=8)))
    monkeypatch.setattr(cli, "BUNDLED_TINY", tmp_path / "missing")  # the random-init fallback
    with pytest.warns(UserWarning, match="RANDOMLY"):
        rc = stanlib.cli.main(["attention", "--video", str(video), "--out", str(tmp_path / "out"),
                               "--frames", "3", "--text", "a red circle moves left", "--patch", "1", "2"])
    assert rc == 0
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == {"clip_rollout.png", "stan_cls.png", "clip_vs_stan.png", "patch.png", "temporal.png",
                       "attention.gif"}
    from PIL import Image

    with Image.open(tmp_path / "out" / "attention.gif") as im:
        assert im.n_frames == 3
    assert stanlib.cli.main(["attention", "--video", str(tmp_path / "nope.mp4"), "--out", str(tmp_path)]) == 2


# ---------------------------------------------------------------------------------------------- training


def _flash_batch(n: int, g: torch.Generator, random_labels: bool = False):
    """Order task: one bright frame among T noise frames, at the START (label 0) or the END (label 1)
    of the clip. Both classes hold the same set of frames; only their order tells them apart."""
    x = 0.3 * torch.randn(n, T, 3, 64, 64, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    x[torch.arange(n), y * (T - 1)] += 1.5
    if random_labels:  # control: same inputs, labels carry no information
        y = torch.randint(0, 2, (n,), generator=g)
    return x, y


def _mean_temporal_entropy(model, x) -> float:
    with torch.no_grad(), capture_attention(model) as att:
        model.encode_video(x)
    return torch.stack([temporal_entropy(a).mean() for a in att.stan_temporal]).mean().item()


def _train_order_task(random_labels: bool, steps: int = 20, seed: int = 0):
    """Branch + linear head (CLIP frozen) on the order task; returns (model, head)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = stanlib.create_model(clip="stan-tiny", temporal="attn", depth=1, drop_path=0.0)
    model.clip.requires_grad_(False)
    head = torch.nn.Linear(model.embed_dim, 2)
    opt = torch.optim.AdamW([*model.branch.parameters(), *head.parameters()], lr=5e-3, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        x, y = _flash_batch(8, g, random_labels)
        loss = F.cross_entropy(10 * head(F.normalize(model.encode_video(x), dim=-1)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), head


def test_training_on_order_task_sharpens_temporal_attention():
    """After 20 steps on a frame-order task, temporal attention is far from uniform, and far more
    so than after the same optimisation on random labels (Adam alone also moves the weights, so
    the control separates "learnt to look at the informative frame" from "weights drifted")."""
    x_val, y_val = _flash_batch(32, torch.Generator().manual_seed(123))
    init = stanlib.create_model(clip="stan-tiny", temporal="attn", depth=1, drop_path=0.0).eval()
    start = _mean_temporal_entropy(init, x_val)
    model, head = _train_order_task(random_labels=False)
    control, _ = _train_order_task(random_labels=True)
    with torch.no_grad():
        acc = (head(F.normalize(model.encode_video(x_val), dim=-1)).argmax(-1) == y_val).float().mean().item()
    trained, drifted = _mean_temporal_entropy(model, x_val), _mean_temporal_entropy(control, x_val)
    assert start > 0.85  # near-uniform before training
    assert acc >= 0.9, f"the order task was not learnt (val accuracy {acc:.2f})"
    assert trained < 0.5 * start, (start, trained)
    assert trained < drifted - 0.1, (trained, drifted)


def test_bundled_tiny_checkpoint_attention_is_not_uniform():
    """The shipped tiny model (trained on the synthetic motion data) vs a random init of the same config."""
    np = pytest.importorskip("numpy")
    from stanlib.teaching.synth import motion_task
    from stanlib.data.transforms import test_transform
    from stanlib.viz.cli import BUNDLED_TINY

    assert (BUNDLED_TINY / "config.json").is_file(), f"no bundled tiny checkpoint at {BUNDLED_TINY}"
    model = stanlib.from_pretrained(BUNDLED_TINY)
    assert model.config.temporal == "attn"
    clips = motion_task(n_train=0, n_test=10, seed=7, num_frames=model.config.num_frames).frames("test", False)
    x = torch.stack([test_transform(model.image_size)(torch.from_numpy(c).permute(0, 3, 1, 2)) for c in clips])
    config = {k: v for k, v in model.config.to_dict().items() if k != "extra"}
    fresh = stanlib.create_model(**(config | {"pretrained": None})).eval()  # same architecture, random weights
    trained, untrained = _mean_temporal_entropy(model, x), _mean_temporal_entropy(fresh, x)
    assert np.isfinite(trained) and trained < untrained - 0.05, (trained, untrained)
