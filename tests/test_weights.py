"""Weights: HF CLIP key map, the authors' mmengine layout, stanlib's own format, convert CLI."""
from __future__ import annotations

import json
import logging
import shutil
import time
import warnings

import open_clip
import pytest
import torch

import stanlib
from stanlib import weights as W


@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")  # test-only dependency (the `dev` extra)

# --------------------------------------------------------------------------------------------------
# helpers


def _hf_clip(transformers, vision: dict, text: dict, projection_dim: int, act: str = "quick_gelu"):
    """A random transformers.CLIPModel; eos = the largest id so HF and open_clip pool the same token."""
    vocab = text["vocab_size"]
    cfg = transformers.CLIPConfig(
        text_config=dict(text, hidden_act=act, eos_token_id=vocab - 1, bos_token_id=vocab - 2, pad_token_id=0),
        vision_config=dict(vision, hidden_act=act), projection_dim=projection_dim)
    torch.manual_seed(0)
    return transformers.CLIPModel(cfg).eval()


def _tokens(vocab: int, context: int, lengths=(5, 9, 3)) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    tok = torch.zeros(len(lengths), context, dtype=torch.long)
    for row, n in enumerate(lengths):  # <sot> words <eot> then zero padding
        tok[row, 0] = vocab - 2
        tok[row, 1:n] = torch.randint(1, vocab - 2, (n - 1,), generator=g)
        tok[row, n] = vocab - 1
    return tok


def _features(out) -> torch.Tensor:
    # transformers >= 5 returns an output object, older versions a tensor
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _perturbed_tiny(temporal="attn", depth=2, **kwargs) -> stanlib.STANModel:
    """stan-tiny whose branch is not at its identity init (zero temporal_fc would hide errors)."""
    model = stanlib.create_model(clip="stan-tiny", temporal=temporal, depth=depth, **kwargs).eval()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def video_and_tokens():
    g = torch.Generator().manual_seed(1)
    frames = torch.randn(1, 3, 3, 64, 64, generator=g)  # 1 video, 3 frames: small but temporal
    return frames, torch.tensor([[126, 5, 60, 127] + [0] * 12, [126, 30, 127] + [0] * 13])


# --------------------------------------------------------------------------------------------------
# 1. Hugging Face CLIP <-> open_clip


def test_hf_map_gives_same_embeddings_and_inverts_exactly(transformers):
    vision = dict(hidden_size=32, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  image_size=32, patch_size=8)
    text = dict(hidden_size=24, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                vocab_size=50, max_position_embeddings=12)
    hf = _hf_clip(transformers, vision, text, projection_dim=16)
    oc = open_clip.CLIP(16, dict(image_size=32, patch_size=8, width=32, layers=2, head_width=8),
                        dict(context_length=12, vocab_size=50, width=24, heads=4, layers=2), quick_gelu=True).eval()
    result = oc.load_state_dict(W.hf_to_open_clip(hf.state_dict()), strict=True)
    assert not result.missing_keys and not result.unexpected_keys

    images, tokens = torch.randn(3, 3, 32, 32), _tokens(50, 12)
    with torch.no_grad():
        img_hf, img_oc = _features(hf.get_image_features(pixel_values=images)), oc.encode_image(images)
        txt_hf, txt_oc = _features(hf.get_text_features(input_ids=tokens)), oc.encode_text(tokens)
    assert img_oc.shape == (3, 16) and txt_oc.shape == (3, 16)
    assert (img_hf - img_oc).abs().max() < 1e-5
    assert (txt_hf - txt_oc).abs().max() < 1e-5
    assert (txt_oc[0] - txt_oc[1]).abs().max() > 1e-3  # non-degenerate: different inputs differ

    back = W.open_clip_to_hf(W.hf_to_open_clip(hf.state_dict()))
    ref = hf.state_dict()
    assert back.keys() == ref.keys()
    assert all(torch.equal(back[k], ref[k]) for k in ref)


