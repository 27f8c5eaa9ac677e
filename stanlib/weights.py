"""Weights in and out: Hugging Face CLIP, the authors' STAN checkpoints, and stanlib's own format.

Three formats, one idea: a **key table** says which of our parameter names matches which of
theirs, and how the tensor changes on the way (copied, transposed, or q/k/v split/joined). The
same table is read in both directions, so import and export cannot drift apart.

=====================  ==========================================================================
Hugging Face CLIP      :func:`hf_to_open_clip` / :func:`open_clip_to_hf` (state dicts);
                       :func:`create_clip_from_hf_folder` (a local ``config.json`` +
                       ``model.safetensors`` / ``pytorch_model.bin`` folder, e.g. a download of
                       ``openai/clip-vit-base-patch32``).
Authors' checkpoints   :func:`load_official` / :func:`export_official` (mmengine, docs/architecture.md section 9);
                       ``stanlib convert official IN.pth OUT_DIR`` and
                       ``stanlib convert to-official IN_DIR OUT.pth``.
stanlib format         :func:`save_pretrained` / :func:`from_pretrained` / :func:`push_to_hub`:
                       ``model.safetensors`` + ``config.json`` (a :class:`~stanlib.STANConfig`).
=====================  ==========================================================================

Nothing here unpickles arbitrary objects: safetensors files hold only tensors, and ``.pth``
files are read with ``torch.load(weights_only=True)``; objects of unknown classes inside an
mmengine checkpoint (its logging state) become inert placeholders whose code never runs.

What differs between the names (open_clip follows OpenAI's CLIP; Hugging Face has its own):

- attention: Hugging Face stores ``q_proj``, ``k_proj``, ``v_proj`` separately; open_clip stores
  one ``in_proj_weight`` of shape (3D, D) = [q; k; v] (and ``in_proj_bias`` likewise);
- projections: Hugging Face's ``visual_projection`` / ``text_projection`` are ``nn.Linear``
  weights (E, D); open_clip's ``visual.proj`` / ``text_projection`` are matrices (D, E) used as
  ``x @ proj``: transposes of each other;
- activation: OpenAI's CLIP uses QuickGELU (``x * sigmoid(1.702 x)``); Hugging Face records it
  as ``hidden_act: "quick_gelu"`` in ``config.json``, open_clip as ``quick_gelu=True``.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import pickle
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import torch

log = logging.getLogger("stanlib.weights")

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

TensorDict = dict[str, torch.Tensor]

# ==============================================================================================
# 1. The key-table machinery
# ==============================================================================================

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


def _preview(keys: Iterable[str], n: int = 12) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


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


# ==============================================================================================
# 2. Hugging Face CLIP <-> open_clip (ONE table, both directions)
# ==============================================================================================

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


# ==============================================================================================
# 3. The authors' mmengine layout (docs/architecture.md section 9) <-> STANModel
# ==============================================================================================

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


def read_checkpoint(path: str | os.PathLike) -> Any:
    """Read a ``.safetensors`` / ``.pth`` file without running pickled code.

    ``torch.load(weights_only=True)`` first. mmengine checkpoints also hold logging state
    (``message_hub``: ``HistoryBuffer`` objects, numpy scalars) that ``weights_only`` refuses; those
    classes are then replaced by inert placeholders (never imported, never called) and a warning
    names them. Tensors are unaffected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # a class weights_only does not know: handled below
        first_error = err
    except Exception as err:  # not a torch file, truncated zip...
        raise ValueError(f"cannot read {path} as a torch checkpoint: {err}") from err
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception as err:  # legacy (non-zip) format, torchscript, truncated file...
        raise ValueError(f"cannot read {path} safely: {first_error}") from err
    stubs = [(_placeholder_class(name), name) for name in unsafe]
    try:
        with torch.serialization.safe_globals(stubs):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot read {path} safely ({err}). Re-save only its tensors, e.g. "
                         "torch.save(ckpt['state_dict'], 'weights.pth'), in a trusted environment.") from err
    warnings.warn(f"{path}: {len(unsafe)} non-tensor object type(s) were read as inert placeholders "
                  f"(not imported, not run): {_preview(unsafe, 6)}", stacklevel=2)
    return obj


