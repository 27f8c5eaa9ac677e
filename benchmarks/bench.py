"""Benchmarks: speed, memory and FLOP utilisation of STAN models (``python benchmarks/bench.py ...``).

A script of the repository, not part of the installed package: it imports ``stanlib`` like any other
user of the library. Run it from the repository root::

    python benchmarks/bench.py model --clip ViT-B-32 --frames 12 --batch 8 [--device cuda] [--compile]
        [--checkpointing] [--compare] [--temporal attn|conv|none] [--depth K] [--repeats N]
    python benchmarks/bench.py memory --clip ViT-B-16 --frames 8 --batch 4  # checkpointing on/off, peak memory
    python benchmarks/bench.py scaling --clips ViT-B-32 ViT-B-16            # cost vs frames and vs depth K
    python benchmarks/bench.py regroup                                      # token regrouping (copies or views)
    python benchmarks/bench.py gpu [--out DIR]                              # the GPU measurement set (< 5 min)
    python benchmarks/bench.py data ...                                     # decoding (stanlib data bench)

What is measured (tables and the commands that made them: ``docs/benchmarks.md``):

- **forward**: video + text features, eval mode, no autograd;
- **train step**: zero grads, video + text features, symmetric InfoNCE (:class:`stanlib.engine.losses.ContrastiveLoss`),
  backward, AdamW step (``fused=True`` where PyTorch has it: one pass over the weights instead of ~10);
- **time**: median of ``--repeats`` calls after ``--warmup`` calls; several variants are interleaved
  call by call, so a busy machine slows them alike;
- **peak memory** of a train step: weights + grads + AdamW state + activations. GPU:
  ``torch.cuda.max_memory_allocated``. CPU: the bytes of the resting tensors (weights, AdamW state)
  plus the rise of the process's peak resident memory during the step (Linux ``VmHWM``, reset
  before it); during that step large blocks are returned to the system when freed (``mallopt``),
  so resident memory follows the live tensors. "step" = the rise alone: activations and gradients;
- **FLOPs**: per-clip GFLOPs in the paper's convention (:func:`stanlib.model.flops.count_gmacs`: MACs of
  linear/conv layers); throughput counts 2 FLOPs per MAC including attention matmuls and the text
  tower, train step = 3x forward (recomputation under checkpointing not counted, as in MFU);
- **MFU** (GPU): achieved FLOP/s / the card's dense bf16 peak (:data:`GPU_PEAK_TFLOPS`).

On a CPU shared with other jobs, use ``--threads 1``: with more OpenMP threads than free cores
every parallel region waits for a descheduled thread (here a 0.1 ms op took 24 ms with 2 threads).
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import gc
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

if importlib.util.find_spec("stanlib") is None:  # a checkout without an installed stanlib: use its sources
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stanlib.engine.optim import Stepper, build_optimizer
from stanlib.model.flops import count_gmacs
from stanlib.engine.losses import ContrastiveLoss
from stanlib.model import STANModel, create_model

MIB = 2 ** 20
PROG = "python benchmarks/bench.py"  # how the benchmarks are run (usage lines)
SCRIPT = Path(__file__).resolve()

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from the vendors' datasheets. First substring of
# torch.cuda.get_device_name() that matches wins, so longer names come first. T4 and V100 have no bf16:
# their fp16 peak is listed (and fp16 autocast is used). Pass --peak-tflops for any other card.
GPU_PEAK_TFLOPS: list[tuple[str, float]] = [
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("H800", 989.0),
    ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0),
    ("A10G", 125.0), ("A10", 125.0), ("A6000", 155.0), ("RTX 4090", 165.0), ("RTX 3090", 71.0),
    ("V100", 125.0), ("T4", 65.0),
]


def gpu_peak_tflops(name: str) -> Optional[float]:
    """The card's dense bf16 (fp16 for T4/V100) peak in TFLOP/s, or None if unknown."""
    for key, peak in GPU_PEAK_TFLOPS:
        if key.lower() in name.lower():
            return peak
    return None


# =========================================================================== CPU memory (Linux)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


@functools.lru_cache(maxsize=None)
def _libc() -> Optional[ctypes.CDLL]:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): resident memory is then only approximate
        return None