def test_hf_map_lists_unknown_and_incomplete_keys():
    oc_sd = open_clip.create_model("stan-tiny").state_dict()
    hf_sd = W.open_clip_to_hf(oc_sd)
    assert "vision_model.encoder.layers.3.self_attn.v_proj.bias" in hf_sd
    assert hf_sd["visual_projection.weight"].shape == oc_sd["visual.proj"].t().shape

    extra = dict(hf_sd, **{"vision_model.extra_head.weight": torch.zeros(2)})
    with pytest.raises(KeyError, match="vision_model.extra_head.weight"):
        W.hf_to_open_clip(extra)
    no_v = {k: v for k, v in hf_sd.items() if k != "text_model.encoder.layers.1.self_attn.v_proj.weight"}
    with pytest.raises(KeyError, match=r"transformer.resblocks.1.attn.in_proj_weight.*\['v'\]"):
        W.hf_to_open_clip(no_v)
    # old transformers files carry position_ids buffers: skipped only when they are arange
    ok = dict(hf_sd, **{"text_model.embeddings.position_ids": torch.arange(16)[None]})
    assert W.hf_to_open_clip(ok).keys() == oc_sd.keys()
    with pytest.raises(ValueError, match="position_ids"):
        W.hf_to_open_clip(dict(hf_sd, **{"text_model.embeddings.position_ids": torch.arange(16).flip(0)}))


def _tiny_shaped_hf(transformers, tmp_path, act="quick_gelu"):
    """An HF CLIP folder with stan-tiny's shapes (64 px, patch 8, width 128, 4+3 layers, 4 heads)."""
    vision = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                  image_size=64, patch_size=8)
    text = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=3, num_attention_heads=4,
                vocab_size=128, max_position_embeddings=16)
    hf = _hf_clip(transformers, vision, text, projection_dim=128, act=act)
    folder = tmp_path / f"hf-{act}"
    hf.save_pretrained(folder)
    return hf, folder


def test_local_hf_folder_builds_matching_open_clip(transformers, tmp_path):
    hf, folder = _tiny_shaped_hf(transformers, tmp_path)
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert W.is_hf_clip_folder(folder)
    clip = W.create_clip_from_hf_folder(folder)  # config name inferred from the shapes
    assert W.infer_clip_name(clip.state_dict()) == "stan-tiny"
    images, tokens = torch.randn(2, 3, 64, 64), _tokens(128, 16, lengths=(4, 7))
    with torch.no_grad():
        assert (_features(hf.get_image_features(pixel_values=images)) - clip.encode_image(images)).abs().max() < 1e-5
        assert (_features(hf.get_text_features(input_ids=tokens)) - clip.encode_text(tokens)).abs().max() < 1e-5

    with pytest.raises(ValueError, match="shapes of 'stan-tiny', not of 'ViT-B-32'"):
        W.create_clip_from_hf_folder(folder, name="ViT-B-32")
    with pytest.raises(ValueError, match="contradicts"):
        W.create_clip_from_hf_folder(folder, quick_gelu=False)
    _, gelu_folder = _tiny_shaped_hf(transformers, tmp_path, act="gelu")  # stan-tiny's config forces QuickGELU
    with pytest.raises(ValueError, match="forces quick_gelu"):
        W.create_clip_from_hf_folder(gelu_folder)


# --------------------------------------------------------------------------------------------------
# 2. the authors' mmengine layout


def test_export_official_uses_the_authors_key_names(tmp_path):
    model = _perturbed_tiny(depth=2)
    ckpt = torch.load(W.export_official(model, tmp_path / "stan.pth"), weights_only=True)
    assert set(ckpt) == {"meta", "state_dict"}
    sd = ckpt["state_dict"]
    assert all(k.startswith(("backbone.", "text_backbone.")) for k in sd)
    for key in ["backbone.class_embedding", "backbone.patch_embedding.weight", "backbone.position_embedding.weight",
                "backbone.pre_layrnorm.bias", "backbone.post_layernorm.weight", "backbone.visual_projection.weight",
                "backbone.layers.3.self_attn.q_proj.weight", "backbone.layers.0.mlp.fc2.bias",
                "backbone.STAN_S_layers.1.self_attn.k_proj.bias", "backbone.STAN_S_layers.0.layer_norm2.weight",
                "backbone.STAN_S_layers.1.mlp.fc1.weight", "backbone.STAN_T_layers.0.self_attn.out_proj.weight",
                "backbone.STAN_T_layers.1.layer_norm1.bias", "backbone.STAN_T_layers.1.temporal_fc.weight",
                "text_backbone.text_model.embeddings.token_embedding.weight",
                "text_backbone.text_model.encoder.layers.2.self_attn.v_proj.weight",
                "text_backbone.text_model.final_layer_norm.weight", "text_backbone.text_projection.weight"]:
        assert key in sd, key
    assert not any(k.startswith("backbone.STAN_T_layers.2") for k in sd)  # depth K = 2
    assert sd["backbone.STAN_time_embed.weight"].shape == (64, 128)
    in_proj = model.branch.spatial[1].attn.in_proj_weight.detach()
    assert torch.equal(sd["backbone.STAN_S_layers.1.self_attn.k_proj.weight"], in_proj[128:256])
    assert torch.equal(sd["backbone.visual_projection.weight"], model.clip.visual.proj.detach().t())
    # the STAN branch's T-layer has no MLP and no second norm (released design)
    assert not any(k.startswith("backbone.STAN_T_layers.0.mlp") for k in sd)