def _load_safetensors(path: Path) -> TensorDict:
    """Tensors of a ``.safetensors`` file; a damaged file is a ValueError that names it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"cannot read {path}: {err} (the file is truncated or not a safetensors file; "
                         "copy or save it again)") from err


class Placeholder(list):
    """Stands in for a pickled object whose class we refuse to import: keeps its data, runs no code.

    (A ``list`` subclass because pickles may append items to the object while rebuilding it.)
    """

    qualname = "?"

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):  # pickle's REDUCE "calls" the class with the saved args
        super().__init__()
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<placeholder for {self.qualname}>"


def _placeholder_class(qualname: str) -> type:
    return type(qualname.rsplit(".", 1)[-1], (Placeholder,), {"qualname": qualname})


def _unwrap_state_dict(obj: Any, path: str | os.PathLike) -> TensorDict:
    """The tensors of a checkpoint: unwrap ``state_dict`` / ``model``, strip DDP's ``module.``."""
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{path}: the state dict has non-tensor entries {_preview(bad)}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def _meta(obj: Any) -> dict:
    meta = obj.get("meta") if isinstance(obj, Mapping) else None
    return dict(meta) if isinstance(meta, Mapping) else {}


def load_official(path: str | os.PathLike, *, logit_scale: Optional[float] = None,
                  num_frames: Optional[int] = None, context_length: Optional[int] = None,
                  quick_gelu: bool = True, ignore_keys: Sequence[str] = ()):
    """Load one of the authors' STAN checkpoints (mmengine ``.pth``) into a stanlib model.

    Everything the architecture needs is read from the keys: the CLIP size (widths, patch size,
    layer counts, image size -> a registered open_clip config such as ``ViT-B-32``), the depth K
    (number of ``STAN_S_layers`` / ``STAN_T_layers``) and the temporal module (``self_attn`` ->
    ``"attn"``; ``layers``, the authors' Conv3d, -> ``"conv"``). A checkpoint with CLIP keys only is
    the authors' CLIP mean-pooling baseline (``arch="meanpool"``). Every tensor is loaded; a key that
    is unknown, missing or of the wrong shape is an error that lists it. The original code's older
    names (``timesFPN_S_layers``, ``timesFPN_T_layers``, ``timesFPN_time_embed``) and stanlib's
    earlier conv name (``STAN_T_layers.{k}.conv``) are read too; ``timesFPN_pos_embed`` and
    ``timesFPN_cls_token``, which that code never uses, are skipped with a warning.

    Not stored in their checkpoints, so given here (defaults: the MSR-VTT B/32 recipe values of
    :class:`~stanlib.STANConfig`): ``logit_scale`` (their ``tau=0.01`` -> 100; 50 for B/16),
    ``num_frames`` (12), ``context_length`` (their retrieval configs: 32; None = CLIP's 77).
    ``quick_gelu``: their CLIPs are OpenAI's, so True. ``ignore_keys``: regexes of keys to skip
    on purpose (e.g. ``"adapter\\..*"``); each skipped key is logged.

    Checkpoints written by :func:`export_official` carry the full stanlib config in their
    ``meta`` and are rebuilt exactly (switches that leave no trace in the keys included).
    """
    from stanlib.model import STANConfig, STANModel

    obj = read_checkpoint(path)
    sd = _unwrap_state_dict(obj, path)
    sd = official_aliases(_drop_ignored(sd, ignore_keys, path), path)
    try:
        ours = OFFICIAL.to_ours(sd)
    except KeyError as err:
        raise KeyError(f"{path}: {err.args[0]}. Pass ignore_keys=[regex, ...] (CLI: --ignore) to skip "
                       "keys on purpose.") from None
    saved = _meta(obj).get("stanlib_config")
    if saved is not None:
        config = _config_from_dict(saved, f"{path} meta['stanlib_config']")
    else:
        config = STANConfig(**_infer_official_config(ours, path), quick_gelu=quick_gelu)
    for name, value in (("logit_scale", logit_scale), ("num_frames", num_frames),
                        ("context_length", context_length)):
        if value is not None:
            setattr(config, name, value)
    model = STANModel(config)
    clip_scale = _meta(obj).get("clip_logit_scale")
    if _CLIP_LOGIT_SCALE not in ours and clip_scale is not None:
        ours[_CLIP_LOGIT_SCALE] = torch.tensor(float(clip_scale))
    load_strict(model, ours, str(path), optional={_CLIP_LOGIT_SCALE})
    return model.eval()


