"""The authors' STAN checkpoints: :func:`load_official`, :func:`export_official` and
``stanlib convert`` (official -> stanlib, stanlib -> official, Hugging Face CLIP -> open_clip)."""
from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from stanlib.model.config import STANConfig
from stanlib.model.stan import STANModel
from stanlib.weights.io import (
    TensorDict,
    _meta,
    _preview,
    _unwrap_state_dict,
    load_strict,
    portable_config,
    read_checkpoint,
)
from stanlib.weights.keymaps import _CLIP_LOGIT_SCALE, OFFICIAL, _layer_ids, infer_clip_name, official_aliases

log = logging.getLogger("stanlib.weights")

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
        config = STANConfig.from_dict(saved, f"{path} meta['stanlib_config']")
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
    from stanlib.version import __version__

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
    meta = {"stanlib_version": __version__, "stanlib_config": config,
            "clip_logit_scale": float(model.clip.logit_scale.detach()),
            "note": "written by stanlib.weights.export_official (authors' STAN layout, docs/architecture.md section 9)"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"meta": meta, "state_dict": OFFICIAL.to_theirs(sd)}, path)
    return path
