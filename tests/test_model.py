"""The STAN model: shapes, initial identities, spatial copies, order sensitivity, checkpointing, limits."""
import pytest
import torch

import stanlib
from stanlib.model.flops import PAPER_GFLOPS, model_cost
from stanlib.model.branch import SpatialBlock, TemporalAttention, TemporalConv


def tiny(**kw):
    kw.setdefault("depth", 2)
    return stanlib.create_model("stan-tiny", **kw).eval()


def perturb_temporal(model, std=0.2):
    """Give every zero-initialised temporal projection non-zero weights (as after training)."""
    with torch.no_grad():
        for m in model.branch.temporal:
            last = m.temporal_fc if hasattr(m, "temporal_fc") else m.up
            last.weight.normal_(std=std)


@pytest.mark.parametrize("t", [1, 4, 8, 12, 16])
def test_tiny_shapes(t):
    model = tiny()
    frames = torch.randn(2, t, 3, 64, 64)
    tokens = model.tokenize(["a red circle moves left", "a blue square grows", "a star"])
    assert model.encode_video(frames).shape == (2, 128)
    assert model.encode_text(tokens).shape == (3, 128)
    assert model(frames, tokens).shape == (2, 3)


ARCH_VARIANTS = [
    dict(temporal="attn"), dict(temporal="conv"), dict(temporal="conv", conv_variant="bottleneck"),
    dict(arch="posterior"), dict(single_level=True), dict(temporal=None), dict(spatial=False),
    dict(temporal=None, spatial=False), dict(arch="seqtransf"),
    dict(fusion_proj=True, pos_embed="new", first_cls="mean", order="st", spatial_mlp=False),
]


@pytest.mark.parametrize("kw", ARCH_VARIANTS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_variants_run_and_backprop(kw, tiny_frames):
    model = tiny(**kw).train()
    out = model.encode_video(tiny_frames[:, :4])
    assert out.shape == (2, 128) and torch.isfinite(out).all()
    out.square().sum().backward()
    if model.branch is not None:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.branch.parameters())


def test_mean_pool_selected_by_no_modules():
    assert tiny(temporal=None, spatial=False).config.arch == "meanpool"
    assert tiny(temporal=None, spatial=False).branch is None


def test_b32_forward_cpu():
    model = stanlib.create_model("ViT-B-32", depth=4).eval()
    with torch.no_grad():
        out = model.encode_video(torch.randn(1, 2, 3, 224, 224))
        txt = model.encode_text(model.tokenize(["a dog runs"], 32))
    assert out.shape == (1, 512) and txt.shape == (1, 512)
    assert len(model.branch.spatial) == 4


@pytest.mark.parametrize("kind", ["attn", "conv", "bottleneck"])
def test_temporal_modules_are_identity_at_init(kind):
    torch.manual_seed(0)
    if kind == "attn":
        module = TemporalAttention(32, 4)
    else:
        module = TemporalConv(32, (3, 3), "dense" if kind == "conv" else kind)
    p = torch.randn(2, 5, 9, 32)
    assert torch.equal(module(p), p)


def test_spatial_modules_copy_their_clip_block():
    model = tiny(depth=3)
    blocks = model.clip.visual.transformer.resblocks
    n = len(blocks)
    for k, spatial in enumerate(model.branch.spatial):
        ref = blocks[n - 3 + k].state_dict()
        got = spatial.state_dict()
        assert set(got) == set(ref), "spatial module must use the CLIP block's parameter names"
        for name, tensor in ref.items():
            assert torch.equal(got[name], tensor), f"spatial[{k}].{name} differs from CLIP block {n - 3 + k}"
        assert got["attn.in_proj_weight"].data_ptr() != ref["attn.in_proj_weight"].data_ptr(), "must be a copy"