def _drop_ignored(sd: TensorDict, patterns: Sequence[str], path) -> TensorDict:
    if not patterns:
        return sd
    regexes = [re.compile(p) for p in patterns]
    dropped = [k for k in sd if any(r.fullmatch(k) for r in regexes)]
    log.warning("%s: skipping %d key(s) on request: %s", path, len(dropped), _preview(dropped))
    return {k: v for k, v in sd.items() if k not in dropped}


def _layer_ids(sd: Mapping[str, Any], prefix: str) -> list[int]:
    ids = {int(m.group(1)) for k in sd for m in [re.match(re.escape(prefix) + r"(\d+)\.", k)] if m}
    return sorted(ids)


def _infer_official_config(sd: TensorDict, path) -> dict:
    """Architecture switches from the (already renamed) keys of an authors' checkpoint."""
    clip_sd = {k[len("clip."):]: v for k, v in sd.items() if k.startswith("clip.")}
    cfg: dict[str, Any] = {"clip": infer_clip_name(clip_sd, where=str(path))}
    temporal_ids = _layer_ids(sd, "branch.temporal.")
    spatial_ids = _layer_ids(sd, "branch.spatial.")
    if "log_logit_scale" in sd:
        cfg["learnable_logit_scale"] = True
        cfg["logit_scale"] = float(sd["log_logit_scale"].exp())
    if not any(k.startswith("branch.") for k in sd):
        return cfg | {"arch": "meanpool", "temporal": None, "spatial": False}
    ids = temporal_ids or spatial_ids
    if not ids:
        raise KeyError(f"{path}: STAN_time_embed found but no STAN_T_layers / STAN_S_layers")
    depth = max(ids) + 1
    for name, found in (("STAN_T_layers", temporal_ids), ("STAN_S_layers", spatial_ids)):
        if found and found != list(range(depth)):
            raise KeyError(f"{path}: {name} indices {found} are not 0..{depth - 1}")
    if any(k.startswith("branch.temporal.0.attn.") for k in sd):
        temporal = "attn"
    elif any(k.startswith("branch.temporal.0.conv.") for k in sd):
        temporal = "conv"
        cfg["conv_variant"] = "bottleneck" if "branch.temporal.0.down.weight" in sd else "dense"
    else:
        temporal = None
    cfg |= {"temporal": temporal, "depth": depth, "spatial": bool(spatial_ids),
            "pos_embed": "new" if "branch.pos" in sd else "clip",
            "fusion_proj": any(k.startswith("branch.fusion.") for k in sd)}
    if spatial_ids:
        cfg["spatial_mlp"] = "branch.spatial.0.mlp.c_fc.weight" in sd
    return cfg


