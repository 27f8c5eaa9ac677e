"""The paper's structure comparison: intermediate (ST-Adapter, X-CLIP), posterior (TDB), branch levels."""
from dataclasses import replace

import pytest
import torch

import stanlib
from stanlib.model.baselines import TABLE8_LEVELS, CrossFrameMessages, STAdapters, TemporalDifference
from stanlib.teaching.experiments import QUICK, ROWS, build_model
from stanlib.model.flops import STRUCTURES, structures_table
from stanlib.model import STANConfig, parse_levels
from stanlib.viz import capture_attention

NEW_ARCHS = ["st-adapter", "xclip-msg", "tdb"]


def tiny(seed=0, **kw):
    kw.setdefault("depth", 2)
    torch.manual_seed(seed)  # the CLIP is built first: same seed, same CLIP weights across archs
    return stanlib.create_model("stan-tiny", pretrained=None, **kw).eval()


def make_temporal_nonzero(model, std=0.3):
    """Give every zero-initialised temporal weight non-zero values (as after training)."""
    with torch.no_grad():
        for name, p in model.branch.named_parameters():
            if name.endswith("conv.weight") or "positional_embedding" in name or "temporal_fc.weight" in name:
                p.normal_(std=std)


def test_new_archs_build_their_structure():
    assert isinstance(tiny(arch="st-adapter").branch, STAdapters)
    assert isinstance(tiny(arch="xclip-msg").branch, CrossFrameMessages)
    assert isinstance(tiny(arch="tdb").branch, TemporalDifference)
    names = [n for n, _ in tiny(arch="st-adapter").named_parameters()]
    assert "branch.adapter_pre_attn.0.fc1.weight" in names  # the released adapters' names (fc1, conv, fc2)


@pytest.mark.parametrize("position", ["attn", "mlp", "both"])
def test_st_adapter_at_init_is_exactly_mean_pooling(position, tiny_frames):
    meanpool, adapter = tiny(arch="meanpool"), tiny(arch="st-adapter", adapter_position=position)
    with torch.no_grad():
        assert torch.equal(adapter.encode_video(tiny_frames), meanpool.encode_video(tiny_frames))


@pytest.mark.parametrize("arch", NEW_ARCHS)
def test_new_structures_run_and_backprop(arch, tiny_frames):
    model = tiny(arch=arch).train()
    out = model.encode_video(tiny_frames[:, :4])
    assert out.shape == (2, 128) and torch.isfinite(out).all()
    out.square().sum().backward()
    grads = {n: p.grad for n, p in model.branch.named_parameters()}
    assert all(g is not None for g in grads.values())
    if arch == "st-adapter":  # zero-initialised convolution, but its gradient is not zero: it can learn
        assert grads["adapter_pre_attn.0.conv.weight"].abs().sum() > 0