@pytest.mark.parametrize("clip,quick_gelu", [("stan-tiny", True), ("ViT-B-32", False), ("ViT-B-32", True)])
def test_spatial_blocks_inherit_activation(clip, quick_gelu):
    from open_clip.transformer import QuickGELU

    with torch.device("meta"):  # no weights needed to check the module types
        model = stanlib.create_model(clip, depth=1, quick_gelu=quick_gelu)
    act = model.branch.spatial[0].mlp.gelu
    clip_act = model.clip.visual.transformer.resblocks[-1].mlp.gelu
    assert type(act) is type(clip_act)
    assert isinstance(act, QuickGELU) == quick_gelu


def test_untrained_branch_output_equals_clip_path_except_cls_offset(tiny_frames):
    """STAN's video embedding is CLIP's own frame path (open_clip's tower, run untouched) with ONE
    per-video offset, the branch's video CLS, added to every frame's final CLS token before
    ``ln_post``; without the offset it is exactly CLIP mean pooling."""
    model = tiny()
    assert isinstance(model.branch.spatial[0], SpatialBlock)
    visual, branch = model.clip.visual, model.branch
    offsets = []
    video_cls = branch.video_cls
    branch.video_cls = lambda cls, p: offsets.append(video_cls(cls, p)) or offsets[-1]  # record the offset
    b, t = tiny_frames.shape[:2]
    with torch.no_grad():
        got = model.encode_video(tiny_frames)
        clip_cls = visual.transformer(visual._embeds(tiny_frames.flatten(0, 1)))[:, 0].view(b, t, -1)
        expected = (visual.ln_post(clip_cls + offsets[0][:, None]) @ visual.proj).mean(dim=1)
        mean_pool = model.clip.encode_image(tiny_frames.flatten(0, 1)).view(b, t, -1).mean(dim=1)
    assert offsets[0].shape == (b, clip_cls.shape[-1]) and offsets[0].abs().max() > 1e-3
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close((visual.ln_post(clip_cls) @ visual.proj).mean(dim=1), mean_pool, rtol=1e-5, atol=1e-5)
    assert (got - mean_pool).abs().max() > 1e-3  # the offset is not nothing