def export_official(model, path: str | os.PathLike) -> Path:
    """Write ``model`` in the authors' mmengine layout: ``{"meta": {...}, "state_dict": {...}}``.

    Key names are those of docs/architecture.md section 9 (``backbone.layers.{i}.self_attn.q_proj.weight``,
    ``backbone.STAN_S_layers.{k}...``, ``backbone.STAN_T_layers.{k}.temporal_fc...``,
    ``backbone.STAN_time_embed.weight``, ``text_backbone.text_model...``); the conv module's
    Conv3d is ``STAN_T_layers.{k}.layers`` as in the authors' original code. The variants they
    never trained use stanlib's names (``STAN_pos_embed``, ``STAN_fusion.{k}``, ``STAN_readout``, see
    ``STAN_BRANCH``), which also trigger a warning.
    ``meta["stanlib_config"]`` keeps the full config so :func:`load_official` rebuilds exactly;
    open_clip's unused ``logit_scale`` goes to ``meta["clip_logit_scale"]``.
    """
    import stanlib

    config = portable_config(model)
    if config["arch"] != "branch":
        raise ValueError(f"the authors' layout holds the STAN branch only; arch={config['arch']!r} "
                         "would load there as a different model. Use save_pretrained instead.")
    released = {"pos_embed": "clip", "first_cls": "avg", "order": "ts", "single_level": False,
                "fusion_proj": False, "spatial": True, "spatial_mlp": True, "conv_variant": "dense",
                "time_embed": "first", "levels": None}  # levels: their branch reads the last K layers
    changed = {k: config[k] for k, v in released.items() if config[k] != v}
    if changed:
        warnings.warn(f"{changed} differ from the released algorithm: the authors' code cannot run this "
                      "checkpoint as is (stanlib's load_official rebuilds it, from the keys and meta)", stacklevel=2)
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items() if k != _CLIP_LOGIT_SCALE}
    meta = {"stanlib_version": stanlib.__version__, "stanlib_config": config,
            "clip_logit_scale": float(model.clip.logit_scale.detach()),
            "note": "written by stanlib.weights.export_official (authors' STAN layout, docs/architecture.md section 9)"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"meta": meta, "state_dict": OFFICIAL.to_theirs(sd)}, path)
    return path


# ==============================================================================================
# 4. Matching a CLIP state dict / HF config to a registered open_clip config
# ==============================================================================================

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


# ==============================================================================================
# 5. A local Hugging Face CLIP folder as CLIP weights
# ==============================================================================================

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


def create_clip_from_hf_folder(folder: str | os.PathLike, name: Optional[str] = None,
                               quick_gelu: Optional[bool] = None):
    """An open_clip CLIP holding the weights of a local Hugging Face CLIP folder.

    ``name``: the open_clip config to build (e.g. ``"ViT-B-32"``; it also picks the tokenizer);
    None infers it from the weights' shapes. The folder's ``hidden_act`` decides QuickGELU;
    ``quick_gelu`` may only confirm it. Heads and LayerNorm eps are checked against the config.
    """
    import open_clip

    from stanlib.clip import create_clip

    hf_cfg, hf_sd = read_hf_clip_folder(folder)
    sd = hf_to_open_clip(hf_sd)
    found = infer_clip_name(sd, where=str(folder))
    name = name or found
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ValueError(f"unknown open_clip config {name!r}")
    if _config_signature(cfg) != clip_signature(sd, str(folder)):
        raise ValueError(f"{folder}: weights have the shapes of {found!r}, not of {name!r} "
                         f"({clip_signature(sd, str(folder))} vs {_config_signature(cfg)})")
    vis = _HF_VISION_DEFAULTS | hf_cfg.get("vision_config", {})
    txt = _HF_TEXT_DEFAULTS | hf_cfg.get("text_config", {})
    heads = (vis["num_attention_heads"], txt["num_attention_heads"])
    if heads != _heads(cfg):
        raise ValueError(f"{folder}: (vision, text) heads {heads} differ from {name}'s {_heads(cfg)}")
    acts = {vis["hidden_act"], txt["hidden_act"]}
    if not acts <= {"quick_gelu", "gelu"} or len(acts) != 1:
        raise ValueError(f"{folder}: unsupported hidden_act {sorted(acts)} (open_clip has quick_gelu or gelu)")
    folder_quick = acts == {"quick_gelu"}
    if quick_gelu is not None and quick_gelu != folder_quick:
        raise ValueError(f"quick_gelu={quick_gelu} contradicts {folder}/config.json (hidden_act {acts.pop()})")
    eps = {vis["layer_norm_eps"], txt["layer_norm_eps"]}
    if eps != {1e-5}:
        raise ValueError(f"{folder}: layer_norm_eps {sorted(eps)}; open_clip uses 1e-5")
    model = create_clip(name, None, quick_gelu=folder_quick)
    if _uses_quick_gelu(model) != folder_quick:
        raise ValueError(f"open_clip config {name!r} forces quick_gelu={not folder_quick}, but {folder} "
                         f"uses {'quick_gelu' if folder_quick else 'gelu'}")
    load_strict(model, sd, str(folder), optional={"logit_bias"})
    return model


