"""The STAN branch: temporal (cross-frame) and spatial (intra-frame) modules, and the branch itself.

Read top to bottom: ``Attention`` -> ``TemporalAttention`` / ``TemporalConv`` (with timm's ``DropPath``) ->
``SpatialBlock`` -> ``STANBranch``. Token layout inside the branch (docs/architecture.md section 2):
ONE video CLS ``(B, D)`` plus patches ``(B, T, L, D)``; no per-frame CLS.

Explained step by step in ``notebooks/02_build_stan.ipynb``.
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import DropPath  # stochastic depth (timm is installed with open_clip; no parameters)
from torch import nn

MAX_FRAMES = 64  # capacity of the time embedding, as in the authors' checkpoints (nn.Embedding(64, D))


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       record: Optional[list[torch.Tensor]] = None) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` on (N, heads, S, d); appends the probabilities to ``record``."""
    probs = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(dim=-1)
    if record is not None:
        record.append(probs.detach())
    return probs @ v


def multihead_attention(x: torch.Tensor, in_proj_weight: torch.Tensor, in_proj_bias: torch.Tensor,
                        out_proj: nn.Linear, heads: int, fused: bool = True,
                        record: Optional[list[torch.Tensor]] = None) -> torch.Tensor:
    """Self-attention of ``x`` (N, S, D) with ``nn.MultiheadAttention``-style weights.

    Fused SDPA when ``fused`` and not recording; otherwise the explicit path (same numbers up to
    fp32 rounding). Shared by the branch's :class:`Attention` and CLIP's own blocks (for capture).
    One exception on the fused path: CPU training in bf16/fp16 runs the explicit math, because
    PyTorch's CPU flash-attention backward is 2.5-6.5x slower there (docs/benchmarks.md).
    """
    q, k, v = F.linear(x, in_proj_weight, in_proj_bias).chunk(3, dim=-1)
    q, k, v = (rearrange(t, "n s (h d) -> n h s d", h=heads) for t in (q, k, v))
    slow_cpu_backward = q.device.type == "cpu" and q.requires_grad and q.dtype in (torch.bfloat16, torch.float16)
    if fused and record is None and not slow_cpu_backward:
        out = F.scaled_dot_product_attention(q, k, v)
    else:
        out = explicit_attention(q, k, v, record)
    return out_proj(rearrange(out, "n h s d -> n s (h d)"))


def clip_block_forward(block: nn.Module, x: torch.Tensor, fused: bool = True,
                       record: Optional[list[torch.Tensor]] = None) -> torch.Tensor:
    """An open_clip ``ResidualAttentionBlock`` forward with our attention (explicit path / capture)."""
    mha = block.attn
    x = x + block.ls_1(multihead_attention(block.ln_1(x), mha.in_proj_weight, mha.in_proj_bias,
                                           mha.out_proj, mha.num_heads, fused, record))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