def _status_kib(key: str) -> Optional[int]:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status in KiB (None off Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


@contextlib.contextmanager
def cpu_memory_tracking():
    """Make resident memory follow live tensors while measuring: blocks >= 64 KiB are mmapped and
    returned to the system when freed. Costs ~15% speed (page faults), so timing runs outside it,
    with glibc's usual large-block reuse (threshold 32 MiB, what its dynamic mode settles at)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 64 * 1024)
    try:
        yield
    finally:
        if libc is not None:
            libc.mallopt(_M_MMAP_THRESHOLD, 32 * MIB)
            libc.mallopt(_M_TRIM_THRESHOLD, 64 * MIB)


def release_memory() -> None:
    gc.collect()
    if _libc() is not None:
        _libc().malloc_trim(0)


def resident_bytes() -> int:
    kib = _status_kib("VmRSS")
    if kib is None:  # not Linux: fall back to the lifetime peak (coarse, but never wrong by omission)
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024


def _reset_cpu_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident size (Linux >= 4.0)
        return True
    except OSError:
        return False


def tensor_bytes(model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None) -> int:
    """Bytes of the weights, buffers, gradients and optimiser state (each storage counted once)."""
    seen: dict[int, int] = {}

    def add(t):
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    for t in list(model.parameters()) + list(model.buffers()):
        add(t)
        add(t.grad)
    for state in (optimizer.state.values() if optimizer is not None else ()):
        for t in state.values():
            add(t)
    return sum(seen.values())


def saved_activation_bytes(fn: Callable[[], object]) -> int:
    """Bytes autograd keeps for the backward pass while ``fn`` runs (each storage once; not the transients).

    Deterministic, unlike resident memory: what gradient checkpointing is meant to shrink. Tensors
    saved inside a checkpointed region are dropped by the checkpoint and do not show up here.
    """
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values())


@dataclass
class Memory:
    peak_mib: float   # weights + grads + optimiser state + activations at the step's peak
    step_mib: float   # the part above the state before the step (activations, gradients)
    exact: bool = True  # False: lifetime peak (no resettable counter on this system)


def measure_memory(fn: Callable[[], None], device: torch.device, resting: int = 0) -> Memory:
    """Peak memory of one call of ``fn``; ``resting``: bytes of the tensors held before it (CPU only).

    GPU: the allocator's own counters. CPU: the rise of the process's peak resident memory during
    the call (Linux ``VmHWM``, reset first) added to ``resting`` (see :func:`tensor_bytes`).
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return Memory(peak / MIB, (peak - before) / MIB)
    with cpu_memory_tracking():
        release_memory()
        before = resident_bytes()
        exact = _reset_cpu_peak()
        fn()
        kib = _status_kib("VmHWM") if exact else None
        step = (kib * 1024 if kib is not None else resident_bytes()) - before
    return Memory((resting + step) / MIB, step / MIB, exact and kib is not None)


# =========================================================================== configurations
@dataclass
class Setup:
    """One benchmark configuration."""

    clip: str = "ViT-B-32"
    frames: int = 12
    batch: int = 8
    temporal: Optional[str] = "attn"
    depth: int = 4
    arch: Optional[str] = None          # None: "branch" (or "meanpool" when temporal is None and depth 0)
    context: int = 32                   # text tokens (MSR-VTT recipe)
    device: str = "cpu"
    amp: str = "auto"                   # auto: bf16 on CUDA (fp16 where no bf16), fp32 on CPU | fp32 | bf16 | fp16
    fused: bool = True                  # fused SDPA (fast path) or explicit softmax attention
    compile: bool = False
    compile_backend: str = "inductor"
    checkpointing: bool = False
    freeze_text: bool = False
    adamw: str = "fused"                # fused | foreach

    def model_kwargs(self) -> dict:
        kw = {"clip": self.clip, "temporal": self.temporal, "depth": max(self.depth, 1)}
        if self.arch is not None:
            kw["arch"] = self.arch
        elif self.temporal is None and self.depth == 0:
            kw["arch"] = "meanpool"
        return kw

    @property
    def amp_dtype(self) -> Optional[torch.dtype]:
        mode = self.amp
        if mode == "auto":
            if not self.device.startswith("cuda"):
                return None
            mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[mode]

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]

    def describe(self) -> str:
        arch = self.model_kwargs().get("arch", "branch")
        model = f"{self.clip} {arch}" if arch != "branch" else f"{self.clip} temporal={self.temporal} K={self.depth}"
        return f"{model}, {self.frames} frames x batch {self.batch}"


def build_model(setup: Setup) -> STANModel:
    """The model on its device (initialised there directly: no CPU copy of a big model)."""
    with torch.device(setup.device):
        model = create_model(**setup.model_kwargs())
    return model


def freeze_text_tower(model: STANModel) -> int:
    """Freeze CLIP's text tower (recognition with cached class embeddings); returns the frozen parameter count.

    Saves the text backward pass and its AdamW state (63M parameters for ViT-B). Everything under
    ``clip.`` that is not ``clip.visual.`` belongs to the text side (token/positional embeddings,
    transformer, ``ln_final``, ``text_projection``, CLIP's own logit scale).
    """
    frozen = 0
    for name, p in model.clip.named_parameters():
        if not name.startswith("visual.") and p.requires_grad:
            p.requires_grad_(False)
            frozen += p.numel()
    return frozen


def make_optimizer(model: nn.Module, impl: str = "fused") -> torch.optim.Optimizer:
    """The training engine's AdamW (:func:`stanlib.engine.build_optimizer`, STAN's betas/eps, no decay on
    norms/embeddings); ``fused`` (one kernel per step) where supported, else multi-tensor."""
    return build_optimizer(model, lr=1e-6, weight_decay=0.02, lr_mult=10.0, fused=impl == "fused")


def prime_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Allocate AdamW's state now (zero gradients, one step), so the first measured step is a steady one."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad = torch.zeros_like(p)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def make_inputs(model: STANModel, setup: Setup, batch: Optional[int] = None, seed: int = 0):
    """Random CLIP-normalised-like frames (B, T, 3, H, W) and token ids (B, C) on the setup's device."""
    g = torch.Generator().manual_seed(seed)
    b, size = batch or setup.batch, model.image_size
    context = min(setup.context, int(model.clip.context_length))
    vocab = model.clip.token_embedding.num_embeddings
    frames = torch.randn(b, setup.frames, 3, size, size, generator=g)
    tokens = torch.randint(1, vocab, (b, context), generator=g)
    return frames.to(setup.device), tokens.to(setup.device)


def _autocast(setup: Setup):
    dtype = setup.amp_dtype
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(setup.device).type, dtype=dtype)


def _features_fn(model: STANModel, setup: Setup) -> Callable:
    def features(frames: torch.Tensor, tokens: torch.Tensor):
        return model.encode_video(frames), model.encode_text(tokens)
    if setup.compile:
        return torch.compile(features, backend=setup.compile_backend)
    return features


def _apply_switches(model: STANModel, setup: Setup) -> None:
    model.set_fused_attention(setup.fused)
    model.set_grad_checkpointing(setup.checkpointing)


def forward_step(model: STANModel, setup: Setup, frames, tokens, features: Optional[Callable] = None) -> Callable:
    """A callable running one inference forward (video + text features) under the setup's switches."""
    features = features or _features_fn(model, setup)

    def run():
        _apply_switches(model, setup)
        model.eval()
        with torch.no_grad(), _autocast(setup):
            features(frames, tokens)
    return run


def train_step(model: STANModel, setup: Setup, optimizer, frames, tokens,
               features: Optional[Callable] = None) -> Callable:
    """A callable running one optimiser step: features, InfoNCE, backward, AdamW."""
    features = features or _features_fn(model, setup)
    loss_fn = ContrastiveLoss(logit_scale=float(model.logit_scale))
    stepper = Stepper(optimizer, scaler=setup.amp_dtype == torch.float16)   # the training engine's step

    def run():
        _apply_switches(model, setup)
        model.train()
        with _autocast(setup):
            video, text = features(frames, tokens)
            loss = loss_fn(video, text, model.logit_scale)
        stepper.step(loss)
    return run