@pytest.mark.parametrize("temporal, kwargs", [
    ("attn", {}), ("conv", {}), ("conv", {"conv_variant": "bottleneck"}), (None, {}),
    ("attn", {"learnable_logit_scale": True, "logit_scale": 50.0}), ("attn", {"spatial": False}),
    ("conv", {"spatial_mlp": False}), ("attn", {"fusion_proj": True, "pos_embed": "new"}),
])
def test_official_roundtrip_infers_architecture_from_keys(tmp_path, video_and_tokens, temporal, kwargs):
    frames, tokens = video_and_tokens
    model = _perturbed_tiny(temporal=temporal, depth=2, **kwargs)
    with warnings.catch_warnings():  # non-released variants warn (tested below)
        warnings.simplefilter("ignore")
        ckpt = torch.load(W.export_official(model, tmp_path / "a.pth"), weights_only=True)
    # as the authors would ship it: no stanlib meta, DDP's "module." prefix, no wrapper
    torch.save({"module." + k: v for k, v in ckpt["state_dict"].items()}, tmp_path / "bare.pth")
    with_meta = W.load_official(tmp_path / "a.pth")
    assert W.portable_config(with_meta) == W.portable_config(model)
    bare = W.load_official(tmp_path / "bare.pth")  # architecture inferred from the keys alone
    c = bare.config
    assert (c.clip, c.temporal, c.depth, c.conv_variant) == ("stan-tiny", temporal, 2,
                                                            kwargs.get("conv_variant", "dense"))
    assert c.learnable_logit_scale == kwargs.get("learnable_logit_scale", False)
    assert (c.spatial, c.spatial_mlp) == (kwargs.get("spatial", True), kwargs.get("spatial_mlp", True))
    assert (c.fusion_proj, c.pos_embed) == (kwargs.get("fusion_proj", False), kwargs.get("pos_embed", "clip"))
    ref = model.state_dict()
    for loaded in (with_meta, bare):
        got = loaded.state_dict()
        # open_clip's own logit_scale (unused by STANModel) has no slot in the authors' layout: meta keeps it
        same = [k for k in ref if k != "clip.logit_scale" or loaded is with_meta]
        assert got.keys() == ref.keys() and all(torch.equal(got[k], ref[k]) for k in same)
    with torch.no_grad():
        assert torch.equal(model(frames, tokens), bare(frames, tokens))


def test_official_clip_only_checkpoint_is_mean_pooling(tmp_path, video_and_tokens):
    frames, tokens = video_and_tokens
    model = _perturbed_tiny(temporal=None, spatial=False)
    assert model.config.arch == "meanpool"
    # meanpool has no branch (export_official refuses it): write the authors' CLIP-baseline layout by hand
    sd = W.OFFICIAL.to_theirs({k: v for k, v in model.state_dict().items() if k != "clip.logit_scale"})
    torch.save({"meta": {"epoch": 20}, "state_dict": sd}, tmp_path / "clip.pth")
    loaded = W.load_official(tmp_path / "clip.pth")
    assert loaded.config.arch == "meanpool" and loaded.branch is None
    with torch.no_grad():
        assert torch.equal(model(frames, tokens), loaded(frames, tokens))