def _uses_quick_gelu(clip) -> bool:
    from open_clip.transformer import QuickGELU

    return isinstance(clip.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)


# ==============================================================================================
# 6. Strict loading shared by every path
# ==============================================================================================

def load_strict(model: torch.nn.Module, sd: Mapping[str, torch.Tensor], source: str,
                optional: Iterable[str] = ()) -> None:
    """``model.load_state_dict`` that lists every missing / unexpected / mis-shaped key.

    ``optional``: keys the model has but the source may lack (they keep their current value).
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd) - set(optional))
    unexpected = sorted(set(sd) - set(expected))
    shapes = [f"{k}: {tuple(sd[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in sorted(set(sd) & set(expected)) if sd[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s): {_preview(unexpected)}")
    if shapes:
        problems.append(f"wrong shape for {len(shapes)} key(s): {_preview(shapes, 6)}")
    if problems:
        raise KeyError(f"{source} does not match the model: " + "; ".join(problems))
    model.load_state_dict(dict(sd), strict=False)


# ==============================================================================================
# 7. stanlib's own format: model.safetensors + config.json
# ==============================================================================================

def portable_config(model) -> dict:
    """The model's config as a dict that rebuilds it without the original CLIP weights.

    ``pretrained`` becomes None (the weights are saved alongside) and ``quick_gelu`` is set to
    the activation the CLIP really uses (it was derived from ``pretrained`` before).
    """
    config = model.config.to_dict()
    config["pretrained"] = None
    config["quick_gelu"] = _uses_quick_gelu(model.clip)
    return config


def _config_from_dict(data: Mapping, source: str):
    """A :class:`~stanlib.STANConfig` from a dict; unknown fields and values of the wrong type are
    errors that name ``source`` and the field."""
    import typing

    from stanlib.model import STANConfig

    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: expected a JSON object of config fields, got {type(data).__name__}")
    known = {f.name for f in fields(STANConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{source}: unknown config field(s) {unknown} (written by a newer stanlib?); "
                         f"known fields: {sorted(known)}")
    hints = typing.get_type_hints(STANConfig)
    for key, value in data.items():
        hint = hints[key]
        allowed = tuple(a for a in typing.get_args(hint) if a is not type(None)) or (hint,)
        if value is None and type(None) in typing.get_args(hint):
            continue
        if not all(isinstance(a, type) for a in allowed):
            continue  # a hint this check does not read (the model checks the value itself)
        allowed = allowed + ((int,) if float in allowed else ()) + ((list,) if tuple in allowed else ())
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            names = " or ".join(a.__name__ for a in allowed)
            raise ValueError(f"{source}: field {key!r} must be {names}, got {type(value).__name__} {value!r}")
    try:
        return STANConfig(**dict(data))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: {err}") from None


def save_pretrained(model, save_directory: str | os.PathLike, dtype: Optional[torch.dtype] = None) -> Path:
    """Write ``model.safetensors`` (every tensor of ``model.state_dict()``) + ``config.json``.

    The folder is self-contained: :func:`from_pretrained` rebuilds the model from it without
    downloading CLIP weights. No pickles: safetensors holds raw tensors, the config is JSON.
    ``dtype`` (e.g. ``torch.float16``) stores floating tensors in that type: half the bytes; the
    model is rebuilt in float32 on loading (values rounded to the stored type).
    """
    from safetensors.torch import save_file

    import stanlib

    folder = Path(save_directory)
    folder.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}
    save_file(sd, str(folder / WEIGHTS_NAME), metadata={"format": "pt", "stanlib_version": stanlib.__version__})
    (folder / CONFIG_NAME).write_text(json.dumps(portable_config(model), indent=2) + "\n")
    return folder


_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no")


def _download(repo_id: str, revision: Optional[str]) -> Path:
    """Fetch ``config.json`` + ``model.safetensors`` of a Hub repo (or find them in the cache)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise ImportError("loading from the Hugging Face Hub needs `pip install huggingface_hub`") from err
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME]))
    except Exception as err:
        hint = ("HF_HUB_OFFLINE is set, so only the local cache was searched. " if _hub_offline() else "")
        raise OSError(f"could not get {repo_id!r} from the Hugging Face Hub: {err}\n{hint}Fix: pass a local "
                      "folder written by save_pretrained, or download the repo on a machine with internet "
                      f"(huggingface-cli download {repo_id}) and retry.") from err


