"""The other structures of the paper's comparison (Table 7): where the temporal modelling sits in CLIP.

The STAN paper (Liu et al., CVPR 2023, Sec. 1 and Table 7) sorts the ways of giving CLIP a sense of
time into three structures; stanlib builds each of them on the same untouched open_clip CLIP:

================  =====================================================================================
``posterior``     temporal layers on CLIP's final frame embeddings: CLIP's knowledge is kept, motion is
                  weak. ``arch="seqtransf"``: CLIP4Clip's temporal transformer (:class:`SeqTransf`);
                  ``arch="tdb"``: CLIP2Video's Temporal Difference Block (:class:`TemporalDifference`).
``intermediate``  temporal modules *inside* CLIP's blocks: every later CLIP layer receives changed
                  features. ``arch="st-adapter"``: ST-Adapter (:class:`STAdapters`);
                  ``arch="xclip-msg"``: X-CLIP's cross-frame message tokens (:class:`CrossFrameMessages`).
``branch``        STAN (:mod:`stanlib.model.branch`): CLIP runs untouched and a side branch reads its levels.
================  =====================================================================================

Each structure is the ``branch`` attribute of a :class:`stanlib.model.STANModel`, so its parameters
train at the branch learning rate, as STAN's do. Each follows its own paper and released code (cited
in the class docstrings; where the two differ the docstring says which one is followed). The
intermediate structures run CLIP's blocks through :func:`intermediate_block_forward`, which is
open_clip's block with the adapter or the message token plugged in: open_clip itself is never changed.

Paper figures (Table 7; MSR-VTT R@1 with B/32 / K400 top-1 with B/16; * = the STAN authors'
re-implementation): mean pooling 43.1 / 79.9, X-CLIP Msg-Token 43.2* / 82.7, ST-Adapter 42.5* / 82.0,
Seq-Trans 44.5 / 80.5*, TDB 45.1 / 81.1*, STAN-self 46.9 / 84.2. The levels the branch reads are
Table 8's subject: :data:`TABLE8_LEVELS`.
"""
from __future__ import annotations

import copy
import functools
from typing import Callable, Optional, Sequence

import torch
from einops import rearrange
from torch import nn

from stanlib.model.branch import MAX_FRAMES, Attention, multihead_attention

__all__ = ["INTERMEDIATE", "POSTERIOR", "TABLE8_LEVELS", "intermediate_block_forward", "STAdapter", "STAdapters",
           "CrossFrameMessage", "CrossFrameMessages", "FrameBlock", "MultiFrameIntegration", "SeqTransf",
           "TemporalDifference", "build_structure"]

INTERMEDIATE = ("st-adapter", "xclip-msg")   # change the tokens inside CLIP's blocks
POSTERIOR = ("seqtransf", "tdb")             # act on the final frame embeddings (B, T, E)

# The paper's Table 8 (ViT-B, K = 4; MSR-VTT R@1 / SSv2 top-1): which CLIP layers the branch reads
# (1-based, ``STANConfig(levels=...)``). The last K consecutive layers are the default and the best.
TABLE8_LEVELS = {
    "9-12": ((9, 10, 11, 12), 46.9, 65.2),
    "interval 2": ((6, 8, 10, 12), 44.2, 61.1),
    "interval 3": ((3, 6, 9, 12), 43.5, 54.4),
    "1-4": ((1, 2, 3, 4), 43.4, 62.2),
    "5-8": ((5, 6, 7, 8), 43.9, 62.3),
}


def intermediate_block_forward(block: nn.Module, x: torch.Tensor, *, pre_attn: Optional[Callable] = None,
                               pre_mlp: Optional[Callable] = None, extra: Optional[torch.Tensor] = None,
                               fused: bool = True, record: Optional[list[torch.Tensor]] = None) -> torch.Tensor:
    """An open_clip ``ResidualAttentionBlock`` with an intermediate structure plugged into it.

    ``pre_attn`` / ``pre_mlp``: functions of the tokens (N, S, D) applied before the attention / the MLP
    (ST-Adapter's two positions). ``extra`` (N, E, D): tokens appended to the attention's input only and
    dropped after it (X-CLIP's message token: ``[x; m] + Attn(LN([x; m]))``, keep the first S rows).
    With none of them this is :func:`stanlib.model.branch.clip_block_forward`: the same operations in the same
    order, hence the same numbers. ``record`` receives the attention probabilities (capture).
    """
    mha = block.attn
    if pre_attn is not None:
        x = pre_attn(x)
    h = x if extra is None else torch.cat([x, extra], dim=1)
    y = multihead_attention(block.ln_1(h), mha.in_proj_weight, mha.in_proj_bias, mha.out_proj, mha.num_heads,
                            fused, record)
    x = x + block.ls_1(y if extra is None else y[:, :x.shape[1]])
    if pre_mlp is not None:
        x = pre_mlp(x)
    return x + block.ls_2(block.mlp(block.ln_2(x)))


