"""Key tables: which of our parameter names matches which of theirs, and how the tensor changes.

One :class:`KeyTable` per foreign layout, read in both directions (import and export cannot drift):
Hugging Face CLIP <-> open_clip (:data:`HF_CLIP`), the authors' mmengine layout <-> STANModel
(:data:`OFFICIAL`, docs/architecture.md section 9). Also: matching a CLIP state dict or a Hugging
Face config to a registered open_clip config, and reading a local Hugging Face CLIP folder.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import torch

from stanlib.weights.io import CONFIG_NAME, WEIGHTS_NAME, TensorDict, _preview, _unwrap_state_dict, read_checkpoint

log = logging.getLogger("stanlib.weights")

# placeholders usable in rule patterns -> what they match
_SLOTS = {"i": r"\d+", "p": r"weight|bias", "qkv": r"q|k|v"}


@dataclass(frozen=True)
class Rule:
    """One line of a key table: ``ours`` <-> ``theirs``, with placeholders ``{i}`` (a layer
    index), ``{p}`` (``weight``/``bias``) and, on their side of a ``"qkv"`` rule, ``{qkv}``.

    ``how``: ``"copy"``; ``"transpose"`` (a 2-D matrix, e.g. projections); ``"qkv"`` (our one
    ``in_proj`` tensor is their ``q``, ``k``, ``v`` tensors stacked along dim 0).
    """

    ours: str
    theirs: str
    how: str = "copy"


def _compile(pattern: str) -> re.Pattern:
    regex = re.escape(pattern)
    for slot, alternatives in _SLOTS.items():
        regex = regex.replace(re.escape("{" + slot + "}"), f"(?P<{slot}>{alternatives})")
    return re.compile(regex)


def _prefixed(rules: Iterable[Rule], ours: str, theirs: str) -> list[Rule]:
    return [Rule(ours + r.ours, theirs + r.theirs, r.how) for r in rules]


class KeyTable:
    """A list of :class:`Rule` read in both directions.

    ``to_theirs(sd)`` renames (and reshapes) a state dict in our names into their names;
    ``to_ours(sd)`` is the exact inverse. A key that no rule matches is an error that lists it:
    weights are never dropped silently. ``ignore`` holds regexes of *their* keys that carry no
    weights (e.g. Hugging Face's ``position_ids`` buffers, which must equal ``arange``).
    """

    def __init__(self, name: str, rules: Sequence[Rule], ignore: Sequence[str] = ()):
        self.name = name
        self.rules = list(rules)
        self._ours = [(_compile(r.ours), r) for r in self.rules]
        self._theirs = [(_compile(r.theirs), r) for r in self.rules]
        self._ignore = [re.compile(p) for p in ignore]

    @staticmethod
    def _match(table, key: str):
        for regex, rule in table:
            m = regex.fullmatch(key)
            if m:
                return rule, m.groupdict()
        return None, None

    def to_theirs(self, sd: Mapping[str, torch.Tensor]) -> TensorDict:
        out: TensorDict = {}
        unmatched = []
        for key, value in sd.items():
            rule, slots = self._match(self._ours, key)
            if rule is None:
                unmatched.append(key)
            elif rule.how == "qkv":
                for name, part in zip("qkv", value.chunk(3, dim=0)):
                    out[rule.theirs.format(qkv=name, **slots)] = part.clone()  # no shared storage
            else:
                out[rule.theirs.format(**slots)] = _transpose(key, value) if rule.how == "transpose" else value
        if unmatched:
            raise KeyError(f"{len(unmatched)} key(s) have no place in the {self.name} layout: "
                           f"{_preview(unmatched)}")
        return out

    def to_ours(self, sd: Mapping[str, torch.Tensor]) -> TensorDict:
        out: TensorDict = {}
        qkv: dict[str, dict[str, torch.Tensor]] = {}
        unmatched = []
        for key, value in sd.items():
            if any(p.fullmatch(key) for p in self._ignore):
                _check_position_ids(key, value)
                continue
            rule, slots = self._match(self._theirs, key)
            if rule is None:
                unmatched.append(key)
                continue
            part = slots.pop("qkv", None)
            ours = rule.ours.format(**slots)
            if rule.how == "qkv":
                qkv.setdefault(ours, {})[part] = value
            else:
                out[ours] = _transpose(key, value) if rule.how == "transpose" else value
        if unmatched:
            raise KeyError(f"{len(unmatched)} key(s) are not part of the {self.name} layout: "
                           f"{_preview(unmatched)}")
        for ours, parts in qkv.items():
            missing = [p for p in "qkv" if p not in parts]
            if missing:
                raise KeyError(f"{self.name}: {ours} needs q, k and v projections; missing {missing}")
            out[ours] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
        return out


def _transpose(key: str, value: torch.Tensor) -> torch.Tensor:
    if value.ndim != 2:
        raise ValueError(f"{key}: expected a 2-D projection matrix, got shape {tuple(value.shape)}")
    return value.t().contiguous()


def _check_position_ids(key: str, value: torch.Tensor) -> None:
    """Old ``transformers`` versions saved ``position_ids`` (= arange): safe to skip only if so."""
    flat = value.reshape(-1)
    if not torch.equal(flat.long(), torch.arange(flat.numel())):
        raise ValueError(f"{key} is not arange({flat.numel()}): custom position ids are not supported")


# one transformer block, relative names (open_clip ResidualAttentionBlock <-> HF CLIPEncoderLayer)
CLIP_BLOCK = [
    Rule("ln_1.{p}", "layer_norm1.{p}"),
    Rule("attn.in_proj_{p}", "self_attn.{qkv}_proj.{p}", "qkv"),
    Rule("attn.out_proj.{p}", "self_attn.out_proj.{p}"),
    Rule("ln_2.{p}", "layer_norm2.{p}"),
    Rule("mlp.c_fc.{p}", "mlp.fc1.{p}"),
    Rule("mlp.c_proj.{p}", "mlp.fc2.{p}"),
]


CLIP_VISION = [
    Rule("visual.class_embedding", "vision_model.embeddings.class_embedding"),
    Rule("visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"),
    Rule("visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"),
    Rule("visual.ln_pre.{p}", "vision_model.pre_layrnorm.{p}"),  # sic: Hugging Face's spelling
    *_prefixed(CLIP_BLOCK, "visual.transformer.resblocks.{i}.", "vision_model.encoder.layers.{i}."),
    Rule("visual.ln_post.{p}", "vision_model.post_layernorm.{p}"),
    Rule("visual.proj", "visual_projection.weight", "transpose"),
]


CLIP_TEXT = [
    Rule("token_embedding.weight", "text_model.embeddings.token_embedding.weight"),
    Rule("positional_embedding", "text_model.embeddings.position_embedding.weight"),
    *_prefixed(CLIP_BLOCK, "transformer.resblocks.{i}.", "text_model.encoder.layers.{i}."),
    Rule("ln_final.{p}", "text_model.final_layer_norm.{p}"),
    Rule("text_projection", "text_projection.weight", "transpose"),
]


HF_CLIP = KeyTable("Hugging Face CLIP", [*CLIP_VISION, *CLIP_TEXT, Rule("logit_scale", "logit_scale")],
                   ignore=[r"(vision|text)_model\.embeddings\.position_ids"])


def hf_to_open_clip(sd: Mapping[str, torch.Tensor]) -> TensorDict:
    """A ``transformers.CLIPModel`` state dict -> open_clip names (q/k/v joined, projections transposed)."""
    return HF_CLIP.to_ours(sd)


def open_clip_to_hf(sd: Mapping[str, torch.Tensor]) -> TensorDict:
    """An open_clip CLIP state dict -> ``transformers.CLIPModel`` names (exact inverse of :func:`hf_to_open_clip`)."""
    return HF_CLIP.to_theirs(sd)


def _authors_name(hf: str) -> str:
    """Their model keeps Hugging Face's CLIP submodules under new roots; re-root an HF name."""
    roots = (("vision_model.embeddings.", "backbone."), ("vision_model.encoder.", "backbone."),
             ("vision_model.", "backbone."), ("visual_projection.", "backbone.visual_projection."),
             ("text_model.", "text_backbone.text_model."), ("text_projection.", "text_backbone.text_projection."))
    for old, new in roots:
        if hf.startswith(old):
            return new + hf[len(old):]
    raise ValueError(f"no authors' name for {hf!r}")


STAN_BRANCH = [
    Rule("branch.time_embed.weight", "backbone.STAN_time_embed.weight"),
    # intra-frame module: a copied CLIP block, Hugging Face layer names
    *_prefixed(CLIP_BLOCK, "branch.spatial.{i}.", "backbone.STAN_S_layers.{i}."),
    # cross-frame attention: the attention half of a CLIP block + the zero-initialised temporal_fc
    *_prefixed(CLIP_BLOCK[:3], "branch.temporal.{i}.", "backbone.STAN_T_layers.{i}."),
    Rule("branch.temporal.{i}.temporal_fc.{p}", "backbone.STAN_T_layers.{i}.temporal_fc.{p}"),
    # cross-frame convolution: the authors' original code (CLIPLayer_ConvTime) stores its Conv3d as
    # `layers`: STAN_T_layers.{k}.layers (+ .temporal_fc, the "dense" variant). The "bottleneck"
    # variant of the paper's Eq. 9 adds stanlib's .down / .up around it.
    Rule("branch.temporal.{i}.conv.{p}", "backbone.STAN_T_layers.{i}.layers.{p}"),
    Rule("branch.temporal.{i}.down.{p}", "backbone.STAN_T_layers.{i}.down.{p}"),
    Rule("branch.temporal.{i}.up.{p}", "backbone.STAN_T_layers.{i}.up.{p}"),
    # switches the authors never trained (paper-text variants, ablations): stanlib's names, chosen
    # like theirs (their code has a commented-out `STAN_pos_embed = nn.Embedding(1 + L, D)`)
    Rule("branch.pos", "backbone.STAN_pos_embed.weight"),          # pos_embed="new"
    Rule("branch.fusion.{i}.{p}", "backbone.STAN_fusion.{i}.{p}"),  # fusion_proj=True (W_proj^k, k>0)
    Rule("branch.readout.{p}", "backbone.STAN_readout.{p}"),        # spatial=False (no intra-frame)
    # a learnable temperature is stored by the authors as `tau`, with logit scale = tau.exp()
    Rule("log_logit_scale", "tau"),
]


OFFICIAL = KeyTable(
    "authors' STAN (mmengine)",
    [Rule("clip." + r.ours, _authors_name(r.theirs), r.how) for r in CLIP_VISION + CLIP_TEXT] + STAN_BRANCH,
    ignore=[r"text_backbone\.text_model\.embeddings\.position_ids"])


# open_clip's own temperature: STANModel never uses it (it has config.logit_scale), and the
# authors' layout has no slot for it; export keeps its value in the checkpoint's meta instead.
_CLIP_LOGIT_SCALE = "clip.logit_scale"


# Other names for the same tensors, renamed before the key table is read (import only; export
# writes the table's names): the original code's first names (`timesFPN_*`), and the conv name
# `.conv.` that stanlib used before it matched the authors' `.layers.`.
OFFICIAL_ALIASES = [
    (re.compile(r"(^|\.)timesFPN_(S_layers|T_layers|time_embed)(?=\.|$)"), r"\1STAN_\2"),
    (re.compile(r"(^|\.)(STAN_T_layers\.\d+)\.conv\.(weight|bias)$"), r"\1\2.layers.\3"),
]


# tensors of the original code that its forward pass never uses: skipped with a note
OFFICIAL_UNUSED = re.compile(r"(.*\.)?timesFPN_(pos_embed|cls_token)(\..*)?")


def official_aliases(sd: Mapping[str, torch.Tensor], path: str | os.PathLike = "checkpoint") -> TensorDict:
    """Rename the older spellings of the authors' keys (:data:`OFFICIAL_ALIASES`) to the current
    ones and drop the tensors their code never uses (``timesFPN_pos_embed``, ``timesFPN_cls_token``),
    with a warning that names them."""
    out: TensorDict = {}
    unused = []
    for key, value in sd.items():
        if OFFICIAL_UNUSED.fullmatch(key):
            unused.append(key)
            continue
        for pattern, replacement in OFFICIAL_ALIASES:
            key = pattern.sub(replacement, key)
        if key in out:
            raise KeyError(f"{path}: {key} appears under two names (an old and a new spelling); keep one")
        out[key] = value
    if unused:
        warnings.warn(f"{path}: skipped {len(unused)} tensor(s) that the authors' code never uses: "
                      f"{_preview(unused, 6)}", stacklevel=3)
    return out


def _layer_ids(sd: Mapping[str, Any], prefix: str) -> list[int]:
    ids = {int(m.group(1)) for k in sd for m in [re.match(re.escape(prefix) + r"(\d+)\.", k)] if m}
    return sorted(ids)


# the OpenAI-CLIP family: configs made of these keys only have exactly HF CLIPModel's structure
_PLAIN_KEYS = {"top": {"embed_dim", "vision_cfg", "text_cfg", "quick_gelu"},
               "vision_cfg": {"image_size", "layers", "width", "head_width", "patch_size", "mlp_ratio"},
               "text_cfg": {"context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio"}}


_PREFERRED = ("ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336", "stan-tiny")


def _n_blocks(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    return len(_layer_ids(sd, prefix))


def clip_signature(sd: Mapping[str, torch.Tensor], where: str = "state dict") -> dict:
    """Shape facts of an open_clip CLIP state dict (everything but the head counts)."""
    need = ["visual.class_embedding", "visual.conv1.weight", "visual.positional_embedding", "visual.proj",
            "token_embedding.weight", "positional_embedding",
            "visual.transformer.resblocks.0.mlp.c_fc.weight", "transformer.resblocks.0.mlp.c_fc.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise KeyError(f"{where}: not a full CLIP (vision + text) state dict, missing {missing}")
    patch = sd["visual.conv1.weight"].shape[-1]
    grid = sd["visual.positional_embedding"].shape[0] - 1
    side = math.isqrt(grid)
    if side * side != grid:
        raise ValueError(f"{where}: {grid} patch positions is not a square grid")
    return {
        "embed_dim": sd["visual.proj"].shape[1],
        "vision": (side * patch, patch, sd["visual.class_embedding"].shape[0],
                   _n_blocks(sd, "visual.transformer.resblocks."),
                   sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
        "text": (*sd["positional_embedding"].shape[:1], *sd["token_embedding.weight"].shape,
                 _n_blocks(sd, "transformer.resblocks."), sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
    }


def _config_signature(cfg: Mapping) -> Optional[dict]:
    """Same facts from an open_clip config dict; None if it is not a plain OpenAI-style CLIP."""
    v, t = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    if not (set(cfg) <= _PLAIN_KEYS["top"] and set(v) <= _PLAIN_KEYS["vision_cfg"]
            and set(t) <= _PLAIN_KEYS["text_cfg"]) or not isinstance(v.get("layers"), int):
        return None
    size = v.get("image_size", 224)
    if isinstance(size, (list, tuple)):
        if size[0] != size[1]:
            return None
        size = size[0]
    vw, tw = v.get("width", 768), t.get("width", 512)
    return {
        "embed_dim": cfg["embed_dim"],
        "vision": (size, v.get("patch_size", 16), vw, v["layers"], int(vw * v.get("mlp_ratio", 4.0))),
        "text": (t.get("context_length", 77), t.get("vocab_size", 49408), tw, t.get("layers", 12),
                 int(tw * t.get("mlp_ratio", 4.0))),
    }


def _heads(cfg: Mapping) -> tuple[int, int]:
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    return v.get("width", 768) // v.get("head_width", 64), t.get("heads", 8)


def infer_clip_name(sd: Mapping[str, torch.Tensor], where: str = "state dict") -> str:
    """The registered open_clip config whose shapes match this CLIP state dict (open_clip names).

    Head counts leave no trace in the shapes; they come from the matched config. Among configs of
    identical shapes, ``-quickgelu`` twins are skipped (the activation is a separate switch).
    """
    import open_clip

    sig = clip_signature(sd, where)
    names = [n for n in open_clip.list_models()
             if not n.endswith("-quickgelu") and _config_signature(open_clip.get_model_config(n) or {}) == sig]
    if not names:
        raise ValueError(f"{where}: no registered open_clip config has these CLIP shapes {sig} "
                         "(image size, patch, width, layers, MLP width | context, vocab, width, layers, MLP "
                         "width). Register one with open_clip.add_model_config(path_to_json).")
    names.sort(key=lambda n: (_PREFERRED.index(n) if n in _PREFERRED else len(_PREFERRED), n))
    if len(names) > 1:
        log.info("%s: CLIP shapes match %s; using %s", where, names, names[0])
    return names[0]


# transformers' CLIP defaults (config.json files omit fields equal to them)
_HF_VISION_DEFAULTS = {"hidden_size": 768, "num_attention_heads": 12, "hidden_act": "quick_gelu",
                       "layer_norm_eps": 1e-5}


_HF_TEXT_DEFAULTS = {"hidden_size": 512, "num_attention_heads": 8, "hidden_act": "quick_gelu",
                     "layer_norm_eps": 1e-5}


def is_hf_clip_folder(path: str | os.PathLike) -> bool:
    """True if ``path`` is a folder with a Hugging Face CLIP ``config.json``."""
    cfg = Path(path) / CONFIG_NAME
    if not cfg.is_file():
        return False
    try:
        data = json.loads(cfg.read_text())
    except (OSError, ValueError):
        return False
    return data.get("model_type") == "clip" or {"vision_config", "text_config"} <= set(data)


def read_hf_clip_folder(folder: str | os.PathLike) -> tuple[dict, TensorDict]:
    """``(config.json as a dict, state dict in HF names)`` of a local Hugging Face CLIP folder.

    Weights: ``model.safetensors``, a sharded ``model.safetensors.index.json``, or
    ``pytorch_model.bin`` (read with ``weights_only=True``).
    """
    folder = Path(folder)
    if not is_hf_clip_folder(folder):
        raise FileNotFoundError(f"{folder} is not a Hugging Face CLIP folder (no config.json with "
                                "vision_config/text_config)")
    config = json.loads((folder / CONFIG_NAME).read_text())
    index = folder / "model.safetensors.index.json"
    if (folder / WEIGHTS_NAME).is_file():
        sd = read_checkpoint(folder / WEIGHTS_NAME)
    elif index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        sd = {}
        for shard in shards:
            sd.update(read_checkpoint(folder / shard))
    elif (folder / "pytorch_model.bin").is_file():
        sd = _unwrap_state_dict(read_checkpoint(folder / "pytorch_model.bin"), folder / "pytorch_model.bin")
    else:
        raise FileNotFoundError(f"{folder}: no model.safetensors, model.safetensors.index.json or "
                                "pytorch_model.bin next to config.json")
    return config, dict(sd)