def time_interleaved(fns: dict[str, Callable[[], None]], repeats: int, warmup: int, device: torch.device,
                     desc: str = "timing") -> dict[str, list[float]]:
    """Seconds per call of each function: ``warmup`` untimed calls each, then ``repeats`` rounds, one call each."""
    from tqdm import tqdm

    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    times: dict[str, list[float]] = {k: [] for k in fns}
    bar = tqdm(total=len(fns) * (warmup + repeats), desc=desc, leave=False, file=sys.stderr)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            bar.update()
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
            bar.update()
    bar.close()
    return times


# =========================================================================== FLOPs
@functools.lru_cache(maxsize=64)
def _gmacs(model_kwargs: tuple, frames: int, context: int) -> dict[str, float]:
    with torch.device("meta"):  # no weights allocated
        model = create_model(**dict(model_kwargs))
    video = count_gmacs(model, frames)
    counter = FlopCounterMode(display=False)
    tokens = torch.zeros(1, context, dtype=torch.long, device="meta")
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model.encode_text(tokens)
    return {**video, "text_gmacs": counter.get_total_flops() / 2 / 1e9}


def flops(setup: Setup) -> dict[str, float]:
    """Per-clip GMACs (paper convention) and the FLOPs of one forward / train step of the whole batch."""
    context = min(setup.context, _context_length(setup.clip))
    g = _gmacs(tuple(sorted(setup.model_kwargs().items())), setup.frames, context)
    per_clip_fwd = 2e9 * (g["gmacs_with_attention"] + g["text_gmacs"])
    text_train = 1 if setup.freeze_text else 3  # a frozen text tower has no backward pass
    per_clip_train = 2e9 * (3 * g["gmacs_with_attention"] + text_train * g["text_gmacs"])
    return {**g, "forward_flop": per_clip_fwd * setup.batch, "train_flop": per_clip_train * setup.batch}


@functools.lru_cache(maxsize=None)
def _context_length(clip: str) -> int:
    import open_clip

    return int(open_clip.get_model_config(clip)["text_cfg"].get("context_length", 77))


# =========================================================================== one configuration
@dataclass
class Result:
    label: str
    setup: Setup
    forward_s: list[float] = field(default_factory=list)
    train_s: list[float] = field(default_factory=list)
    memory: Optional[Memory] = None
    flops: dict = field(default_factory=dict)
    compile_s: Optional[float] = None
    peak_tflops: Optional[float] = None
    saved_bytes: Optional[int] = None  # autograd-saved activations of one forward (bench memory)

    @staticmethod
    def _median(xs: list[float]) -> Optional[float]:
        return statistics.median(xs) if xs else None

    @property
    def forward(self) -> Optional[float]:
        return self._median(self.forward_s)

    @property
    def train(self) -> Optional[float]:
        return self._median(self.train_s)

    def clips_per_s(self, which: str = "train") -> Optional[float]:
        t = self.train if which == "train" else self.forward
        return self.setup.batch / t if t else None

    def tflops(self, which: str = "train") -> Optional[float]:
        t = self.train if which == "train" else self.forward
        return self.flops[f"{which}_flop"] / t / 1e12 if t and self.flops else None

    def mfu(self, which: str = "train") -> Optional[float]:
        achieved = self.tflops(which)
        return achieved / self.peak_tflops if achieved and self.peak_tflops else None

    def to_dict(self) -> dict:
        return {"label": self.label, "setup": asdict(self.setup), "forward_s": self.forward_s,
                "train_s": self.train_s, "forward_median_s": self.forward, "train_median_s": self.train,
                "memory": asdict(self.memory) if self.memory else None, "flops": self.flops,
                "compile_s": self.compile_s, "train_tflops": self.tflops("train"),
                "forward_tflops": self.tflops("forward"), "mfu": self.mfu("train"),
                "train_clips_per_s": self.clips_per_s("train"),
                "forward_clips_per_s": self.clips_per_s("forward"), "saved_activation_bytes": self.saved_bytes}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        return f"{names[0]}, {len(names)} cores"
    except (OSError, IndexError):
        return platform.processor() or platform.machine()


