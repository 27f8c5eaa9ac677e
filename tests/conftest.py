import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing can be downloaded: fail fast, never hang
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402


# Tiny models run ~10x faster on one thread on a busy 2-core machine (no oversubscription).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_frames():
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 8, 3, 64, 64, generator=g)


def _assert_checkpointing_keeps_outputs_and_grads(model, frames):
    """Gradient checkpointing must not change the video embedding or any parameter's gradient."""
    def run():
        model.zero_grad()
        out = model.encode_video(frames)
        out.square().sum().backward()
        return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    ref_out, ref_grads = run()
    model.set_grad_checkpointing(True)
    out, grads = run()
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-5)
    assert set(grads) == set(ref_grads)
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=0, atol=1e-5, msg=name)


@pytest.fixture(scope="session")
def assert_checkpointing_keeps_outputs_and_grads():
    return _assert_checkpointing_keeps_outputs_and_grads
