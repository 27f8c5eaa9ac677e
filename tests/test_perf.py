"""Performance features: fused vs explicit attention, torch.compile, text-tower shortcut, benchmark script.

No timing assertions (the CPU is shared): only that the fast paths compute the same numbers and
that the benchmark commands (``benchmarks/bench.py``, a script of the repository) run and report
what they promise.
"""
import json
import os
import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import stanlib

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench  # noqa: E402  (benchmarks/bench.py)


def _tiny(**kw):
    torch.manual_seed(0)
    model = stanlib.create_model("stan-tiny", temporal="attn", depth=2, drop_path=0.0, **kw)
    with torch.no_grad():  # zero-initialised temporal_fc would hide the temporal path from the checks
        for m in model.branch.temporal:
            torch.nn.init.normal_(m.temporal_fc.weight, std=0.05)
    return model.eval()


def _loss_and_grads(model, frames, tokens):
    model.zero_grad(set_to_none=True)
    video, text = model.encode_video(frames), model.encode_text(tokens)
    loss = F.cross_entropy(model(frames, tokens), torch.arange(len(frames)))
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return video.detach(), text.detach(), grads


def test_fused_and_explicit_paths_agree_outputs_and_gradients(tiny_frames):
    model = _tiny()
    frames, tokens = tiny_frames[:, :4], model.tokenize(["red ball", "blue cube"])
    model.set_fused_attention(False)
    ve, te, ge = _loss_and_grads(model, frames, tokens)
    model.set_fused_attention(True)
    vf, tf, gf = _loss_and_grads(model, frames, tokens)
    assert torch.allclose(ve, vf, atol=1e-5, rtol=1e-5)
    assert torch.allclose(te, tf, atol=1e-5, rtol=1e-5)
    assert ge.keys() == gf.keys() and any(n.startswith("branch.temporal") for n in ge)
    for name in ge:
        scale = ge[name].abs().max().clamp_min(1e-8)
        assert (ge[name] - gf[name]).abs().max() / scale < 1e-4, name