def test_official_missing_or_extra_key_is_an_error_that_names_it(tmp_path, caplog):
    sd = torch.load(W.export_official(_perturbed_tiny(), tmp_path / "a.pth"), weights_only=True)["state_dict"]
    missing = {k: v for k, v in sd.items() if k != "backbone.STAN_T_layers.1.temporal_fc.bias"}
    torch.save({"state_dict": missing}, tmp_path / "missing.pth")
    with pytest.raises(KeyError, match=r"missing 1 key\(s\): branch.temporal.1.temporal_fc.bias"):
        W.load_official(tmp_path / "missing.pth")

    extra = dict(sd, **{"cls_head.fc.weight": torch.zeros(3, 3)})
    torch.save({"state_dict": extra}, tmp_path / "extra.pth")
    with pytest.raises(KeyError, match="cls_head.fc.weight"):
        W.load_official(tmp_path / "extra.pth")
    with caplog.at_level(logging.WARNING, logger="stanlib.weights"):  # explicit, logged opt-out
        W.load_official(tmp_path / "extra.pth", ignore_keys=[r"cls_head\..*"])
    assert "cls_head.fc.weight" in caplog.text

    bad_shape = dict(sd, **{"backbone.STAN_time_embed.weight": torch.zeros(32, 128)})
    torch.save({"state_dict": bad_shape}, tmp_path / "shape.pth")
    with pytest.raises(KeyError, match=r"branch.time_embed.weight: \(32, 128\) vs model \(64, 128\)"):
        W.load_official(tmp_path / "shape.pth")


_CALLED = []


def _side_effect(*args):  # what a malicious pickle would run
    _CALLED.append(args)
    return args


class _LoggingState:
    """Stands for mmengine's message_hub objects: not allowed by weights_only."""

    def __reduce__(self):
        return (_side_effect, ("pwned",))


def test_mmengine_extras_are_read_without_running_pickled_code(tmp_path):
    model = _perturbed_tiny()
    sd = torch.load(W.export_official(model, tmp_path / "a.pth"), weights_only=True)["state_dict"]
    torch.save({"meta": {"epoch": 5}, "state_dict": sd, "message_hub": {"log_scalars": {"loss": _LoggingState()}}},
               tmp_path / "mm.pth")
    with pytest.raises(Exception):  # plain weights_only refuses it ...
        torch.load(tmp_path / "mm.pth", weights_only=True)
    with pytest.warns(UserWarning, match="_side_effect"):
        obj = W.read_checkpoint(tmp_path / "mm.pth")  # ... we read it, with placeholders
    assert _CALLED == []
    assert isinstance(obj["message_hub"]["log_scalars"]["loss"], W.Placeholder)
    with pytest.warns(UserWarning):
        loaded = W.load_official(tmp_path / "mm.pth")
    assert _CALLED == []
    assert torch.equal(loaded.branch.time_embed.weight, model.branch.time_embed.weight)


def test_export_refuses_other_archs_and_flags_unreleased_variants(tmp_path):
    with pytest.raises(ValueError, match="arch='posterior'"):
        W.export_official(stanlib.create_model(clip="stan-tiny", depth=2, arch="posterior"), tmp_path / "p.pth")
    with pytest.warns(UserWarning, match="fusion_proj"):
        path = W.export_official(stanlib.create_model(clip="stan-tiny", depth=2, fusion_proj=True), tmp_path / "f.pth")
    assert "backbone.STAN_fusion.0.weight" in torch.load(path, weights_only=True)["state_dict"]


# --------------------------------------------------------------------------------------------------
# 3. stanlib's own format


def test_save_pretrained_from_pretrained_roundtrip_exact(tmp_path, video_and_tokens):
    frames, tokens = video_and_tokens
    model = _perturbed_tiny(temporal="attn", depth=2, num_frames=8, logit_scale=50.0)
    folder = W.save_pretrained(model, tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["pretrained"] is None and config["quick_gelu"] is True and config["num_frames"] == 8

    loaded = W.from_pretrained(folder)
    assert loaded.config == model.config.__class__(**config)
    ref, got = model.state_dict(), loaded.state_dict()
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)
    with torch.no_grad():
        assert torch.equal(model(frames, tokens), loaded(frames, tokens))
    assert stanlib.from_pretrained is W.from_pretrained  # public, lazily exported name