def from_pretrained(name_or_path: str | os.PathLike, revision: Optional[str] = None,
                    device: str | torch.device = "cpu"):
    """Rebuild a model saved by :func:`save_pretrained` (a local folder or a Hub repo id ``"user/name"``),
    or a model of the teaching zoo by name (``"zoo:motion/stan-self"``, :mod:`stanlib.zoo`).

    Loading is strict: every tensor of the file must be a parameter/buffer of the rebuilt model
    and vice versa. Nothing is unpickled. Returns the model in eval mode on ``device``.
    """
    from stanlib.model import STANModel

    if str(name_or_path).startswith("zoo:"):  # a trained model of the teaching zoo (stanlib.zoo)
        from stanlib import zoo

        return zoo.load(str(name_or_path), device=device)
    folder = Path(name_or_path)
    if not folder.exists():
        if not _REPO_ID.fullmatch(str(name_or_path)):
            raise FileNotFoundError(f"{name_or_path}: no such folder (and not a Hub repo id 'user/name')")
        folder = _download(str(name_or_path), revision)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file; from_pretrained expects a folder with {CONFIG_NAME} and "
                                 f"{WEIGHTS_NAME} (for an authors' .pth checkpoint use stanlib.load_official)")
    for needed in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / needed).is_file():
            raise FileNotFoundError(f"{folder} has no {needed}; expected a folder written by save_pretrained")
    config_path = folder / CONFIG_NAME
    try:
        data = json.loads(config_path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path}: line {err.lineno} column {err.colno}: invalid JSON ({err.msg})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{config_path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if isinstance(data, dict) and (data.get("extra") or {}).get("zoo"):  # a compact teaching-zoo folder
        from stanlib import zoo

        return zoo.load_folder(folder, device=device)
    config = _config_from_dict(data, str(config_path))
    try:
        model = STANModel(config)
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{config_path}: cannot build the model it describes: "
                         f"{err.args[0] if isinstance(err, KeyError) and err.args else err}") from None
    load_strict(model, _load_safetensors(folder / WEIGHTS_NAME), str(folder / WEIGHTS_NAME))
    return model.to(device).eval()


def push_to_hub(model, repo_id: str, private: Optional[bool] = None, token: Optional[str] = None,
                commit_message: str = "Upload STAN model (stanlib)", revision: Optional[str] = None):
    """Upload ``save_pretrained`` output (+ a short model card) to the Hugging Face Hub repo ``repo_id``."""
    from huggingface_hub import HfApi

    if _hub_offline():
        raise OSError("HF_HUB_OFFLINE is set: cannot push to the Hub. Unset it on a machine with internet.")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp)
        c = model.config
        (Path(tmp) / "README.md").write_text(
            f"---\nlibrary_name: stanlib\ntags: [video-text-retrieval, clip, stan]\n---\n# {repo_id}\n\n"
            f"STAN (CVPR 2023) on open_clip `{c.clip}`: arch `{c.arch}`, temporal `{c.temporal}`, K={c.depth}, "
            f"{c.num_frames} frames.\n\n```python\nimport stanlib\nmodel = stanlib.from_pretrained(\"{repo_id}\")\n"
            "print(stanlib.Predictor(model).similarity(\"video.mp4\", [\"a dog runs\"]))\n```\n")
        return api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message,
                                 revision=revision)


def load_model(spec: str | os.PathLike):
    """Any checkpoint: a save_pretrained folder, Hub id or zoo name, a ``last.pt`` / ``best.pt`` written
    by ``stanlib train`` (:func:`load_training_checkpoint`), or an authors' ``.pth`` file."""
    path = Path(spec)
    if path.is_file():
        if path.suffix == ".pt":
            return load_training_checkpoint(path)
        return load_official(path)
    return from_pretrained(spec)


