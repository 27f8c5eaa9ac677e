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