def device_info(device: torch.device) -> dict:
    """The device's name (what the tables are labelled with) and its bf16 peak, if known."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return {"device": name, "peak_tflops": gpu_peak_tflops(name)}
    return {"device": f"CPU {_cpu_name()}, {torch.get_num_threads()} torch threads", "peak_tflops": None}


def run_variants(setups: dict[str, Setup], what: Sequence[str] = ("forward", "train"), repeats: int = 3,
                 warmup: int = 1, memory: bool = True, model: Optional[STANModel] = None,
                 peak_tflops: Optional[float] = None) -> list[Result]:
    """Measure several variants of ONE model (same weights; switches differ), interleaved call by call."""
    first = next(iter(setups.values()))
    device = torch.device(first.device)
    model = model if model is not None else build_model(first)
    if first.freeze_text:
        freeze_text_tower(model)
    frames, tokens = make_inputs(model, first)
    optimizer = make_optimizer(model, first.adamw) if "train" in what else None
    if optimizer is not None:
        prime_optimizer(optimizer)
    peak = peak_tflops or device_info(device)["peak_tflops"]
    results = {k: Result(k, s, flops=flops(s), peak_tflops=peak) for k, s in setups.items()}
    for which in what:
        fns = {}
        for k, s in setups.items():
            feats = _features_fn(model, s)
            fn = (forward_step(model, s, frames, tokens, feats) if which == "forward"
                  else train_step(model, s, optimizer, frames, tokens, feats))
            if s.compile:  # first call compiles: time it separately
                t0 = time.perf_counter()
                fn()
                results[k].compile_s = (results[k].compile_s or 0.0) + time.perf_counter() - t0
            fns[k] = fn
        times = time_interleaved(fns, repeats, warmup, device, desc=which)
        for k, ts in times.items():
            setattr(results[k], f"{which}_s", ts)
        if memory and which == "train":
            for k, fn in fns.items():
                optimizer.zero_grad(set_to_none=True)
                results[k].memory = measure_memory(fn, device, tensor_bytes(model, optimizer))
    return list(results.values())


def _fmt(x: Optional[float], spec: str = ".3f", none: str = "-") -> str:
    return none if x is None else format(x, spec)


def print_result(r: Result, info: dict) -> None:
    s, f = r.setup, r.flops
    print(f"bench model: {s.describe()} | {info['device']} | {s.precision} | "
          f"{'fused' if s.fused else 'explicit'} attention{' | compiled' if s.compile else ''}"
          f"{' | checkpointing' if s.checkpointing else ''}{' | text frozen' if s.freeze_text else ''}")
    print(f"  GFLOPs per clip: {f['gmacs']:.1f} (paper convention: linear/conv MACs of the video tower); "
          f"+attention matmuls {f['gmacs_with_attention']:.1f}; text tower {f['text_gmacs']:.2f}")
    if r.compile_s is not None:
        print(f"  compile time: {r.compile_s:.1f} s")
    for which, label in (("forward", "forward"), ("train", "train step")):
        t = getattr(r, which)
        if t is None:
            continue
        mfu = r.mfu(which)
        print(f"  {label:<11} {t:9.4f} s (median of {len(getattr(r, which + '_s'))})  "
              f"{r.clips_per_s(which):8.2f} clips/s  {r.tflops(which):7.3f} TFLOP/s  "
              f"MFU {_fmt(mfu * 100 if mfu else None, '.1f')}{'%' if mfu else ''}")
    if r.memory is not None:
        m = r.memory
        print(f"  peak memory (train step): {m.peak_mib:.0f} MiB (weights + grads + AdamW state + activations); "
              f"{m.step_mib:.0f} MiB above the resting state{'' if m.exact else ' (lifetime peak: approximate)'}")


def markdown_table(results: list[Result], info: dict, ratio_to: Optional[str] = None) -> str:
    """Results as a markdown table (the format of docs/benchmarks.md)."""
    head = ("| variant | model | precision | forward s | train step s | train clips/s | train TFLOP/s "
            "| MFU | peak MiB | step MiB |" + (" speed-up (train) |" if ratio_to else ""))
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        # the reference row of the same model (a table may hold several models, e.g. B/32 and B/16)
        base = next((b for b in results if b.label == ratio_to and b.setup.describe() == r.setup.describe()),
                    next((b for b in results if b.label == ratio_to), None))
        mfu = r.mfu()
        cells = [r.label, r.setup.describe(), r.setup.precision, _fmt(r.forward), _fmt(r.train),
                 _fmt(r.clips_per_s(), ".2f"), _fmt(r.tflops(), ".3f"), _fmt(mfu * 100 if mfu else None, ".1f"),
                 _fmt(r.memory.peak_mib if r.memory else None, ".0f"),
                 _fmt(r.memory.step_mib if r.memory else None, ".0f")]
        if ratio_to:
            cells.append(_fmt(base.train / r.train if base and base.train and r.train else None, ".2f") + "x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# =========================================================================== fused vs explicit
def output_difference(model: STANModel, setup: Setup, batch: int = 2) -> dict[str, float]:
    """Max differences between the explicit and the fused path (eval mode: no drop-path noise), fp32.

    Compares the logits, the video embeddings and every parameter gradient of the InfoNCE loss on
    the first ``batch`` clips.
    """
    frames, tokens = make_inputs(model, setup, batch=batch, seed=1)
    loss_fn = ContrastiveLoss(logit_scale=float(model.logit_scale))
    model.eval()
    model.set_grad_checkpointing(False)
    outs = {}
    for fused in (False, True):
        model.set_fused_attention(fused)
        model.zero_grad(set_to_none=True)
        video, text = model.encode_video(frames), model.encode_text(tokens)
        loss_fn(video, text, model.logit_scale).backward()
        logits = model.logit_scale * F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).t()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        outs[fused] = (video.detach(), logits.detach(), grads)
    model.zero_grad(set_to_none=True)
    model.set_fused_attention(True)
    (ve, le, ge), (vf, lf, gf) = outs[False], outs[True]
    grad_rel = max(((ge[n] - gf[n]).abs().max() / ge[n].abs().max().clamp_min(1e-12)).item() for n in ge)
    return {"logits": (le - lf).abs().max().item(),
            "video_embedding": (ve - vf).abs().max().item(),
            "video_embedding_rel": ((ve - vf).abs().max() / ve.abs().max()).item(),
            "gradients_rel": grad_rel}


def bf16_difference(model: STANModel, setup: Setup, batch: int = 2) -> dict[str, float]:
    """How far bf16 autocast (fused path) lands from fp32 (explicit path): eval mode, no grad."""
    frames, tokens = make_inputs(model, setup, batch=batch, seed=1)
    model.eval()
    out = {}
    for fused, amp in ((False, "fp32"), (True, "bf16")):
        model.set_fused_attention(fused)
        with torch.no_grad(), _autocast(replace(setup, amp=amp)):
            out[amp] = (model.encode_video(frames).float(), model(frames, tokens).float())
    model.set_fused_attention(True)
    (v32, l32), (v16, l16) = out["fp32"], out["bf16"]
    return {"bf16_logits": (l32 - l16).abs().max().item(),
            "bf16_video_embedding_rel": ((v32 - v16).abs().max() / v32.abs().max()).item()}


def compare(setup: Setup, repeats: int, warmup: int, what: Sequence[str], check_batch: int = 2,
            peak_tflops: Optional[float] = None, add_bf16: bool = False) -> tuple[list[Result], dict]:
    """Explicit attention vs the fast path, one process, same weights, interleaved.

    Extra rows: the compiled fast path (``setup.compile``); both paths under bf16 autocast
    (``add_bf16``: on a CPU with AMX, bf16 matmuls run several times faster than fp32).
    """
    variants = {"explicit attention": replace(setup, fused=False, compile=False),
                "fused (fast path)": replace(setup, fused=True, compile=False)}
    if setup.compile:
        variants["fused + torch.compile"] = replace(setup, fused=True, compile=True)
    if add_bf16 and setup.precision != "bf16":
        variants["explicit attention, bf16 autocast"] = replace(setup, fused=False, compile=False, amp="bf16")
        variants["fused, bf16 autocast"] = replace(setup, fused=True, compile=False, amp="bf16")
    model = build_model(setup)
    diff = output_difference(model, replace(setup, amp="fp32"), batch=min(check_batch, setup.batch))
    if add_bf16:
        diff.update(bf16_difference(model, setup, batch=min(check_batch, setup.batch)))
    results = run_variants(variants, what, repeats, warmup, model=model, peak_tflops=peak_tflops)
    return results, diff


# =========================================================================== what dominates
_CATEGORIES = [  # (category, substrings of aten op names), first match wins
    ("matmul (linear layers)", ("addmm", "aten::mm", "matmul", "linear")),
    ("attention kernels", ("scaled_dot_product", "flash", "efficient_attention", "softmax", "bmm")),
    ("convolution", ("conv",)),
    ("layer norm", ("layer_norm",)),
    ("activation (GELU)", ("gelu", "sigmoid", "silu")),
    ("optimizer", ("adam", "_fused", "foreach", "lerp", "addcdiv", "addcmul", "sqrt")),
    ("copies / layout", ("copy_", "cat", "contiguous", "clone", "_to_copy")),
    ("elementwise / reductions", ("add", "mul", "div", "sum", "mean", "fill", "zero", "where", "sub")),
]


def profile_breakdown(fn: Callable[[], None]) -> list[tuple[str, float, float]]:
    """Where one call's time goes: (category, seconds, share) from the profiler's self times."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    totals: dict[str, float] = {}
    for ev in prof.key_averages():
        name = ev.key.lower()
        if not name.startswith("aten::") and "adam" not in name:
            continue
        cat = next((c for c, keys in _CATEGORIES if any(k in name for k in keys)), "other aten ops")
        totals[cat] = totals.get(cat, 0.0) + ev.self_cpu_time_total / 1e6
    total = sum(totals.values()) or 1.0
    return sorted(((c, s, s / total) for c, s in totals.items()), key=lambda x: -x[1])