def test_cpu_half_precision_training_uses_explicit_attention_kernel(monkeypatch):
    """CPU flash-attention backward in bf16 is slow: the fused path trains through the explicit math there."""
    import stanlib.model.branch as stan

    calls = []
    sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(stan.F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or sdpa(*a, **k))
    attn = stan.Attention(32, 4)
    x = torch.randn(2, 5, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_bf16 = attn(x)
        with torch.no_grad():
            attn(x)
    assert len(calls) == 1  # only the no-grad call used SDPA
    attn(x)
    assert len(calls) == 2  # fp32 training keeps SDPA
    attn.fused = False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.allclose(attn(x).float(), y_bf16.float())


def test_text_tower_on_short_context_equals_padded_open_clip():
    model = _tiny()
    for length in (5, 9):
        tokens = model.tokenize(["a red ball moves left", "cube"], length)
        padded = F.pad(tokens, (0, model.clip.context_length - length))
        with torch.no_grad():
            assert torch.allclose(model.encode_text(tokens), model.clip.encode_text(padded), atol=1e-5)


def test_torch_compile_matches_eager_without_graph_breaks(tiny_frames):
    """fullgraph=True raises on any graph break; aot_eager traces forward AND backward (fast, no C++)."""
    torch._dynamo.reset()
    model = _tiny()
    frames = tiny_frames[:1, :3].clone()
    compiled = torch.compile(model.encode_video, backend="aot_eager", fullgraph=True)
    out_c = compiled(frames)
    out_c.square().sum().backward()
    grads_c = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    out_e = model.encode_video(frames)
    out_e.square().sum().backward()
    assert torch.allclose(out_c, out_e, atol=1e-5)
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert torch.allclose(grads_c[name], p.grad, atol=1e-5, rtol=1e-4), name
    torch._dynamo.reset()


@pytest.mark.skipif(not os.environ.get("STANLIB_SLOW_TESTS"), reason="inductor compile takes minutes on a "
                    "shared CPU; set STANLIB_SLOW_TESTS=1")
def test_inductor_compile_matches_eager(tiny_frames):
    torch._dynamo.reset()
    model = _tiny()
    tokens = model.tokenize(["red ball", "blue cube"])
    with torch.no_grad():
        assert torch.allclose(torch.compile(model)(tiny_frames[:, :3], tokens), model(tiny_frames[:, :3], tokens),
                              atol=1e-4)
    torch._dynamo.reset()


def test_branch_has_no_graph_breaks_in_dynamo_explain(tiny_frames):
    torch._dynamo.reset()
    model = _tiny(arch="posterior")  # a different code path through the branch
    explanation = torch._dynamo.explain(model.encode_video)(tiny_frames[:1, :2])
    assert explanation.graph_break_count == 0, explanation.break_reasons
    torch._dynamo.reset()


def test_freeze_text_tower_freezes_only_the_text_side():
    model = _tiny()
    n = bench.freeze_text_tower(model)
    text = [p for name, p in model.clip.named_parameters() if not name.startswith("visual.")]
    assert n == sum(p.numel() for p in text) > 0
    assert not any(p.requires_grad for p in text)
    assert all(p.requires_grad for p in model.clip.visual.parameters())
    assert all(p.requires_grad for p in model.branch.parameters())


def test_gpu_peak_table_matches_device_names():
    assert bench.gpu_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bench.gpu_peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert bench.gpu_peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert bench.gpu_peak_tflops("NVIDIA A10G") == 125.0
    assert bench.gpu_peak_tflops("NVIDIA L4") == 121.0
    assert bench.gpu_peak_tflops("NVIDIA L40S") == 362.0
    assert bench.gpu_peak_tflops("Tesla T4") == 65.0
    assert bench.gpu_peak_tflops("Some Future Card") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak resident memory is read from /proc")
def test_cpu_peak_memory_sees_a_known_allocation():
    def step():
        x = torch.ones(48, 1024, 1024)  # 192 MiB, freed at the end
        del x
    mem = bench.measure_memory(step, torch.device("cpu"), resting=10 * bench.MIB)
    assert mem.exact
    assert 180 < mem.step_mib < 260
    assert mem.peak_mib == pytest.approx(mem.step_mib + 10)


def _numbers(pattern, text):
    return [float(x) for x in re.findall(pattern, text)]


def test_bench_model_cli_prints_expected_fields(capsys, tmp_path):
    out_json = tmp_path / "r.json"
    assert bench.cli_main(["model", "--clip", "stan-tiny", "--frames", "2", "--batch", "2", "--depth", "2",
                           "--repeats", "1", "--warmup", "0", "--device", "cpu", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    for field in ("GFLOPs per clip", "forward", "train step", "clips/s", "TFLOP/s", "peak memory", "MFU"):
        assert field in out, field
    (fwd_s, train_s) = _numbers(r"(\d+\.\d+) s \(median of 1\)", out)
    assert fwd_s > 0 and train_s > 0
    assert _numbers(r"peak memory \(train step\): (\d+) MiB", out)[0] > 0
    record = json.loads(out_json.read_text())["results"][0]
    assert record["train_median_s"] == pytest.approx(train_s, rel=1e-3)
    assert record["flops"]["gmacs"] > 0 and record["train_tflops"] > 0


def test_bench_model_compare_reports_ratio_and_difference(capsys):
    assert bench.cli_main(["model", "--clip", "stan-tiny", "--frames", "2", "--batch", "2", "--depth", "2",
                           "--repeats", "1", "--warmup", "0", "--device", "cpu", "--what", "train",
                           "--compare"]) == 0
    out = capsys.readouterr().out
    assert "| explicit attention |" in out and "| fused (fast path) |" in out
    ratio = _numbers(r"over explicit attention: train (\d+\.\d+)x", out)
    assert len(ratio) == 1 and ratio[0] > 0
    logits_diff = _numbers(r"logits (\d\.\d+e[-+]\d+)", out)[0]
    assert logits_diff < 1e-4


def test_checkpointing_drops_saved_activations_of_clip_branch_and_text():
    model = _tiny()
    model.train()
    frames, tokens = torch.randn(2, 4, 3, 64, 64), model.tokenize(["red ball", "blue cube"])
    video = lambda: model.encode_video(frames)  # noqa: E731
    text = lambda: model.encode_text(tokens)  # noqa: E731
    before = bench.saved_activation_bytes(video), bench.saved_activation_bytes(text)
    model.set_grad_checkpointing(True)
    after = bench.saved_activation_bytes(video), bench.saved_activation_bytes(text)
    assert after[0] < 0.2 * before[0], (before, after)  # CLIP blocks + branch layers
    assert after[1] < 0.2 * before[1], (before, after)  # the text tower too
    with torch.no_grad():  # and the numbers do not change
        model.eval()
        ref = model.encode_video(frames)
    model.set_grad_checkpointing(False)
    with torch.no_grad():
        assert torch.allclose(model.encode_video(frames), ref, atol=1e-6)


def test_cpu_memory_of_a_train_step_is_measured_with_and_without_checkpointing():
    setup = bench.Setup(clip="stan-tiny", frames=4, batch=4, depth=2, device="cpu")
    off, on = bench.checkpointing_memory(setup, subprocess_per_run=False)
    for r in (off, on):
        assert r.memory.exact and r.memory.peak_mib > r.memory.step_mib > 0 and r.train > 0
    assert [off.label, on.label] == ["no checkpointing", "checkpointing"] and on.setup.checkpointing


def test_bench_data_is_dispatched_to_the_data_tools(monkeypatch):
    calls = []
    import stanlib.data.tools as tools

    monkeypatch.setattr(tools, "cli_main", lambda argv: calls.append(list(argv)) or 0)
    assert bench.cli_main(["data", "--workers", "0"]) == 0
    assert calls == [["bench", "--workers", "0"]]


def test_stanlib_bench_points_at_the_benchmark_script(capsys):
    from stanlib.cli import main

    assert main(["bench", "model"]) == 2
    err = capsys.readouterr().err
    assert "python benchmarks/bench.py" in err and len(err.strip().splitlines()) == 1