def test_save_pretrained_half_precision(tmp_path):
    """dtype=float16: half the bytes, loads back as float32 equal to the fp16-rounded weights."""
    from safetensors import safe_open

    model = _perturbed_tiny(temporal="attn", depth=2)
    full, half = W.save_pretrained(model, tmp_path / "f32"), W.save_pretrained(model, tmp_path / "f16", torch.float16)
    size = lambda d: (d / "model.safetensors").stat().st_size  # noqa: E731
    assert size(half) < 0.52 * size(full)
    with safe_open(str(half / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    loaded = W.from_pretrained(half)
    for k, v in model.state_dict().items():
        got = loaded.state_dict()[k]
        assert got.dtype == v.dtype and torch.equal(got, v.to(torch.float16).to(v.dtype)), k


def test_from_pretrained_is_strict_and_explains(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = W.save_pretrained(_perturbed_tiny(), tmp_path / "m")
    sd = load_file(folder / "model.safetensors")
    save_file(dict(sd, extra=torch.zeros(1)), folder / "model.safetensors")
    with pytest.raises(KeyError, match="unexpected 1 key.*extra"):
        W.from_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(config, warp_drive=True)))
    with pytest.raises(ValueError, match="warp_drive"):
        W.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        W.from_pretrained(tmp_path / "nowhere" / "deeper")
    with pytest.raises(NotADirectoryError, match="load_official"):
        W.from_pretrained(folder / "config.json")


def test_hub_repo_id_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(OSError, match="HF_HUB_OFFLINE"):
        W.from_pretrained("nobody-here/stan-not-cached")
    assert time.perf_counter() - start < 20


def test_push_to_hub_uploads_a_loadable_folder(tmp_path, monkeypatch):
    import huggingface_hub

    calls = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls["create"] = (repo_id, exist_ok)

        def upload_folder(self, repo_id, folder_path, commit_message, revision=None):
            shutil.copytree(folder_path, tmp_path / "uploaded")
            return "commit-url"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    model = _perturbed_tiny()
    assert W.push_to_hub(model, "me/stan-tiny", token="t") == "commit-url"
    assert calls["create"] == ("me/stan-tiny", True) and calls["token"] == "t"
    assert (tmp_path / "uploaded" / "README.md").is_file()
    loaded = W.from_pretrained(tmp_path / "uploaded")
    assert torch.equal(loaded.branch.time_embed.weight, model.branch.time_embed.weight)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="HF_HUB_OFFLINE"):
        W.push_to_hub(model, "me/stan-tiny")


# --------------------------------------------------------------------------------------------------
# 4. command line


def test_convert_cli_roundtrip(tmp_path, capsys):
    from stanlib.cli import main

    model = _perturbed_tiny(depth=2)
    original = torch.load(W.export_official(model, tmp_path / "a.pth"), weights_only=True)["state_dict"]
    assert main(["convert", "official", str(tmp_path / "a.pth"), str(tmp_path / "ours"), "--num-frames", "8"]) == 0
    assert "clip=stan-tiny arch=branch temporal=attn depth=2" in capsys.readouterr().out
    assert W.from_pretrained(tmp_path / "ours").config.num_frames == 8
    assert main(["convert", "to-official", str(tmp_path / "ours"), str(tmp_path / "b.pth")]) == 0
    again = torch.load(tmp_path / "b.pth", weights_only=True)["state_dict"]
    assert again.keys() == original.keys() and all(torch.equal(again[k], original[k]) for k in original)
    assert main(["convert", "official", str(tmp_path / "missing.pth"), str(tmp_path / "x")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err


def test_convert_cli_hf_clip(transformers, tmp_path):
    _, folder = _tiny_shaped_hf(transformers, tmp_path)
    assert W.cli_main(["hf-clip", str(folder), str(tmp_path / "clip.safetensors")]) == 0
    model = stanlib.create_model(clip="stan-tiny", pretrained=str(tmp_path / "clip.safetensors"), depth=2)
    reference = W.create_clip_from_hf_folder(folder)
    assert torch.equal(model.clip.visual.proj, reference.visual.proj)