# =========================================================================== gradient checkpointing memory
def _child_main(argv: list[str]) -> int:
    """``python benchmarks/bench.py _child '<json Setup>' [threads]``: one train step in a clean process -> JSON."""
    setup = Setup(**json.loads(argv[0]))
    if len(argv) > 1 and int(argv[1]) > 0:
        torch.set_num_threads(int(argv[1]))
    model = build_model(setup)
    result = run_variants({"step": setup}, what=("train",), repeats=1, warmup=0, model=model)[0].to_dict()
    frames, tokens = make_inputs(model, setup)
    model.train()
    with _autocast(setup):
        result["saved_activation_bytes"] = saved_activation_bytes(
            lambda: (model.encode_video(frames), model.encode_text(tokens)))
    print("RESULT " + json.dumps(result))
    return 0


def run_in_subprocess(setup: Setup, threads: int = 0) -> Result:
    """One train step (time + peak memory) in a fresh Python process: nothing left over from earlier work."""
    cmd = [sys.executable, str(SCRIPT), "_child", json.dumps(asdict(setup)), str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"benchmark subprocess failed ({setup.describe()}):\n{proc.stderr[-3000:]}")
    d = json.loads(line[len("RESULT "):])
    return Result("step", setup, train_s=d["train_s"], memory=Memory(**d["memory"]), flops=d["flops"],
                  saved_bytes=d.get("saved_activation_bytes"))


def checkpointing_memory(setup: Setup, threads: int = 0, subprocess_per_run: bool = True) -> list[Result]:
    """Train-step peak memory without and with gradient checkpointing."""
    out = []
    for ckpt in (False, True):
        s = replace(setup, checkpointing=ckpt)
        if subprocess_per_run and s.device == "cpu":
            r = run_in_subprocess(s, threads)
        else:
            r = run_variants({"step": s}, what=("train",), repeats=1, warmup=1)[0]
        r.label = "checkpointing" if ckpt else "no checkpointing"
        out.append(r)
    return out


def print_memory_table(results: list[Result]) -> None:
    off, on = results
    print(f"gradient checkpointing, train step of {off.setup.describe()} ({off.setup.precision}, {off.setup.device})")
    print("| | peak MiB | above resting MiB (activations + grads) | saved for backward MiB | step s |")
    print("|---|---|---|---|---|")
    for r in results:
        saved = r.saved_bytes / MIB if r.saved_bytes is not None else None
        print(f"| {r.label} | {r.memory.peak_mib:.0f} | {r.memory.step_mib:.0f} | {_fmt(saved, '.0f')} | "
              f"{r.train:.2f} |")
    print(f"peak memory drop: {100 * (1 - on.memory.peak_mib / off.memory.peak_mib):.1f}% "
          f"(above resting: {100 * (1 - on.memory.step_mib / off.memory.step_mib):.1f}%); "
          f"time cost: {on.train / off.train:.2f}x")
    print("resting = weights + AdamW state; saved for backward = what autograd keeps after the forward")


# =========================================================================== scaling
def scaling(clips: Sequence[str], frames: Sequence[int], depths: Sequence[int], depth_frames: int, batch: int,
            base: Setup, what: Sequence[str], repeats: int, warmup: int,
            train_max_frames: Optional[int] = None) -> list[Result]:
    """Cost vs frames (K fixed) and vs depth K (frames fixed); one model per (clip, K), frames varied on it.

    ``train_max_frames``: longer clips get the forward only (a train step's activations grow with
    T: keep it within the machine's memory).
    """
    from tqdm import tqdm

    plan = [(c, base.depth, f) for c in clips for f in frames]
    plan += [(c, k, depth_frames) for c in clips for k in depths if (c, k, depth_frames) not in plan]
    results, model, key = [], None, None
    for clip, k, f in tqdm(plan, desc="scaling", file=sys.stderr):
        s = replace(base, clip=clip, depth=k, frames=f, batch=batch,
                    temporal=base.temporal if k > 0 else None)
        if key != (clip, k):
            model, key = None, (clip, k)
            release_memory()
            model = build_model(s)
        todo = [w for w in what if w != "train" or train_max_frames is None or f <= train_max_frames]
        r = run_variants({f"{clip} K={k} T={f}": s}, todo, repeats, warmup, model=model)[0]
        results.append(r)
        print(f"  {r.label}: forward {_fmt(r.forward)} s, train {_fmt(r.train)} s, "
              f"peak {_fmt(r.memory.peak_mib if r.memory else None, '.0f')} MiB", file=sys.stderr)
    return results


