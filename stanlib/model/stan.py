"""The STAN video-text model: an untouched open_clip CLIP plus the STAN side branch.

``create_model(clip="ViT-B-32", temporal="attn", depth=4)`` is the one public factory. The data
flow is docs/architecture.md section 2: ``STANModel.encode_video`` runs CLIP on the frames, collects
the levels the branch reads, runs the branch on them and adds its video CLS to CLIP's frame CLS tokens.
Architectures (``arch``), the paper's Table 6 rows and baselines:

=============  ==========================================================================
``branch``     STAN (default). ``temporal=None``: no cross-frame; ``spatial=False``: no intra-frame;
               ``single_level=True``: the branch reads only level N-K.
``meanpool``   CLIP mean pooling (CLIP4Clip meanP); also chosen by ``temporal=None, spatial=False``.
``posterior``  K branch layers stacked on CLIP's final tokens; the embedding comes from them alone.
``seqtransf``  CLIP4Clip's posterior temporal transformer on the frame embeddings.
``tdb``        CLIP2Video's Temporal Difference Block (posterior, on the frame embeddings).
``st-adapter`` ST-Adapter in every CLIP block (intermediate; equals mean pooling at init).
``xclip-msg``  X-CLIP's cross-frame message tokens in every CLIP block (intermediate) + its MIT.
=============  ==========================================================================

The last three rows and the paper's three-structure comparison (Table 7) live in
:mod:`stanlib.model.baselines`. ``levels`` chooses the CLIP layers the branch reads (Table 8).

Explained in ``notebooks/02_build_stan.ipynb``.
"""
from __future__ import annotations

import functools
import math
from typing import Optional

import torch
import torch.nn.functional as F
from open_clip.transformer import text_global_pool
from torch import nn

from stanlib.model.baselines import INTERMEDIATE, SeqTransf, build_structure  # noqa: F401  (stanlib.model.SeqTransf)
from stanlib.model.branch import MAX_FRAMES, Attention, STANBranch, clip_block_forward  # noqa: F401
from stanlib.model.clip import create_clip
from stanlib.model.config import ARCHS, STANConfig, parse_levels  # noqa: F401  (stanlib.model.stan.STANConfig)
from stanlib.model.tokenizer import get_tokenizer