def load_training_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """The model of a ``stanlib train`` checkpoint (``last.pt`` / ``best.pt``), in eval mode.

    ``model.config.extra`` records what inference needs from the run: the recognition ``head``
    ("text", "orthogonal" or "linear"), the ``classes`` in training order, the ``class_prompt``, and
    the run's ``task``, ``dataset`` and ``preset`` (:class:`stanlib.Predictor` classifies with them).
    """
    from stanlib.model import STANModel

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot read {path} as a stanlib training checkpoint ({type(err).__name__}); "
                         "the file is corrupt or not a last.pt / best.pt of `stanlib train`") from None
    if not isinstance(ckpt, dict) or not str(ckpt.get("format", "")).startswith("stanlib-checkpoint"):
        raise ValueError(f"{path} is not a `stanlib train` checkpoint (last.pt / best.pt); for a folder written "
                         "by save_pretrained pass the folder, for the authors' checkpoints use a .pth file")
    config = _config_from_dict(dict(ckpt.get("model_config") or {}), f"{path} (model_config)")
    model = STANModel(config)
    load_strict(model, ckpt["model"], str(path))
    run = ckpt.get("config") or {}
    model.config.extra = {**(model.config.extra or {}), "task": run.get("task"), "preset": run.get("name"),
                          "dataset": run.get("dataset"), "head": run.get("head") if run.get("task") == "recognition"
                          else None, "class_prompt": run.get("class_prompt", "{}"),
                          "classes": list(ckpt.get("class_names") or []), "checkpoint": str(path)}
    return model.to(device).eval()


# ==============================================================================================
# 8. Command line: stanlib convert ...
# ==============================================================================================

def cli_main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stanlib convert",
        description="Convert checkpoints between the authors' mmengine layout, Hugging Face CLIP and stanlib.")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("official", help="authors' STAN .pth -> stanlib folder (model.safetensors + config.json)")
    p.add_argument("input", help="authors' checkpoint (.pth)")
    p.add_argument("output", help="output folder")
    p.add_argument("--logit-scale", type=float, help="1/tau (100 for B/32, 50 for B/16, 20 for DiDeMo)")
    p.add_argument("--num-frames", type=int, help="frames per video at inference (recipe: 12 retrieval, 8 recognition)")
    p.add_argument("--context-length", type=int, help="text tokens (recipe: 32; default: the CLIP's 77)")
    p.add_argument("--ignore", action="append", default=[], metavar="REGEX",
                   help="skip keys matching REGEX on purpose (repeatable), e.g. 'adapter\\..*'")
    p = sub.add_parser("to-official", help="stanlib folder -> authors' layout .pth")
    p.add_argument("input", help="folder written by save_pretrained (or a Hub repo id)")
    p.add_argument("output", help="output .pth")
    p = sub.add_parser("hf-clip", help="Hugging Face CLIP folder -> open_clip state dict (.safetensors)")
    p.add_argument("input", help="folder with config.json + model.safetensors / pytorch_model.bin")
    p.add_argument("output", help="output .safetensors (load with create_model(pretrained=...))")
    args = parser.parse_args(argv)

    try:
        if args.what == "official":
            model = load_official(args.input, logit_scale=args.logit_scale, num_frames=args.num_frames,
                                  context_length=args.context_length, ignore_keys=args.ignore)
            save_pretrained(model, args.output)
            c = model.config
            print(f"{args.input} -> {args.output}: clip={c.clip} arch={c.arch} temporal={c.temporal} "
                  f"depth={c.depth} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)")
        elif args.what == "to-official":
            out = export_official(from_pretrained(args.input), args.output)
            print(f"{args.input} -> {out}")
        else:
            from safetensors.torch import save_file

            clip = create_clip_from_hf_folder(args.input)
            save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, args.output)
            print(f"{args.input} -> {args.output} (open_clip names; quick_gelu={_uses_quick_gelu(clip)})")
    except (OSError, KeyError, ValueError) as err:
        print(f"stanlib convert: error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 1
    return 0