def scaling_tables(results: list[Result], base_depth: int, depth_frames: int) -> str:
    def row(r: Result, first: str) -> str:
        m = r.memory
        return (f"| {r.setup.clip} | {first} | {r.flops['gmacs']:.1f} | {_fmt(r.forward, '.2f')} | "
                f"{_fmt(r.train, '.2f')} | {_fmt(m.peak_mib if m else None, '.0f')} | "
                f"{_fmt(m.step_mib if m else None, '.0f')} |")
    head = "| GFLOPs/clip | forward s | train step s | train peak MiB | above resting MiB |"
    out = [f"Cost vs frames (K={base_depth}, batch {results[0].setup.batch}, {results[0].setup.precision}):", "",
           "| model | frames " + head, "|---|---|---|---|---|---|---|"]
    out += [row(r, str(r.setup.frames)) for r in results if r.setup.depth == base_depth and
            r.setup.temporal is not None]
    out += ["", f"Cost vs depth K ({depth_frames} frames; K=0 = CLIP mean pooling):", "",
            "| model | K " + head, "|---|---|---|---|---|---|---|"]
    clips = list(dict.fromkeys(r.setup.clip for r in results))
    by_depth = sorted((r for r in results if r.setup.frames == depth_frames),
                      key=lambda r: (clips.index(r.setup.clip), r.setup.depth if r.setup.temporal else 0))
    out += [row(r, str(r.setup.depth if r.setup.temporal else 0)) for r in by_depth]
    return "\n".join(out)


# =========================================================================== token regrouping
def regroup_benchmark(width: int = 768, grid: int = 14, frames: int = 12, batch: int = 2, heads: int = 12,
                      repeats: int = 5) -> list[tuple[str, float, float]]:
    """Forward+backward ms of the branch's attention modules with different token regroupings.

    Temporal module: patches (B, T, L, D) must become B*L sequences of T tokens; we regroup the
    tokens (a copy), or project first and regroup only q/k/v (views, merged or as 5-D batches).
    Spatial module: the one video CLS joins every frame's patches, as an expanded view or a repeated
    copy. Each variant is the whole module (LN, q/k/v, SDPA, output projections), so the cost of a
    copy is seen next to the matmuls it feeds. Returns (variant, ms, ms relative to the first of its group).
    """
    from einops import rearrange, repeat

    b, t, l, d = batch, frames, grid * grid, width
    g = torch.Generator().manual_seed(0)
    p = torch.randn(b, t, l, d, generator=g).requires_grad_()
    cls = torch.randn(b, d, generator=g).requires_grad_()
    ln, w_qkv = nn.LayerNorm(d), torch.randn(3 * d, d, generator=g) * d ** -0.5
    w_out, w_fc = nn.Linear(d, d), nn.Linear(d, d)

    def mhsa(x):  # (N, S, D) -> (N, S, D)
        q, k, v = (rearrange(z, "n s (h e) -> n h s e", h=heads) for z in F.linear(x, w_qkv).chunk(3, -1))
        return w_out(rearrange(F.scaled_dot_product_attention(q, k, v), "n h s e -> n s (h e)"))

    def temporal_rearrange():  # what stanlib.model.branch.TemporalAttention does
        y = w_fc(mhsa(ln(rearrange(p, "b t l d -> (b l) t d"))))
        return p + rearrange(y, "(b l) t d -> b t l d", b=b)

    def temporal_qkv_views(merge: bool):
        pattern = "b t l (h e) -> (b l) h t e" if merge else "b t l (h e) -> b l h t e"
        q, k, v = (rearrange(z, pattern, h=heads) for z in F.linear(ln(p), w_qkv).chunk(3, -1))
        y = F.scaled_dot_product_attention(q, k, v)
        y = rearrange(y, "(b l) h t e -> b t l (h e)", b=b) if merge else rearrange(y, "b l h t e -> b t l (h e)")
        return p + w_fc(w_out(y))

    def spatial(copy: bool):  # what stanlib.model.branch.SpatialBlock does with copy=False
        c = repeat(cls, "b d -> b t 1 d", t=t) if copy else cls[:, None, None, :].expand(b, t, 1, d)
        x = torch.cat([c, p], dim=2).reshape(b * t, 1 + l, d)
        return mhsa(ln(x))

    variants = [("temporal: regroup tokens with einops (copy in and out) [stanlib]", temporal_rearrange),
                ("temporal: project first, q/k/v as (B*L) views", lambda: temporal_qkv_views(True)),
                ("temporal: project first, q/k/v as 5-D views (no merge)", lambda: temporal_qkv_views(False)),
                ("spatial: cat(expanded CLS view, patches) [stanlib]", lambda: spatial(False)),
                ("spatial: cat(repeated CLS copy, patches)", lambda: spatial(True))]
    times: dict[str, list[float]] = {name: [] for name, _ in variants}
    for rnd in range(repeats + 1):  # interleaved; round 0 is the warm-up
        for name, fn in variants:
            t0 = time.perf_counter()
            fn().sum().backward()
            if rnd:
                times[name].append(time.perf_counter() - t0)
    out, ref = [], {}
    for name, _ in variants:
        ms = 1e3 * statistics.median(times[name])
        group = name.split(":")[0]
        ref.setdefault(group, ms)
        out.append((name, ms, ms / ref[group]))
    return out