@pytest.mark.parametrize("kw", [dict(), dict(arch="posterior"), dict(single_level=True), dict(spatial=False),
                                dict(levels=(1, 3), fusion_proj=True, temporal="conv")],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_encode_video_is_clip_fused_with_branch_of_levels(kw, tiny_frames):
    """``encode_video`` = CLIP's blocks, the levels they output -> ``branch(levels, ...)`` (its only
    call), its video CLS added to every final frame CLS before ``ln_post`` (posterior: the branch's
    CLS alone, on the final tokens). Exact equality."""
    model = tiny(**kw)
    perturb_temporal(model)
    visual, branch = model.clip.visual, model.branch
    calls = []
    branch.register_forward_hook(lambda module, args, out: calls.append((args[0], out)))
    b, t = tiny_frames.shape[:2]
    with torch.no_grad():
        got = model.encode_video(tiny_frames)
        x, outputs = visual._embeds(tiny_frames.flatten(0, 1)), []
        for block in visual.transformer.resblocks:
            x = model._run_block(block, x)
            outputs.append(x.view(b, t, *x.shape[1:]))
        args = (visual.class_embedding, visual.positional_embedding)
        if model.config.arch == "posterior":
            expected = visual.ln_post(branch([outputs[-1]], *args)) @ visual.proj
        else:
            cls = branch([outputs[i] for i in model.branch_levels], *args)
            expected = (visual.ln_post(outputs[-1][:, :, 0] + cls[:, None]) @ visual.proj).mean(dim=1)
    assert len(calls) == 2  # encode_video's call, then ours
    (levels, out), (ref_levels, ref_out) = calls
    assert len(levels) == (1 if model.config.arch == "posterior" else model.config.depth)
    assert all(torch.equal(a, r) for a, r in zip(levels, ref_levels)) and torch.equal(out, ref_out)
    assert torch.equal(got, expected)
    with pytest.raises(ValueError, match="CLIP levels"):
        branch(outputs[:3], *args)  # neither 1 level nor one per branch layer (K = 2)


def test_untrained_branch_sees_frame_order_only_through_the_time_embedding(tiny_frames):
    """At init the temporal modules are identities: reversing the frames changes the embedding
    only through the time embedding (zero it and the untrained branch is order-blind)."""
    model = tiny()
    with torch.no_grad():
        assert (model.encode_video(tiny_frames) - model.encode_video(tiny_frames.flip(1))).abs().max() > 1e-4
        model.branch.time_embed.weight.zero_()
        torch.testing.assert_close(model.encode_video(tiny_frames), model.encode_video(tiny_frames.flip(1)),
                                   rtol=0, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_encode_frames_equals_open_clip_encode_image(fused, tiny_frames):
    """``encode_frames`` rebuilds CLIP's image path from open_clip's private ``_embeds`` and our own
    block forward: it must give exactly what ``clip.encode_image`` gives on the same frames."""
    model = tiny(arch="meanpool")
    model.set_fused_attention(fused)
    b, t = tiny_frames.shape[:2]
    with torch.no_grad():
        got = model.encode_frames(tiny_frames)
        ref = model.clip.encode_image(tiny_frames.flatten(0, 1)).view(b, t, -1)
        pooled = model.encode_video(tiny_frames)
    assert got.shape == ref.shape == (b, t, model.embed_dim)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pooled, ref.mean(dim=1), rtol=1e-5, atol=1e-5)


def test_drop_path_is_timm_stochastic_depth_without_parameters():
    """The branch uses timm's DropPath: no parameters (state_dict keys unchanged), identity in eval
    mode, whole samples dropped and survivors scaled by 1 / (1 - p) in training."""
    from timm.layers import DropPath

    model = tiny(depth=3, drop_path=0.5)
    rates = [m.drop_path.drop_prob for m in model.branch.temporal]
    assert rates == pytest.approx([0.0, 0.25, 0.5])  # linspace(0, drop_path, K)
    assert all(isinstance(m.drop_path, DropPath) for m in [*model.branch.temporal, *model.branch.spatial])
    assert not any("drop_path" in k for k in model.state_dict())
    module = DropPath(0.5)
    x = torch.ones(64, 3, 5)
    assert torch.equal(module.eval()(x), x)
    y = module.train()(x)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()  # the whole residual branch of a sample, not elements


def test_mean_pool_is_invariant_to_frame_reversal(tiny_frames):
    model = tiny(temporal=None, spatial=False)
    with torch.no_grad():
        fwd = model.encode_video(tiny_frames)
        rev = model.encode_video(tiny_frames.flip(1))
    # equal up to float summation order (a few ulps)
    torch.testing.assert_close(fwd, rev, rtol=0, atol=1e-6)


@pytest.mark.parametrize("temporal", ["attn", "conv"])
def test_stan_is_order_sensitive(temporal, tiny_frames):
    model = tiny(temporal=temporal)
    perturb_temporal(model)
    with torch.no_grad():
        fwd = model.encode_video(tiny_frames)
        rev = model.encode_video(tiny_frames.flip(1))
    assert (fwd - rev).abs().max() > 1e-3


@pytest.mark.parametrize("kw", [dict(temporal="attn"), dict(temporal="conv"), dict(arch="meanpool")])
def test_grad_checkpointing_same_outputs_and_grads(kw, tiny_frames, assert_checkpointing_keeps_outputs_and_grads):
    model = tiny(**kw, drop_path=0.0).train()
    if model.branch is not None:
        perturb_temporal(model)
    frames = tiny_frames[:, :4]
    assert_checkpointing_keeps_outputs_and_grads(model, frames)


def test_explicit_and_fused_attention_agree(tiny_frames):
    model = tiny()
    perturb_temporal(model)
    with torch.no_grad():
        fused = model.encode_video(tiny_frames)
        model.set_fused_attention(False)
        explicit = model.encode_video(tiny_frames)
    torch.testing.assert_close(fused, explicit, rtol=0, atol=1e-5)


def test_time_embed_every_level_option(tiny_frames):
    """time_embed="every" re-adds the time embedding with levels 1..K-1: same weights, a different
    function (K=2 adds it once more), and frame order still matters without the temporal module."""
    torch.manual_seed(0)
    first = tiny(temporal=None)
    every = tiny(temporal=None, time_embed="every")
    every.load_state_dict(first.state_dict())
    with torch.no_grad():
        a, b = first.encode_video(tiny_frames), every.encode_video(tiny_frames)
        b_rev = every.encode_video(tiny_frames.flip(1))
    assert (a - b).abs().max() > 1e-3
    assert (b - b_rev).abs().max() > 1e-4   # the spatial block mixes (patch + time_t) non-linearly
    with pytest.raises(ValueError, match="time_embed must be"):
        tiny(time_embed="last")


def test_too_many_frames_is_a_clear_value_error():
    model = tiny()
    with pytest.raises(ValueError, match=r"65 frames.*time embedding.*at most 64.*sample <= 64"):
        model.encode_video(torch.zeros(1, 65, 3, 64, 64))


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="depth K=9"):
        stanlib.create_model("stan-tiny", depth=9)
    with pytest.raises(ValueError, match="temporal must be"):
        stanlib.create_model("stan-tiny", depth=1, temporal="lstm")
    with pytest.raises(ValueError, match="unknown CLIP config"):
        stanlib.create_model("ViT-Q-99")
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        tiny().encode_video(torch.zeros(2, 3, 64, 64))


