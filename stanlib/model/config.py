"""The model's configuration: :class:`STANConfig` (everything needed to rebuild a model; saved as
``config.json`` next to its weights) and the CLIP-level choice of the branch (:func:`parse_levels`)."""
from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Mapping, Optional

ARCHS = ("branch", "meanpool", "posterior", "seqtransf", "tdb", "st-adapter", "xclip-msg")


def parse_levels(levels) -> Optional[tuple[int, ...]]:
    """CLIP layers for the branch, 1-based: ``"9-12"``, ``"6,8,10,12"``, ``(6, 8, 10, 12)`` -> a tuple.

    None stays None (the last K layers). Raises ValueError for anything that is not increasing
    positive integers (duplicates and unsorted lists included); the range is checked against the
    CLIP by :class:`STANModel`.
    """
    if levels is None:
        return None
    raw = levels
    if isinstance(levels, str):
        text = levels.replace(" ", "")
        try:
            if "-" in text and "," not in text:
                lo, hi = (int(v) for v in text.split("-"))
                if hi < lo:
                    raise ValueError(f"levels {raw!r}: the range ends before it starts")
                levels = tuple(range(lo, hi + 1))
            else:
                levels = tuple(int(v) for v in text.split(","))
        except ValueError as err:
            if "range ends" in str(err):
                raise
            raise ValueError(f"levels {raw!r}: expected a range \"9-12\", a list \"6,8,10,12\" or a tuple of "
                             "1-based CLIP layer numbers") from None
    elif isinstance(levels, int) and not isinstance(levels, bool):
        levels = (levels,)
    try:
        levels = tuple(levels)
    except TypeError:
        raise ValueError(f"levels must be a range string, a list or a tuple of 1-based CLIP layer numbers, "
                         f"got {raw!r}") from None
    if not levels or not all(isinstance(v, int) and not isinstance(v, bool) for v in levels):
        raise ValueError(f"levels must be 1-based CLIP layer numbers (integers), got {raw!r}")
    if min(levels) < 1:
        raise ValueError(f"levels are 1-based CLIP layer numbers (the first layer is 1), got {raw!r}")
    if len(set(levels)) != len(levels):
        raise ValueError(f"levels {raw!r} repeat a layer; each CLIP layer can be read once")
    if list(levels) != sorted(levels):
        raise ValueError(f"levels {raw!r} must be in increasing order (the branch reads CLIP's layers "
                         f"bottom-up): {tuple(sorted(levels))}")
    return levels


@dataclass
class STANConfig:
    """Everything needed to rebuild a model (saved next to its weights)."""

    clip: str = "ViT-B-32"              # open_clip config name
    pretrained: Optional[str] = None    # None | open_clip tag ("openai") | path to CLIP weights
    arch: str = "branch"                # see module docstring
    temporal: Optional[str] = "attn"    # "attn" (STAN-self) | "conv" (STAN-conv) | None
    spatial: bool = True                # intra-frame module (copied CLIP block)
    depth: int = 4                      # K: branch layers = number of CLIP levels read
    single_level: bool = False          # Table 6 "branch, single level"
    conv_variant: str = "dense"         # "dense" (released) | "bottleneck" (paper Eq. 9)
    drop_path: float = 0.1              # max rate; layer k gets linspace(0, drop_path, K)[k]
    fusion_proj: bool = False           # paper text: W_proj^k on levels k > 0
    pos_embed: str = "clip"             # "clip" (released: CLIP's table re-added) | "new" (paper text)
    first_cls: str = "avg"              # "avg" (released) | "mean" (paper text)
    time_embed: str = "first"           # "first" (released: added at level 0 only) | "every" (re-added with
                                        # every CLIP level; an option of ours, docs/experiments.md)
    order: str = "ts"                   # "ts": temporal then spatial (released) | "st"
    spatial_mlp: bool = True            # paper figure shows attention only: False
    seqtransf_layers: int = 4            # seqTransf and TDB (CLIP2Video): temporal transformer layers
    levels: Optional[tuple] = None      # branch: 1-based CLIP layers read, e.g. (6, 8, 10, 12) or "9-12" (Table 8);
                                        # None: the last K (default). len(levels) must equal depth
    adapter_width: Optional[int] = None  # st-adapter: bottleneck r (None: D/2 = 384 for ViT-B, as released)
    adapter_kernel: tuple = (3, 1, 1)   # st-adapter: depthwise conv kernel over (T, h, w) (released: 3x1x1)
    adapter_position: str = "attn"      # st-adapter: "attn" (before attention, the paper) | "mlp" | "both"
    mit_layers: int = 1                 # xclip-msg: X-CLIP's multi-frame integration layers (0: mean, order-blind)
    num_frames: int = 12                # recipe's T (used by data/predictor; the model takes any T <= 64)
    context_length: Optional[int] = None  # recipe's text length (32 MSR-VTT); None: the CLIP's own
    logit_scale: float = 100.0          # 1/tau: 100 (B/32), 50 (B/16), 20 (DiDeMo)
    learnable_logit_scale: bool = False
    quick_gelu: Optional[bool] = None   # None: QuickGELU for OpenAI weights, the config's own otherwise
    extra: dict = field(default_factory=dict)  # free-form notes (e.g. training recipe)

    def __post_init__(self):
        if self.arch == "branch" and self.temporal is None and not self.spatial:
            self.arch = "meanpool"  # neither module: nothing left of the branch
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        self.levels = parse_levels(self.levels)
        if self.levels is not None:
            if self.arch != "branch":
                raise ValueError(f"levels choose the CLIP layers the STAN branch reads; arch={self.arch!r} has no "
                                 "branch (use arch='branch' or leave levels=None)")
            if len(self.levels) != self.depth:
                raise ValueError(f"levels {self.levels} name {len(self.levels)} CLIP layers but depth K={self.depth}: "
                                 f"the branch reads one layer per branch layer (set depth={len(self.levels)})")
        self.adapter_kernel = tuple(self.adapter_kernel)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "config") -> STANConfig:
        """A config from a dict; unknown fields and values of the wrong type are
        errors that name ``source`` and the field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a JSON object of config fields, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown config field(s) {unknown} (written by a newer stanlib?); "
                             f"known fields: {sorted(known)}")
        hints = typing.get_type_hints(cls)
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
            return cls(**dict(data))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from None
