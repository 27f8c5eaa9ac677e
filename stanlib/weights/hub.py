"""The Hugging Face Hub: downloading a saved model folder and :func:`push_to_hub`."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Optional

from stanlib.weights.io import CONFIG_NAME, WEIGHTS_NAME, save_pretrained

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