def test_pretrained_path_loads_exact_weights(tmp_path, tiny_frames):
    clip = stanlib.create_clip("stan-tiny")
    with torch.no_grad():
        for p in clip.parameters():
            p.normal_(std=0.02)
    path = tmp_path / "clip.pt"
    torch.save(clip.state_dict(), path)
    model = stanlib.create_model("stan-tiny", pretrained=str(path), depth=2)
    for name, tensor in clip.state_dict().items():
        assert torch.equal(model.clip.state_dict()[name], tensor), name
    # the branch's spatial modules are copied from the LOADED weights
    assert torch.equal(model.branch.spatial[-1].mlp.c_fc.weight, clip.visual.transformer.resblocks[-1].mlp.c_fc.weight)
    # safetensors works too
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(tmp_path / "clip.safetensors"))
    model2 = stanlib.create_model("stan-tiny", pretrained=str(tmp_path / "clip.safetensors"), depth=2)
    assert torch.equal(model2.clip.visual.conv1.weight, clip.visual.conv1.weight)


def test_pretrained_file_mismatch_and_garbage_are_clear(tmp_path):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read weights"):
        stanlib.create_model("stan-tiny", pretrained=str(bad), depth=1)
    other = tmp_path / "other.pt"
    torch.save({"foo": torch.zeros(1)}, other)
    with pytest.raises(KeyError, match="missing keys"):
        stanlib.create_model("stan-tiny", pretrained=str(other), depth=1)
    with pytest.raises(FileNotFoundError):
        stanlib.create_model("stan-tiny", pretrained=str(tmp_path / "nope.pt"), depth=1)


def test_hub_name_offline_fails_fast_with_fix(monkeypatch):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.time()
    with pytest.raises(RuntimeError, match="(?s)HF_HUB_OFFLINE.*Fix:"):
        stanlib.create_model("ViT-B-32", pretrained="openai", depth=1)
    assert time.time() - t0 < 60


@pytest.mark.parametrize("key", list(PAPER_GFLOPS))
def test_paper_gflops_within_one_percent(key):
    clip, temporal, frames, depth = key
    got = model_cost(clip, frames, temporal, depth)["gmacs"]
    assert abs(got - PAPER_GFLOPS[key]) / PAPER_GFLOPS[key] < 0.01, (key, got)


def test_logit_scale_fixed_by_default_and_learnable_on_request():
    assert "log_logit_scale" not in dict(tiny().named_parameters())
    m = tiny(learnable_logit_scale=True, logit_scale=50.0)
    assert abs(float(m.logit_scale.detach()) - 50.0) < 1e-3
    assert "log_logit_scale" in dict(m.named_parameters())


def test_branch_parameter_prefix():
    names = [n for n, _ in tiny().named_parameters()]
    assert any(n.startswith("branch.time_embed") for n in names)
    assert all(n.startswith(("clip.", "branch.")) for n in names)