class Attention(nn.Module):
    """Multi-head self-attention with parameter names of ``nn.MultiheadAttention``.

    The names (``in_proj_weight`` = [q; k; v], ``in_proj_bias``, ``out_proj``) let a CLIP block's
    attention load directly. Two paths compute the same thing:
    - fused: ``F.scaled_dot_product_attention`` (default, fast);
    - explicit: ``softmax(q k^T / sqrt(d)) v``, used when ``fused=False`` or while ``record`` is a
      list, in which case the attention probabilities ``(N, heads, S, S)`` are appended to it
      (see :func:`stanlib.viz.capture_attention`).
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)
        self.fused = True
        self.record: Optional[list[torch.Tensor]] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, S, D)
        return multihead_attention(x, self.in_proj_weight, self.in_proj_bias, self.out_proj, self.heads,
                                   self.fused, self.record)


# ----------------------------------------------------------------------------------------------
# Temporal (cross-frame) modules: patches (B, T, L, D) -> (B, T, L, D); the video CLS bypasses them.


class TemporalAttention(nn.Module):
    """A-STA: each patch position attends over the T frames. Identity at initialisation.

    ``LN -> MHSA over T (fresh weights) -> DropPath -> temporal_fc (zero-init) -> + residual``; no MLP.
    """

    def __init__(self, dim: int, heads: int, drop_path: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.drop_path = DropPath(drop_path)
        self.temporal_fc = nn.Linear(dim, dim)
        nn.init.zeros_(self.temporal_fc.weight)  # zero-init: the branch starts as CLIP's own features
        nn.init.zeros_(self.temporal_fc.bias)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        b = p.shape[0]
        x = rearrange(p, "b t l d -> (b l) t d")
        x = self.temporal_fc(self.drop_path(self.attn(self.ln_1(x))))
        return p + rearrange(x, "(b l) t d -> b t l d", b=b)


class TemporalConv(nn.Module):
    """C-STA: a 3D convolution over the (T, h, w) patch cube. Identity at initialisation.

    ``variant="dense"`` (authors' original code, default): Conv3d(D, D, 3x3x3) -> DropPath ->
    zero-init Linear(D, D) -> + residual.
    ``variant="bottleneck"`` (the paper's Eq. 9): 1x1x1 D->D/8 -> Conv3d (3,1,1) -> GELU ->
    1x1x1 D/8->D (zero-init) -> + residual.
    The authors' latest release lost this module; stanlib is its only runnable implementation.
    """

    def __init__(self, dim: int, grid: tuple[int, int], variant: str = "dense", drop_path: float = 0.0):
        super().__init__()
        self.grid, self.variant = grid, variant
        self.drop_path = DropPath(drop_path)
        if variant == "dense":
            self.conv = nn.Conv3d(dim, dim, kernel_size=3, padding=1)
            self.temporal_fc = nn.Linear(dim, dim)
            zero = self.temporal_fc
        elif variant == "bottleneck":
            hidden = dim // 8
            self.down = nn.Conv3d(dim, hidden, kernel_size=1)
            self.conv = nn.Conv3d(hidden, hidden, kernel_size=(3, 1, 1), padding=(1, 0, 0))
            self.act = nn.GELU()
            self.up = nn.Conv3d(hidden, dim, kernel_size=1)
            zero = self.up
        else:
            raise ValueError(f"conv_variant must be 'dense' or 'bottleneck', got {variant!r}")
        nn.init.zeros_(zero.weight)
        nn.init.zeros_(zero.bias)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        h, w = self.grid
        cube = rearrange(p, "b t (h w) d -> b d t h w", h=h, w=w)
        if self.variant == "dense":
            y = rearrange(self.conv(cube), "b d t h w -> b t (h w) d")
            y = self.temporal_fc(self.drop_path(y))
        else:
            y = self.up(self.act(self.conv(self.down(cube))))
            y = self.drop_path(rearrange(y, "b d t h w -> b t (h w) d"))
        return p + y


# ----------------------------------------------------------------------------------------------
# Spatial (intra-frame) module: a copy of a CLIP block, run per frame with the shared video CLS.


class SpatialBlock(nn.Module):
    """A CLIP transformer block copied from ``clip_block`` (same weights, same activation).

    Attention runs per frame over ``[video CLS ; that frame's L patches]``; the T CLS outputs are
    averaged back into one; DropPath on the attention branch only; then LN -> MLP -> residual on
    all tokens. ``mlp=False`` drops the MLP (the paper's figure shows attention only).
    """

    def __init__(self, clip_block: nn.Module, heads: int, drop_path: float = 0.0, mlp: bool = True):
        super().__init__()
        dim = clip_block.ln_1.normalized_shape[0]
        self.ln_1 = copy.deepcopy(clip_block.ln_1)
        self.attn = Attention(dim, heads)
        self.attn.load_state_dict(clip_block.attn.state_dict(), strict=True)  # same names as nn.MHA
        self.ls_1 = copy.deepcopy(clip_block.ls_1)
        self.drop_path = DropPath(drop_path)
        if mlp:
            self.ln_2 = copy.deepcopy(clip_block.ln_2)
            self.mlp = copy.deepcopy(clip_block.mlp)  # keeps CLIP's activation (QuickGELU or GELU)
            self.ls_2 = copy.deepcopy(clip_block.ls_2)
        self.has_mlp = mlp

    def forward(self, cls: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, l, d = p.shape
        x = torch.cat([cls[:, None, None, :].expand(b, t, 1, d), p], dim=2)  # (B, T, 1+L, D)
        y = self.drop_path(self.ls_1(self.attn(self.ln_1(x.reshape(b * t, 1 + l, d)))))
        y = y.view(b, t, 1 + l, d)
        cls = cls + y[:, :, 0].mean(dim=1)  # the T per-frame CLS outputs back into one video CLS
        p = p + y[:, :, 1:]
        if self.has_mlp:
            cls = cls + self.ls_2(self.mlp(self.ln_2(cls)))
            p = p + self.ls_2(self.mlp(self.ln_2(p)))
        return cls, p


# ----------------------------------------------------------------------------------------------
# The branch: reads the outputs of the last K CLIP blocks and contextualises them in space and time.


class STANBranch(nn.Module):
    """K layers of (temporal module, spatial module) fed by K levels of CLIP tokens.

    Level 0 initialises the branch state (CLS and patches with CLIP's positional table and the time
    embedding re-added); later levels are summed into the state (``fusion_proj=True`` applies a
    learned D x D projection first, the paper's W_proj). ``single_level=True`` feeds only level 0.
    ``time_embed="every"`` (ours) re-adds the time embedding with every level, not only level 0.
    ``branch(levels, class_embedding, clip_pos)`` (:meth:`forward`) returns the video CLS (B, D);
    its steps are :meth:`init_state`, :meth:`inject`, :meth:`layer` and :meth:`video_cls`.
    """

    def __init__(self, clip_visual: nn.Module, blocks: list[nn.Module], temporal: Optional[str] = "attn",
                 spatial: bool = True, spatial_mlp: bool = True, conv_variant: str = "dense",
                 drop_path: float = 0.1, fusion_proj: bool = False, pos_embed: str = "clip",
                 first_cls: str = "avg", order: str = "ts", single_level: bool = False, time_embed: str = "first"):
        super().__init__()
        width = clip_visual.class_embedding.shape[0]
        heads = blocks[0].attn.num_heads
        depth = len(blocks)
        grid = tuple(clip_visual.grid_size)
        rates = [drop_path * k / (depth - 1) for k in range(depth)] if depth > 1 else [0.0]  # linspace(0, p, K)
        if pos_embed not in ("clip", "new"):
            raise ValueError(f"pos_embed must be 'clip' (released) or 'new' (paper text), got {pos_embed!r}")
        if first_cls not in ("avg", "mean"):
            raise ValueError(f"first_cls must be 'avg' (released) or 'mean' (paper text), got {first_cls!r}")
        if order not in ("ts", "st"):
            raise ValueError(f"order must be 'ts' (temporal then spatial) or 'st', got {order!r}")
        if time_embed not in ("first", "every"):
            raise ValueError(f"time_embed must be 'first' (released) or 'every' (every level), got {time_embed!r}")
        self.pos_embed, self.first_cls, self.order, self.single_level = pos_embed, first_cls, order, single_level
        self.time_every = time_embed == "every"

        self.time_embed = nn.Embedding(MAX_FRAMES, width)  # N(0, 1) init: the branch's only source of order
        if pos_embed == "new":  # paper text: new learnable spatial embeddings (CLS slot included)
            self.pos = nn.Parameter(width ** -0.5 * torch.randn(1 + grid[0] * grid[1], width))
        self.temporal = nn.ModuleList([self._temporal(temporal, width, heads, grid, conv_variant, r) for r in rates])
        self.spatial = nn.ModuleList(
            [SpatialBlock(blk, heads, r, spatial_mlp) for blk, r in zip(blocks, rates)] if spatial else [])
        self.fusion = nn.ModuleList([_identity_linear(width) for _ in range(depth - 1)]) if fusion_proj else None
        if not spatial:  # "no intra-frame" ablation: without it nothing moves patch information into the
            # video CLS, so (our interpretation) a zero-init linear reads out the mean patch at the end
            self.readout = nn.Linear(width, width)
            nn.init.zeros_(self.readout.weight)
            nn.init.zeros_(self.readout.bias)
        self.grad_checkpointing = False

    @staticmethod
    def _temporal(kind: Optional[str], width: int, heads: int, grid, conv_variant: str, rate: float) -> nn.Module:
        if kind == "attn":
            return TemporalAttention(width, heads, rate)
        if kind == "conv":
            return TemporalConv(width, grid, conv_variant, rate)
        if kind is None:
            return nn.Identity()
        raise ValueError(f"temporal must be 'attn', 'conv' or None, got {kind!r}")

    @property
    def depth(self) -> int:
        return len(self.temporal)

    def init_state(self, v: torch.Tensor, class_embedding: torch.Tensor,
                   clip_pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Branch input from level 0 tokens ``v`` (B, T, 1+L, D) -> (cls (B, D), patches (B, T, L, D))."""
        t = v.shape[1]
        if t > MAX_FRAMES:
            raise ValueError(f"clip has {t} frames but the STAN time embedding holds at most {MAX_FRAMES} "
                             "(nn.Embedding(64, D), as in the authors' checkpoints); sample <= 64 frames")
        pos = self.pos if self.pos_embed == "new" else clip_pos
        cls = v[:, :, 0].mean(dim=1)
        if self.first_cls == "avg":  # released: average with CLIP's own (class + pos[0]) embedding
            cls = (cls + class_embedding + pos[0]) / 2
        time = self.time_embed.weight[:t]
        p = v[:, :, 1:] + pos[1:] + time[None, :, None, :]
        return cls, p

    def inject(self, k: int, cls: torch.Tensor, p: torch.Tensor, v: torch.Tensor):
        """Add level k > 0 tokens (B, T, 1+L, D) to the branch state (optionally projected)."""
        if self.fusion is not None:
            v = self.fusion[k - 1](v)
        p = p + v[:, :, 1:]
        if self.time_every:  # frame order re-stated at every level, not only at level 0
            p = p + self.time_embed.weight[:v.shape[1]][None, :, None, :]
        return cls + v[:, :, 0].mean(dim=1), p

    def layer(self, k: int, cls: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Branch layer k: temporal then spatial (``order="ts"``, released) or the reverse."""
        if self.order == "st" and self.spatial:
            cls, p = self.spatial[k](cls, p)
        p = self.temporal[k](p)
        if self.order == "ts" and self.spatial:
            cls, p = self.spatial[k](cls, p)
        return cls, p

    def video_cls(self, cls: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """The branch's output video CLS (B, D) after the last layer."""
        if self.spatial:
            return cls
        return cls + self.readout(p.mean(dim=(1, 2)))

    def forward_layer(self, k: int, cls: torch.Tensor, p: torch.Tensor):
        """:meth:`layer`, recomputed in the backward pass when ``grad_checkpointing`` is on."""
        if self.grad_checkpointing and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(self.layer, k, cls, p, use_reentrant=False)
        return self.layer(k, cls, p)

    def forward(self, levels: list[torch.Tensor], class_embedding: torch.Tensor,
                clip_pos: torch.Tensor) -> torch.Tensor:
        """The whole branch: CLIP levels -> the video CLS (B, D).

        ``levels``: CLIP token tensors (B, T, 1+L, D), bottom-up, one per branch layer. Level 0
        initialises the state (:meth:`init_state`, with CLIP's ``class_embedding`` and positional
        table ``clip_pos``); before layer k > 0, level k is added to it (:meth:`inject`: a plain sum,
        or through the paper's W_proj^k with ``fusion_proj``), except with ``single_level``. Given a
        single level (``posterior``: CLIP's final tokens), the K layers run on the state alone.
        """
        if len(levels) not in (1, self.depth):
            raise ValueError(f"the branch has {self.depth} layers: give it {self.depth} CLIP levels "
                             f"(or 1), got {len(levels)}")
        cls, p = self.init_state(levels[0], class_embedding, clip_pos)
        for k in range(self.depth):
            if k > 0 and len(levels) > 1 and not self.single_level:
                cls, p = self.inject(k, cls, p, levels[k])
            cls, p = self.forward_layer(k, cls, p)
        return self.video_cls(cls, p)


def _identity_linear(dim: int) -> nn.Linear:
    """W_proj starts as the identity, so ``fusion_proj=True`` starts from the released behaviour."""
    lin = nn.Linear(dim, dim)
    nn.init.eye_(lin.weight)
    nn.init.zeros_(lin.bias)
    return lin