# =========================================================================== the GPU set
def gpu_suite(device: str = "cuda", quick: bool = False, repeats: int = 10, warmup: int = 3,
              peak_tflops: Optional[float] = None,
              on_step: Optional[Callable[[list[tuple[str, list[Result]]], dict], None]] = None,
              ) -> tuple[list[tuple[str, list[Result]]], dict]:
    """Everything worth measuring on a GPU, in one go (< 5 min on one H100-class card).

    B/32 and B/16 at 8/12/16 frames (bf16, fused); fused vs explicit attention; fp32 vs bf16; gradient
    checkpointing memory (B/16 8 frames); torch.compile vs eager (B/32 12 frames). ``quick``: the tiny
    model and tiny sizes, to test the script on a CPU.
    """
    from tqdm import tqdm

    dev = torch.device(device)
    if quick:
        clips, frames, batch, repeats, warmup = ["stan-tiny"], [2, 4], 2, min(repeats, 2), min(warmup, 1)
        backend = "aot_eager" if dev.type == "cpu" else "inductor"
    else:
        clips, frames, batch, backend = ["ViT-B-32", "ViT-B-16"], [8, 12, 16], 8, "inductor"
    base = Setup(device=device, batch=batch, compile_backend=backend)
    sections: list[tuple[str, list[Result]]] = []
    steps = [("scaling", c, f) for c in clips for f in frames] + [("fused vs explicit", c, frames[0]) for c in clips]
    steps += [("precision", clips[-1], frames[0]), ("checkpointing", clips[-1], frames[0]),
              ("compile", clips[0], frames[min(1, len(frames) - 1)])]
    grouped: dict[str, list[Result]] = {}
    info = device_info(dev)
    if peak_tflops:
        info["peak_tflops"] = peak_tflops
    for kind, clip, f in tqdm(steps, desc="bench gpu", file=sys.stderr):
        s = replace(base, clip=clip, frames=f)
        if kind == "scaling":
            res = run_variants({f"{clip} T={f}": s}, repeats=repeats, warmup=warmup, peak_tflops=peak_tflops)
        elif kind == "fused vs explicit":
            res, _ = compare(s, repeats, warmup, ("forward", "train"), peak_tflops=peak_tflops)
        elif kind == "precision":
            low = s if s.amp_dtype is not None else replace(s, amp="bf16")  # CPU: bf16 (AMX where present)
            res = run_variants({"fp32": replace(s, amp="fp32"), f"{low.precision} autocast": low},
                               repeats=repeats, warmup=warmup, peak_tflops=peak_tflops)
        elif kind == "checkpointing":
            res = run_variants({"no checkpointing": s, "checkpointing": replace(s, checkpointing=True)},
                               what=("train",), repeats=repeats, warmup=warmup, peak_tflops=peak_tflops)
        else:
            res = run_variants({"eager": s, "torch.compile": replace(s, compile=True)}, repeats=repeats,
                               warmup=warmup, peak_tflops=peak_tflops)
        grouped.setdefault(kind, []).extend(res)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        if on_step is not None:
            on_step(list(grouped.items()), info)
    return list(grouped.items()), info


def gpu_report(sections: list[tuple[str, list[Result]]], info: dict) -> str:
    lines = [f"## GPU benchmarks: {info['device']}", "",
             f"torch {torch.__version__}, CUDA {torch.version.cuda}, peak bf16 "
             f"{_fmt(info['peak_tflops'], '.0f')} TFLOP/s (dense, datasheet); median of the repeats; "
             "train step = video+text forward, InfoNCE, backward, fused AdamW.", ""]
    ratio = {"fused vs explicit": "explicit attention", "precision": "fp32", "checkpointing": "no checkpointing",
             "compile": "eager"}
    for kind, results in sections:
        lines += [f"### {kind}", "", markdown_table(results, info, ratio_to=ratio.get(kind)), ""]
        if kind == "compile":
            lines += [f"compile time: {', '.join(_fmt(r.compile_s, '.0f') + ' s' for r in results if r.compile_s)}",
                      ""]
    return "\n".join(lines)


# =========================================================================== command line
def _add_model_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--clip", default="ViT-B-32", help="open_clip config (ViT-B-32, ViT-B-16, stan-tiny...)")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--temporal", default="attn", choices=["attn", "conv", "none"])
    ap.add_argument("--depth", type=int, default=4, help="K branch layers")
    ap.add_argument("--context", type=int, default=32, help="text tokens per caption (MSR-VTT recipe: 32)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--amp", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                    help="auto: bf16 autocast on CUDA, fp32 on CPU (bf16 on CPU uses AMX where present)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: PyTorch's default)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls (the median is reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    ap.add_argument("--adamw", default="fused", choices=["fused", "foreach"])
    ap.add_argument("--peak-tflops", type=float, default=None, help="the card's bf16 peak, if not in the table")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")


def _setup_from(args, **over) -> Setup:
    temporal = None if args.temporal == "none" else args.temporal
    kw = dict(clip=args.clip, frames=args.frames, batch=args.batch, temporal=temporal, depth=args.depth,
              context=args.context, device=args.device, amp=args.amp, adamw=args.adamw)
    kw.update(over)
    return Setup(**kw)


def _threads(n: int) -> None:
    if n > 0:
        torch.set_num_threads(n)


def _write_json(path: Optional[Path], payload) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2))
        print(f"wrote {path}")


def model_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog=f"{PROG} model",
                                 description="forward / train-step time, clips/s, peak memory, TFLOP/s, MFU")
    _add_model_args(ap)
    ap.add_argument("--compile", action="store_true", help="torch.compile the video+text forward")
    ap.add_argument("--compile-backend", default="inductor")
    ap.add_argument("--checkpointing", action="store_true", help="gradient checkpointing (CLIP blocks + branch)")
    ap.add_argument("--freeze-text", action="store_true", help="freeze the text tower (recognition)")
    ap.add_argument("--explicit", action="store_true", help="explicit softmax attention instead of fused SDPA")
    ap.add_argument("--compare", action="store_true",
                    help="explicit attention vs the fast path (+ compiled with --compile) in one process")
    ap.add_argument("--add-bf16", action="store_true", help="--compare: also both paths under bf16 autocast")
    ap.add_argument("--what", nargs="+", default=["forward", "train"], choices=["forward", "train"])
    ap.add_argument("--profile", action="store_true", help="also print where one fast train step's time goes")
    args = ap.parse_args(argv)
    _threads(args.threads)
    setup = _setup_from(args, compile=args.compile, compile_backend=args.compile_backend,
                        checkpointing=args.checkpointing, freeze_text=args.freeze_text, fused=not args.explicit)
    info = device_info(torch.device(setup.device))
    if args.peak_tflops:
        info["peak_tflops"] = args.peak_tflops
    if args.compare:
        results, diff = compare(setup, args.repeats, args.warmup, args.what, peak_tflops=info["peak_tflops"],
                                add_bf16=args.add_bf16)
        print(f"bench model --compare: {setup.describe()} | {info['device']} | {setup.precision}")
        print(markdown_table(results, info, ratio_to="explicit attention"))
        base = results[0]
        for r in results[1:]:
            parts = [f"{w} {getattr(base, w) / getattr(r, w):.2f}x" for w in ("forward", "train")
                     if getattr(base, w) and getattr(r, w)]
            print(f"speed-up of '{r.label}' over explicit attention: {', '.join(parts)}")
        print(f"max |difference| fast vs explicit (fp32, eval mode, first {min(2, setup.batch)} clips): "
              f"logits {diff['logits']:.2e}, video embedding {diff['video_embedding']:.2e} "
              f"(relative {diff['video_embedding_rel']:.2e}), gradients (relative, worst parameter) "
              f"{diff['gradients_rel']:.2e}")
        if "bf16_logits" in diff:
            print(f"bf16 autocast (fused) vs fp32 (explicit): logits {diff['bf16_logits']:.2e}, video embedding "
                  f"relative {diff['bf16_video_embedding_rel']:.2e} (bf16 rounding: not within fp32 tolerance)")
        payload = {"info": info, "results": [r.to_dict() for r in results], "difference": diff}
    else:
        results = run_variants({"model": setup}, args.what, args.repeats, args.warmup,
                               peak_tflops=info["peak_tflops"])
        print_result(results[0], info)
        payload = {"info": info, "results": [r.to_dict() for r in results]}
    if args.profile:
        model = build_model(setup)
        frames, tokens = make_inputs(model, setup)
        opt = make_optimizer(model, setup.adamw)
        prime_optimizer(opt)
        step = train_step(model, setup, opt, frames, tokens)
        step()  # warm-up
        print("where one train step's time goes (profiler self time):")
        for cat, sec, share in profile_breakdown(step):
            print(f"  {cat:<28} {sec:8.2f} s  {100 * share:5.1f}%")
    _write_json(args.json, payload)
    return 0