# ----------------------------------------------------------------------------------------------
# Intermediate 1: ST-Adapter (Pan et al., NeurIPS 2022, arXiv 2206.13559)


class SeqTransf(nn.Module):
    """CLIP4Clip's posterior "seqTransf" baseline: a temporal transformer on the frame embeddings.

    ``(B, T, E) + frame position embedding -> transformer -> + residual -> mean over T``.
    """

    def __init__(self, dim: int, layers: int = 4, max_frames: int = MAX_FRAMES):
        super().__init__()
        from open_clip.transformer import Transformer

        self.frame_pos = nn.Embedding(max_frames, dim)
        nn.init.normal_(self.frame_pos.weight, std=0.01)
        self.transformer = Transformer(dim, layers, max(1, dim // 64))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        t = frames.shape[1]
        if t > self.frame_pos.num_embeddings:
            raise ValueError(f"{t} frames exceed the seqTransf frame embedding ({self.frame_pos.num_embeddings})")
        x = self.transformer(frames + self.frame_pos.weight[:t])
        return (x + frames).mean(dim=1)


class STAdapter(nn.Module):
    """One Spatio-Temporal Adapter on the patch tokens of a clip (Pan et al., Sec. 3, Eq. 1):

        ST-Adapter(X) = X + f(DWConv3D(X W_down)) W_up

    ``fc1`` = W_down (D -> r), ``conv`` = the depthwise 3D convolution over the (T, h, w) cube of
    each video (one filter per channel, kernel ``(3, 1, 1)`` in the released K400 and SSv2 configs:
    along time only), ``fc2`` = W_up (r -> D). As in the released code the CLS token bypasses the
    adapter, f is the identity (no activation between the convolution and W_up), and the
    convolution (weight and bias) and both linear biases start at zero, so the adapter is exactly
    the identity at initialisation while W_down and W_up start random (gradients reach the
    convolution from the first step).
    """

    def __init__(self, dim: int, width: int, grid: tuple[int, int], kernel: Sequence[int] = (3, 1, 1)):
        super().__init__()
        kernel = tuple(int(k) for k in kernel)
        if len(kernel) != 3 or any(k < 1 or k % 2 == 0 for k in kernel):
            raise ValueError(f"adapter_kernel must be three odd sizes (T, h, w), e.g. (3, 1, 1); got {kernel}")
        self.grid = tuple(grid)
        self.fc1 = nn.Linear(dim, width)
        self.conv = nn.Conv3d(width, width, kernel, padding=tuple(k // 2 for k in kernel), groups=width)
        self.fc2 = nn.Linear(width, dim)
        for p in (self.conv.weight, self.conv.bias, self.fc1.bias, self.fc2.bias):
            nn.init.zeros_(p)

    def forward(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """``x`` (B*T, 1+L, D), frames of a video consecutive -> same shape, patches adapted."""
        h, w = self.grid
        cube = rearrange(self.fc1(x[:, 1:]), "(b t) (h w) c -> b c t h w", t=t, h=h, w=w)
        y = rearrange(self.conv(cube), "b c t h w -> (b t) (h w) c")
        return torch.cat([x[:, :1], x[:, 1:] + self.fc2(y)], dim=1)


class STAdapters(nn.Module):
    """ST-Adapter as an intermediate structure: one adapter in every CLIP block.

    ``position="attn"`` (default; the paper's placement, Fig. 2): the adapter runs on the block's
    input, before its attention. ``"mlp"``: before the MLP (the released K400 ViT-B/16 "12x384"
    model); ``"both"``: two adapters per block (the released SSv2 "24x384" model). ``width``: the
    bottleneck r (released: 384 for ViT-B, i.e. D/2; default D/2). The video embedding is the mean
    of the frame embeddings, so at initialisation the model is exactly CLIP mean pooling.
    """

    def __init__(self, clip_visual: nn.Module, width: Optional[int] = None, kernel: Sequence[int] = (3, 1, 1),
                 position: str = "attn"):
        super().__init__()
        if position not in ("attn", "mlp", "both"):
            raise ValueError(f"adapter_position must be 'attn' (before attention, the paper), 'mlp' or 'both'; "
                             f"got {position!r}")
        dim = clip_visual.class_embedding.shape[0]
        width = width or dim // 2
        n = len(clip_visual.transformer.resblocks)
        grid = tuple(int(g) for g in clip_visual.grid_size)

        def make():
            return nn.ModuleList(STAdapter(dim, width, grid, kernel) for _ in range(n))

        self.adapter_pre_attn = make() if position in ("attn", "both") else None
        self.adapter_pre_mlp = make() if position in ("mlp", "both") else None

    def block_forward(self, i: int, b: int, t: int) -> Callable:
        """CLIP block ``i``'s forward ``(block, x, fused, record) -> x`` with its adapter(s)."""
        attn = self.adapter_pre_attn[i] if self.adapter_pre_attn is not None else None
        mlp = self.adapter_pre_mlp[i] if self.adapter_pre_mlp is not None else None
        return functools.partial(intermediate_block_forward,
                                 pre_attn=functools.partial(attn, t=t) if attn is not None else None,
                                 pre_mlp=functools.partial(mlp, t=t) if mlp is not None else None)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Frame embeddings (B, T, E) -> video embedding (B, E): the mean, as CLIP mean pooling."""
        return frames.mean(dim=1)


# ----------------------------------------------------------------------------------------------
# Intermediate 2: X-CLIP's cross-frame communication (Ni et al., ECCV 2022, arXiv 2208.02816)


class CrossFrameMessage(nn.Module):
    """X-CLIP's message tokens for one CLIP block (Ni et al., Sec. 3.2, cross-frame communication):

        m_t = W z_{t,cls}                      (a message token from each frame's CLS, ``message_fc``)
        M   = M + MHSA(LN(M)),  M = [m_1..m_T]  (cross-frame fusion: messages attend over the T frames)

    The fused message m_t is then appended to frame t's tokens for the block's own attention
    (intra-frame diffusion) and dropped before the MLP, as in the released code. Names
    (``message_fc``, ``message_ln``, ``message_attn``) are those of the released blocks; weights use
    PyTorch's default initialisation, as there.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.message_fc = nn.Linear(dim, dim)
        self.message_ln = nn.LayerNorm(dim)
        self.message_attn = Attention(dim, heads)

    def forward(self, cls: torch.Tensor) -> torch.Tensor:
        """Frame CLS tokens (B, T, D) -> fused messages (B, T, D)."""
        m = self.message_fc(cls)
        return m + self.message_attn(self.message_ln(m))


class CrossFrameMessages(nn.Module):
    """X-CLIP's video encoder without its text-side prompts: message tokens in every CLIP block (the
    "Msg-Token" of the STAN paper's Table 7), then the multi-frame integration transformer (MIT).

    Message attention carries no frame position, so the message tokens alone are blind to frame
    order (permuting the frames permutes the messages; the mean over frames undoes it). X-CLIP's
    order information comes from the MIT's temporal position embedding: ``mit_layers=1`` (the
    released default) keeps it; ``mit_layers=0`` averages the frame embeddings instead (message
    tokens only: an order-blind model, kept to show exactly that).
    """

    def __init__(self, clip_visual: nn.Module, embed_dim: int, mit_layers: int = 1):
        super().__init__()
        blocks = clip_visual.transformer.resblocks
        dim = clip_visual.class_embedding.shape[0]
        self.messages = nn.ModuleList(CrossFrameMessage(dim, blk.attn.num_heads) for blk in blocks)
        self.mit = MultiFrameIntegration(embed_dim, mit_layers) if mit_layers > 0 else None

    def block_forward(self, i: int, b: int, t: int) -> Callable:
        """CLIP block ``i``'s forward ``(block, x, fused, record) -> x`` with the message token appended."""
        module = self.messages[i]

        def forward(block: nn.Module, x: torch.Tensor, fused: bool = True, record=None) -> torch.Tensor:
            m = module(x[:, 0].reshape(b, t, -1))                 # (B, T, D): one message per frame
            return intermediate_block_forward(block, x, extra=m.reshape(b * t, 1, -1), fused=fused, record=record)

        return forward

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Frame embeddings (B, T, E) -> video embedding (B, E)."""
        return self.mit(frames) if self.mit is not None else frames.mean(dim=1)

    def attention_layers(self) -> list[tuple[str, Attention]]:
        """Attention over per-frame tokens, in forward order (for :func:`stanlib.viz.capture_attention`)."""
        layers = [(f"message attention, CLIP layer {i}", m.message_attn) for i, m in enumerate(self.messages)]
        return layers + (self.mit.attention_layers() if self.mit is not None else [])


# ----------------------------------------------------------------------------------------------
# Transformer blocks over per-frame tokens (X-CLIP's MIT, CLIP2Video's TDB), recordable


class FrameBlock(nn.Module):
    """A pre-LN transformer block ``x + Attn(LN(x))``, ``x + MLP(LN(x))`` on (N, S, D) sequences.

    Same parameter names as an open_clip/OpenAI CLIP block (``ln_1``, ``attn.in_proj_weight``,
    ``mlp.c_fc``...), so :meth:`from_clip_block` copies one; :class:`~stanlib.model.branch.Attention` makes
    its maps recordable.
    """

    def __init__(self, dim: int, heads: int, act: Callable[[], nn.Module] = nn.GELU, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(dim, hidden))
        self.mlp.add_module("gelu", act())
        self.mlp.add_module("c_proj", nn.Linear(hidden, dim))

    @classmethod
    def from_clip_block(cls, block: nn.Module) -> "FrameBlock":
        """A copy of a CLIP transformer block (its norms, attention weights, MLP and activation)."""
        dim = block.ln_1.normalized_shape[0]
        new = cls(dim, block.attn.num_heads)
        new.ln_1, new.ln_2, new.mlp = (copy.deepcopy(m) for m in (block.ln_1, block.ln_2, block.mlp))
        new.attn.load_state_dict(block.attn.state_dict(), strict=True)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


def _trunc_normal_init(module: nn.Module) -> None:
    """X-CLIP's initialisation of its new transformers: linear weights N(0, 0.02) truncated, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class MultiFrameIntegration(nn.Module):
    """X-CLIP's multi-frame integration transformer (MIT, Ni et al., Sec. 3.2) on frame embeddings:

        v = mean_t( Transformer(F + P)_t + F_t )

    ``F`` (B, T, E) the frame embeddings, ``P`` a learnable temporal position embedding (the
    released model sizes it to the clip's T; ours holds ``MAX_FRAMES``), 1 layer by default,
    QuickGELU, heads = E / 64, linear weights N(0, 0.02) truncated (the released initialisation).
    """

    def __init__(self, dim: int, layers: int = 1):
        super().__init__()
        from open_clip.transformer import QuickGELU

        self.positional_embedding = nn.Parameter(torch.empty(MAX_FRAMES, dim))
        nn.init.trunc_normal_(self.positional_embedding, std=0.02)
        self.resblocks = nn.ModuleList(FrameBlock(dim, max(1, dim // 64), QuickGELU) for _ in range(layers))
        _trunc_normal_init(self.resblocks)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        t = frames.shape[1]
        if t > MAX_FRAMES:
            raise ValueError(f"{t} frames exceed the MIT's temporal position embedding ({MAX_FRAMES})")
        x = frames + self.positional_embedding[:t]
        for block in self.resblocks:
            x = block(x)
        return (x + frames).mean(dim=1)

    def attention_layers(self) -> list[tuple[str, Attention]]:
        return [(f"MIT layer {i}", b.attn) for i, b in enumerate(self.resblocks)]


# ----------------------------------------------------------------------------------------------
# Posterior: CLIP2Video's Temporal Difference Block (Fang et al., 2021, arXiv 2106.11097)


class TemporalDifference(nn.Module):
    """CLIP2Video's Temporal Difference Block (TDB) in a temporal transformer on frame embeddings.

    Fang et al. (Sec. 3.2): adjacent-frame differences become difference-enhanced tokens that are
    inserted between the frame tokens of a posterior temporal transformer. With the released
    ``temporal_proj="sigmoid_selfA"`` and F (B, T, E) the frame embeddings, P the frame position
    embedding, Y the type embedding (frame / difference):

        d_t  = F_{t+1} - F_t + P_{t+1}                        t = 1..T-1
        D    = 2 * sigmoid( LN( Block(d) ) ) - 1              difference-level attention, in [-1, 1]
        S    = [F_1, D_1, F_2, D_2, ..., D_{T-1}, F_T]        (2T - 1 tokens)
        S'   = Transformer( S + P + Y )                       D_t takes position t, F_t position t
        v    = mean_t normalize( S'_{frames} + F )            the frame tokens' outputs, residual

    As released, the blocks (``frame2t_attention`` and the ``layers``-layer ``transformer``, 4 by
    default) and the position / type tables start from CLIP's text tower (its first layers and
    positional embedding) when its width equals the embedding width (all OpenAI CLIPs; otherwise
    fresh weights; layers past the text tower's depth are fresh too). The per-frame normalisation before the mean is theirs too (CLIP4Clip's).
    """

    def __init__(self, dim: int, layers: int = 4, text_tower: Optional[nn.Module] = None,
                 text_pos: Optional[torch.Tensor] = None):
        super().__init__()
        text_blocks = list(text_tower.resblocks) if text_tower is not None else []
        from_text = bool(text_blocks) and text_blocks[0].ln_1.normalized_shape[0] == dim
        self.frame_position_embeddings = nn.Embedding(MAX_FRAMES, dim)
        self.type_position_embeddings = nn.Embedding(2, dim)      # 0: difference token, 1: frame token
        nn.init.normal_(self.frame_position_embeddings.weight, std=0.01)
        nn.init.normal_(self.type_position_embeddings.weight, std=0.01)
        if from_text:  # CLIP2Video: blocks from the text tower's first layers (fresh past its depth)
            heads, act = text_blocks[0].attn.num_heads, type(text_blocks[0].mlp.gelu)
            self.frame2t_attention = FrameBlock.from_clip_block(text_blocks[0])
            self.transformer = nn.ModuleList(
                FrameBlock.from_clip_block(text_blocks[i]) if i < len(text_blocks) else FrameBlock(dim, heads, act)
                for i in range(layers))
            if text_pos is not None and text_pos.shape[-1] == dim:
                with torch.no_grad():
                    n = min(MAX_FRAMES, text_pos.shape[0])
                    self.frame_position_embeddings.weight[:n].copy_(text_pos[:n])
                    self.type_position_embeddings.weight.copy_(text_pos[:2])
        else:
            heads = max(1, dim // 64)
            self.frame2t_attention = FrameBlock(dim, heads)
            self.transformer = nn.ModuleList(FrameBlock(dim, heads) for _ in range(layers))
        self.trans_layernorm = nn.LayerNorm(dim)

    def differences(self, frames: torch.Tensor) -> torch.Tensor:
        """Difference-enhanced tokens D (B, T-1, E), each in [-1, 1]."""
        t = frames.shape[1]
        d = frames[:, 1:] - frames[:, :-1] + self.frame_position_embeddings.weight[1:t]
        return 2 * torch.sigmoid(self.trans_layernorm(self.frame2t_attention(d))) - 1

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Frame embeddings (B, T, E) -> video embedding (B, E)."""
        b, t, e = frames.shape
        if t > MAX_FRAMES:
            raise ValueError(f"{t} frames exceed the TDB frame position embedding ({MAX_FRAMES})")
        pos = self.frame_position_embeddings.weight[:t]
        kind = self.type_position_embeddings.weight
        x = frames + pos + kind[1]
        if t > 1:  # interleave: F_1, D_1, F_2, D_2, ..., D_{T-1}, F_T
            d = self.differences(frames) + pos[:t - 1] + kind[0]
            x = torch.cat([torch.stack([x[:, :-1], d], dim=2).reshape(b, 2 * (t - 1), e), x[:, -1:]], dim=1)
        for block in self.transformer:
            x = block(x)
        out = x[:, ::2] + frames                                   # the frame tokens' outputs + residual
        return (out / out.norm(dim=-1, keepdim=True)).mean(dim=1)

    def attention_layers(self) -> list[tuple[str, Attention]]:
        return ([("TDB difference attention", self.frame2t_attention.attn)]
                + [(f"TDB transformer layer {i}", b.attn) for i, b in enumerate(self.transformer)])


# ----------------------------------------------------------------------------------------------


def build_structure(arch: str, clip: nn.Module, config) -> Optional[nn.Module]:
    """The module a baseline ``arch`` keeps in ``STANModel.branch`` (None for ``meanpool``)."""
    visual = clip.visual
    embed_dim = int(visual.proj.shape[1])
    if arch == "seqtransf":
        return SeqTransf(embed_dim, config.seqtransf_layers)
    if arch == "tdb":
        return TemporalDifference(embed_dim, config.seqtransf_layers, clip.transformer,
                                  getattr(clip, "positional_embedding", None))
    if arch == "st-adapter":
        return STAdapters(visual, config.adapter_width, config.adapter_kernel, config.adapter_position)
    if arch == "xclip-msg":
        return CrossFrameMessages(visual, embed_dim, config.mit_layers)
    return None