@pytest.mark.parametrize("kw", [dict(arch="st-adapter"), dict(arch="st-adapter", adapter_position="mlp"),
                                dict(arch="xclip-msg"), dict(arch="tdb"), dict(levels=(1, 3))],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_new_structures_are_order_sensitive_once_temporal_weights_are_nonzero(kw, tiny_frames):
    model = tiny(**kw)
    make_temporal_nonzero(model)
    with torch.no_grad():
        fwd = model.encode_video(tiny_frames)
        rev = model.encode_video(tiny_frames.flip(1))
    assert (fwd - rev).abs().max() > 1e-3


def test_xclip_message_tokens_alone_are_blind_to_frame_order(tiny_frames):
    """No frame position in the message attention: order comes from X-CLIP's MIT only."""
    model = tiny(arch="xclip-msg", mit_layers=0)
    with torch.no_grad():
        fwd, rev = model.encode_video(tiny_frames), model.encode_video(tiny_frames.flip(1))
        frames_mp = tiny(arch="meanpool").encode_frames(tiny_frames)
        frames_msg = model.encode_frames(tiny_frames)
    torch.testing.assert_close(fwd, rev, rtol=0, atol=1e-5)
    assert (frames_msg - frames_mp).abs().max() > 1e-3  # ...yet it does change the features CLIP computes


def test_intermediate_structures_change_the_features_of_later_clip_layers(tiny_frames):
    ref = tiny(arch="meanpool")
    adapter = tiny(arch="st-adapter")
    with torch.no_grad():
        adapter.branch.adapter_pre_attn[-1].conv.weight.normal_(std=0.3)  # only the LAST block's adapter
        before = adapter.encode_frames(tiny_frames)
        adapter.branch.adapter_pre_attn[-1].conv.weight.zero_()
        adapter.branch.adapter_pre_attn[0].conv.weight.normal_(std=0.3)   # only the FIRST block's adapter
        after = adapter.encode_frames(tiny_frames)
        base = ref.encode_frames(tiny_frames)
    assert (before - base).abs().max() > 1e-4 and (after - base).abs().max() > 1e-4


@pytest.mark.parametrize("kw", [dict(arch="st-adapter"), dict(arch="xclip-msg")], ids=lambda kw: kw["arch"])
def test_intermediate_grad_checkpointing_same_outputs_and_grads(kw, tiny_frames, assert_checkpointing_keeps_outputs_and_grads):
    model = tiny(**kw).train()
    make_temporal_nonzero(model)
    frames = tiny_frames[:, :4]
    assert_checkpointing_keeps_outputs_and_grads(model, frames)


# ------------------------------------------------------------------ levels (Table 8)


@pytest.mark.parametrize("levels", [(3, 4), [3, 4], "3-4", "3,4"])
def test_levels_last_k_equals_default_bit_for_bit(levels, tiny_frames):
    default, chosen = tiny(), tiny(levels=levels)
    assert chosen.config.levels == (3, 4)
    sd_a, sd_b = default.state_dict(), chosen.state_dict()
    assert sd_a.keys() == sd_b.keys() and all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    with torch.no_grad():
        assert torch.equal(default.encode_video(tiny_frames), chosen.encode_video(tiny_frames))


def test_levels_choose_the_clip_blocks_read_and_copied(tiny_frames):
    model = tiny(levels=(1, 3))
    blocks = model.clip.visual.transformer.resblocks
    assert model.branch_levels == [0, 2]
    for k, i in enumerate([0, 2]):  # spatial module k is a copy of the block whose output level k reads
        assert torch.equal(model.branch.spatial[k].mlp.c_fc.weight, blocks[i].mlp.c_fc.weight)
    with torch.no_grad():
        assert not torch.equal(model.encode_video(tiny_frames), tiny().encode_video(tiny_frames))
        with capture_attention(model) as att:
            model.encode_video(tiny_frames[:1, :4])
    assert att.branch_levels == [0, 2]


@pytest.mark.parametrize("levels, depth, match", [
    ((0, 1), 2, "1-based"), ((4, 5), 2, "go past the 4 CLIP layers"), ((2, 2), 2, "repeat"),
    ((3, 1), 2, "increasing order"), ((1, 2, 3), 2, "depth K=2"), ((2, 4), 3, "depth K=3"),
    ("a-b", 2, "range"), ("4-3", 2, "range ends"), ((1.0, 2.0), 2, "integers"), ((), 2, "integers"),
])
def test_bad_levels_are_clear_value_errors(levels, depth, match):
    with pytest.raises(ValueError, match=match):
        tiny(levels=levels, depth=depth)


def test_levels_only_for_the_branch():
    with pytest.raises(ValueError, match="no branch"):
        tiny(arch="posterior", levels=(3, 4))


def test_parse_levels_and_the_table8_rows():
    assert parse_levels("9-12") == (9, 10, 11, 12)
    assert parse_levels("6, 8, 10, 12") == (6, 8, 10, 12)
    assert parse_levels(None) is None
    for levels, _, _ in TABLE8_LEVELS.values():  # every Table 8 row is a valid K=4 config of ViT-B
        assert STANConfig(clip="ViT-B-16", levels=levels, depth=4).levels == levels
    with torch.device("meta"):
        model = stanlib.create_model("ViT-B-16", levels=TABLE8_LEVELS["interval 2"][0], depth=4)
    assert model.branch_levels == [5, 7, 9, 11]


# ------------------------------------------------------------------ bookkeeping


@pytest.mark.parametrize("kw", [dict(arch="st-adapter", adapter_position="both", adapter_kernel=(3, 3, 3)),
                                dict(arch="xclip-msg"), dict(arch="tdb"), dict(levels="2,4")],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_save_pretrained_round_trip(kw, tmp_path, tiny_frames):
    model = tiny(**kw)
    make_temporal_nonzero(model)
    model.save_pretrained(tmp_path / "m")
    loaded = stanlib.from_pretrained(tmp_path / "m")
    assert loaded.config.to_dict() == {**model.config.to_dict(), "quick_gelu": loaded.config.quick_gelu}
    with torch.no_grad():
        assert torch.equal(loaded.encode_video(tiny_frames), model.encode_video(tiny_frames))


@pytest.mark.parametrize("arch, names", [("xclip-msg", ["message attention, CLIP layer 0", "MIT layer 0"]),
                                         ("tdb", ["TDB difference attention", "TDB transformer layer 0"])])
def test_capture_records_attention_over_frame_tokens(arch, names, tiny_frames):
    model = tiny(arch=arch)
    frames = tiny_frames[:, :4]
    with torch.no_grad():
        ref = model.encode_video(frames)
        with capture_attention(model) as att:
            out = model.encode_video(frames)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    assert set(names) <= set(att.frame_token_names) and len(att.frame_tokens) == len(att.frame_token_names)
    s = 4 if arch == "xclip-msg" else 2 * 4 - 1
    last = att.frame_tokens[-1]
    assert last.shape[0] == 2 and last.shape[-2:] == (s, s)
    torch.testing.assert_close(last.sum(-1), torch.ones_like(last.sum(-1)))
    assert att.clip_spatial[0].shape[-1] == 1 + 8 * 8  # CLIP maps keep their 1+L layout
    torch.testing.assert_close(att.clip_spatial[0].sum(-1), torch.ones_like(att.clip_spatial[0].sum(-1)))
    if arch == "xclip-msg":
        assert len(att.message_weight) == 4 and att.message_weight[0].shape == (2, 4, 4, 65)
        assert ((att.message_weight[0] > 0) & (att.message_weight[0] < 1)).all()
    assert att.sample(1).frame_tokens[-1].shape[0] == 1


@pytest.mark.parametrize("row", ["tdb", "st-adapter", "xclip-msg", "levels-3-4", "levels-2-4", "levels-1-2"])
def test_experiment_rows_build(row):
    model = build_model(row, replace(QUICK, pretrained="none"))
    kwargs = ROWS[row][1]
    assert model.config.arch == kwargs.get("arch", "branch")
    if "levels" in kwargs:
        assert model.config.levels == kwargs["levels"] and model.config.depth == 2


def test_flops_structure_rows_against_the_papers():
    rows = {r["name"]: r for r in structures_table("ViT-B-16", 8)}
    assert set(rows) == {name for _, name, _, _, _ in STRUCTURES}
    for name, r in rows.items():
        assert r["gmacs"] > 130 and r["total"] > r["branch"] >= 0, name
        if r["paper_gflops"]:  # the papers' own figures: ours within 2% (X-CLIP: with its text-side prompts)
            ours = r[r["paper_column"]] + r["not_built_gmacs"]
            assert abs(ours - r["paper_gflops"]) / r["paper_gflops"] < 0.02, (name, ours, r["paper_gflops"])
    assert rows["ST-Adapter"]["branch"] == pytest.approx(7.1e6, rel=0.01)  # 12 adapters of r = 384
    assert rows["TDB (CLIP2Video)"]["gmacs"] < rows["ST-Adapter"]["gmacs"] < rows["STAN-self K=4"]["gmacs"]


def test_export_official_flags_chosen_levels_and_load_official_rebuilds_them(tmp_path, tiny_frames):
    from stanlib import weights as W

    model = tiny(levels=(1, 3))
    make_temporal_nonzero(model)
    with pytest.warns(UserWarning, match="levels"):  # the authors' code would read the last K layers
        path = W.export_official(model, tmp_path / "l.pth")
    loaded = W.load_official(path)
    assert loaded.config.levels == (1, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_video(tiny_frames), model.encode_video(tiny_frames), rtol=0, atol=0)