def memory_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog=f"{PROG} memory",
                                 description="train-step peak memory with and without gradient checkpointing")
    _add_model_args(ap)
    ap.set_defaults(clip="ViT-B-16", frames=8, batch=4)
    ap.add_argument("--in-process", action="store_true", help="CPU: measure in this process (default: one "
                                                               "fresh subprocess per setting)")
    args = ap.parse_args(argv)
    _threads(args.threads)
    results = checkpointing_memory(_setup_from(args), args.threads, subprocess_per_run=not args.in_process)
    print_memory_table(results)
    _write_json(args.json, [r.to_dict() for r in results])
    return 0


def scaling_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog=f"{PROG} scaling", description="cost vs frames and vs depth K")
    _add_model_args(ap)
    ap.set_defaults(batch=1, repeats=1, clip=None)
    ap.add_argument("--clips", nargs="+", default=["ViT-B-32", "ViT-B-16"])
    ap.add_argument("--frame-list", nargs="+", type=int, default=[8, 12, 16, 32, 64])
    ap.add_argument("--depths", nargs="+", type=int, default=[0, 2, 4, 6, 8], help="0: CLIP mean pooling")
    ap.add_argument("--depth-frames", type=int, default=8, help="frames for the depth sweep")
    ap.add_argument("--what", nargs="+", default=["forward", "train"], choices=["forward", "train"])
    ap.add_argument("--train-max-frames", type=int, default=None,
                    help="forward only above this many frames (bounds the memory a train step needs)")
    args = ap.parse_args(argv)
    _threads(args.threads)
    base = _setup_from(args, clip=args.clips[0])
    results = scaling(args.clips, args.frame_list, args.depths, args.depth_frames, args.batch, base, args.what,
                      args.repeats, args.warmup, args.train_max_frames)
    print(f"{device_info(torch.device(base.device))['device']}")
    print(scaling_tables(results, base.depth, args.depth_frames))
    _write_json(args.json, [r.to_dict() for r in results])
    return 0


def regroup_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog=f"{PROG} regroup",
                                 description="token regrouping in the branch: copies vs views (forward+backward)")
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--grid", type=int, default=14, help="patches per side (14: ViT-B/16 at 224 px)")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    _threads(args.threads)
    rows = regroup_benchmark(args.width, args.grid, args.frames, args.batch, repeats=args.repeats)
    print(f"(B, T, L, D) = ({args.batch}, {args.frames}, {args.grid ** 2}, {args.width}), forward+backward, "
          f"{device_info(torch.device('cpu'))['device']}")
    print("| variant | ms | relative |\n|---|---|---|")
    for name, ms, rel in rows:
        print(f"| {name} | {ms:.1f} | {rel:.2f} |")
    return 0


def gpu_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog=f"{PROG} gpu",
                                 description="the whole GPU measurement set in one go, as a markdown table")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny model and sizes (tests the script on a CPU)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write gpu_bench.md and gpu_bench.json here")
    args = ap.parse_args(argv)
    _threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench gpu: no CUDA device; use --device cpu --quick to test the script", file=sys.stderr)
        return 2
    t0 = time.perf_counter()

    def write(sections, info, final: bool = False) -> str:
        note = "total time" if final else "so far (incomplete)"
        report = gpu_report(sections, info) + f"\n\n{note}: {time.perf_counter() - t0:.0f} s\n"
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "gpu_bench.md").write_text(report)
            (args.out / "gpu_bench.json").write_text(json.dumps(
                {"info": info, "complete": final, "sections": {k: [r.to_dict() for r in rs] for k, rs in sections}},
                indent=2))
        return report

    sections, info = gpu_suite(args.device, args.quick, args.repeats, args.warmup, args.peak_tflops, on_step=write)
    print(write(sections, info, final=True))
    if args.out is not None:
        print(f"wrote {args.out / 'gpu_bench.md'} and {args.out / 'gpu_bench.json'}")
    return 0


SUBCOMMANDS = {
    "model": (model_main, "forward / train-step time, clips/s, peak memory, TFLOP/s, MFU; --compare"),
    "memory": (memory_main, "gradient checkpointing: train-step peak memory on/off"),
    "scaling": (scaling_main, "cost vs frames and depth K"),
    "regroup": (regroup_main, "token regrouping choices in the branch (copies vs views)"),
    "gpu": (gpu_main, "the whole GPU measurement set (< 5 min), markdown table with the card"),
    "data": (None, "video decoding throughput (stanlib data bench, stanlib.data.tools)"),
}


def cli_main(argv: list[str]) -> int:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {PROG} {{" + ",".join(SUBCOMMANDS) + "} ...\n")
        for name, (_, help_) in SUBCOMMANDS.items():
            print(f"  {name:<8} {help_}")
        print(f"\nRun `{PROG} <command> --help` for options.")
        return 0
    name, rest = argv[0], argv[1:]
    if name == "data":
        from stanlib.data.tools import cli_main as data_cli

        return int(data_cli(["bench", *rest]) or 0)
    if name == "_child":
        return _child_main(rest)
    if name not in SUBCOMMANDS:
        print(f"bench: unknown command {name!r}; choose one of {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    return int(SUBCOMMANDS[name][0](rest) or 0)


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