class STANModel(nn.Module):
    """CLIP (``self.clip``, never modified) + the STAN branch (``self.branch``)."""

    def __init__(self, config: STANConfig, clip: Optional[nn.Module] = None):
        super().__init__()
        self.config = config
        self.clip = clip if clip is not None else create_clip(config.clip, config.pretrained, config.quick_gelu)
        visual = self.clip.visual
        blocks = list(visual.transformer.resblocks)
        n = len(blocks)
        if config.arch in ("branch", "posterior") and not 1 <= config.depth <= n:
            raise ValueError(f"depth K={config.depth} must be between 1 and the {n} CLIP layers of {config.clip}")
        if config.levels is not None and config.levels[-1] > n:
            raise ValueError(f"levels {config.levels} go past the {n} CLIP layers of {config.clip} "
                             f"(levels are 1-based: 1..{n})")
        # 0-based indices of the CLIP blocks the branch reads, level k <- block branch_levels[k]
        self.branch_levels = ([v - 1 for v in config.levels] if config.levels is not None
                              else list(range(n - config.depth, n)) if config.arch == "branch" else [])
        if config.arch in ("branch", "posterior"):
            read = [blocks[i] for i in self.branch_levels] if config.arch == "branch" else blocks[n - config.depth:]
            self.branch = STANBranch(
                visual, read, temporal=config.temporal, spatial=config.spatial,
                spatial_mlp=config.spatial_mlp, conv_variant=config.conv_variant, drop_path=config.drop_path,
                fusion_proj=config.fusion_proj, pos_embed=config.pos_embed, first_cls=config.first_cls,
                order=config.order, single_level=config.single_level, time_embed=config.time_embed)
        else:  # meanpool (None) and the other structures of the paper's comparison (stanlib.model.baselines)
            self.branch = build_structure(config.arch, self.clip, config)
        scale = torch.tensor(math.log(config.logit_scale))
        if config.learnable_logit_scale:
            self.log_logit_scale = nn.Parameter(scale)
        else:
            self.register_buffer("log_logit_scale", scale, persistent=False)
        if config.context_length is None:
            config.context_length = int(self.clip.context_length)
        self.tokenizer = get_tokenizer(config.clip, config.context_length)
        self.grad_checkpointing = False
        self.clip_fused = True  # False: explicit softmax attention in CLIP's blocks too
        self.clip_record: Optional[list[torch.Tensor]] = None  # set by stanlib.viz.capture_attention

    # ------------------------------------------------------------------ properties and switches
    @property
    def image_size(self) -> int:
        return int(self.clip.visual.image_size[0])

    @property
    def embed_dim(self) -> int:
        return int(self.clip.visual.proj.shape[1])

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.exp()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute CLIP blocks (vision and text) and branch layers in the backward pass (less memory, ~30% more time)."""
        self.grad_checkpointing = enable
        self.clip.transformer.grad_checkpointing = enable  # the text tower (open_clip's own switch)
        if isinstance(self.branch, STANBranch):
            self.branch.grad_checkpointing = enable

    def set_fused_attention(self, enable: bool = True) -> None:
        """Fused SDPA (fast, default) or the explicit softmax path, in CLIP's blocks and the branch."""
        self.clip_fused = enable
        for m in self.modules():
            if isinstance(m, Attention):
                m.fused = enable

    def tokenize(self, texts, context_length: Optional[int] = None) -> torch.Tensor:
        return self.tokenizer(texts, context_length)

    # ------------------------------------------------------------------ encoders
    def _run_block(self, block: nn.Module, x: torch.Tensor, forward=None) -> torch.Tensor:
        """One CLIP block through our forward (same numbers as open_clip's, fused or explicit/recording).

        Even on the fused path we skip open_clip's ``nn.MultiheadAttention``: it transposes and copies
        its input around the kernel, and our SDPA path was ~20% faster (docs/benchmarks.md).
        ``forward``: the block's forward with an intermediate structure plugged in (``st-adapter``,
        ``xclip-msg``); default :func:`~stanlib.model.branch.clip_block_forward`.
        """
        fn = functools.partial(forward or clip_block_forward, block, fused=self.clip_fused, record=self.clip_record)
        if self.grad_checkpointing and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(fn, x, use_reentrant=False)
        return fn(x)

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame CLIP embeddings (B, T, E): what mean pooling averages.

        For the intermediate structures (``st-adapter``, ``xclip-msg``) CLIP's blocks run with the
        adapters / message tokens inside them, so the frames of a clip see each other.
        """
        b, t = frames.shape[:2]
        visual = self.clip.visual
        inside = self.branch if self.config.arch in INTERMEDIATE else None
        x = visual._embeds(frames.flatten(0, 1))
        for i, block in enumerate(visual.transformer.resblocks):
            x = self._run_block(block, x, inside.block_forward(i, b, t) if inside is not None else None)
        return (visual.ln_post(x[:, 0]) @ visual.proj).view(b, t, -1)

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """Video embedding (B, E) from CLIP-normalised frames (B, T, 3, H, W). Not L2-normalised."""
        if frames.ndim != 5:
            raise ValueError(f"frames must be (B, T, 3, H, W), got shape {tuple(frames.shape)}")
        b, t = frames.shape[:2]
        if self.branch is not None and t > MAX_FRAMES and self.config.arch != "st-adapter":
            raise ValueError(f"clip has {t} frames but the STAN time embedding holds at most {MAX_FRAMES} "
                             "(nn.Embedding(64, D), as in the authors' checkpoints); sample <= 64 frames")
        arch = self.config.arch
        if arch not in ("branch", "posterior"):                     # meanpool and stanlib.model.baselines
            per_frame = self.encode_frames(frames)
            return per_frame.mean(dim=1) if arch == "meanpool" else self.branch(per_frame)

        visual = self.clip.visual
        reads = set(self.branch_levels)                              # CLIP blocks the branch reads (last K default)
        x = visual._embeds(frames.flatten(0, 1))                     # (B*T, 1+L, D)
        levels = []
        for i, block in enumerate(visual.transformer.resblocks):
            x = self._run_block(block, x)                            # CLIP itself is never modified
            if i in reads:
                levels.append(x.view(b, t, *x.shape[1:]))            # level k: (B, T, 1+L, D)
        if arch == "posterior":                                      # K layers stacked on the final tokens
            cls = self.branch([x.view(b, t, *x.shape[1:])], visual.class_embedding, visual.positional_embedding)
            return visual.ln_post(cls) @ visual.proj                 # embedding from the branch alone
        cls = self.branch(levels, visual.class_embedding, visual.positional_embedding)  # video CLS (B, D)
        frame_cls = x[:, 0].view(b, t, -1) + cls[:, None]            # video CLS added to every frame CLS
        return (visual.ln_post(frame_cls) @ visual.proj).mean(dim=1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Text embedding (B, E) from token ids (B, C), C <= the CLIP's context length (77 for OpenAI).

        Shorter recipes (32 tokens) run the tower on their C positions only: the causal mask means
        positions after <eot> cannot change the pooled <eot> feature, so this equals right-padding
        to the full context (what other pooling types still do) at a fraction of the cost (77 -> 32
        tokens: 2.4x fewer text FLOPs).
        """
        clip, n, c = self.clip, self.clip.context_length, tokens.shape[-1]
        if c > n:
            raise ValueError(f"{c} text tokens exceed {self.config.clip}'s context length {n}")
        if c < n and clip.attn_mask is not None and getattr(clip, "text_pool_type", "argmax") in ("argmax", "eos"):
            cast = clip.transformer.get_cast_dtype()  # open_clip's encode_text, on the first C positions
            x = clip.token_embedding(tokens).to(cast) + clip.positional_embedding[:c].to(cast)
            x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask[:c, :c]))
            x = text_global_pool(x, tokens, clip.text_pool_type, eos_token_id=getattr(clip, "text_eos_id", None))
            return clip.text_projection(x) if isinstance(clip.text_projection, nn.Linear) else x @ clip.text_projection
        if c < n:
            tokens = F.pad(tokens, (0, n - c))
        return clip.encode_text(tokens)

    def forward(self, frames: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Video-text logits (B_video, B_text): logit scale x cosine similarity."""
        v = F.normalize(self.encode_video(frames), dim=-1)
        t = F.normalize(self.encode_text(tokens), dim=-1)
        return self.logit_scale * v @ t.t()

    # ------------------------------------------------------------------ bookkeeping
    def save_pretrained(self, directory, dtype: Optional[torch.dtype] = None) -> None:
        """Write ``model.safetensors`` + ``config.json`` (no pickles); reload with ``stanlib.from_pretrained``.
        ``dtype=torch.float16`` halves the file (floating tensors stored in that type)."""
        from stanlib.weights.io import save_pretrained

        save_pretrained(self, directory, dtype)

    def push_to_hub(self, repo_id: str, **kwargs):
        """Upload the ``save_pretrained`` files to a Hugging Face Hub repository."""
        from stanlib.weights.hub import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    def num_params(self) -> dict[str, int]:
        """Parameter counts: CLIP vision, CLIP text, branch, total."""
        vis = sum(p.numel() for p in self.clip.visual.parameters())
        total_clip = sum(p.numel() for p in self.clip.parameters())
        br = sum(p.numel() for p in self.branch.parameters()) if self.branch is not None else 0
        return {"clip_visual": vis, "clip_text": total_clip - vis, "branch": br, "total": total_clip + br}


def create_model(clip: str = "ViT-B-32", pretrained: Optional[str] = None, temporal: Optional[str] = "attn",
                 depth: int = 4, **kwargs) -> STANModel:
    """Build a STAN video-text model (or a baseline) on an open_clip CLIP.

    Args:
        clip: open_clip config: ``ViT-B-32``, ``ViT-B-16``, ``ViT-L-14``, ``stan-tiny``...
        pretrained: CLIP weights: None (random), an open_clip tag (``"openai"``), or a file path.
            The branch's spatial modules are copied from the loaded CLIP, so load first (we do).
        temporal: ``"attn"`` (STAN-self), ``"conv"`` (STAN-conv), or None (no cross-frame module).
        depth: K, the number of branch layers / CLIP levels (paper: 4; SSv2: 6).
        **kwargs: any other :class:`STANConfig` field (``arch``, ``spatial``, ``single_level``, ``levels``...).
    """
    return STANModel(STANConfig(clip=clip, pretrained=pretrained, temporal=temporal, depth=depth, **kwargs))
