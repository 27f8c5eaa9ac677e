"""Inference API: Predictor.similarity / classify, the five-line README example, `stanlib predict`."""
from __future__ import annotations

import contextlib
import io
import re
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import stanlib
from stanlib.inference import predict as P
from stanlib.data.transforms import test_transform
from stanlib.data.video import VideoDecodeError, read_frames, segment_indices
from stanlib.engine.losses import orthogonal_classes
from stanlib.weights import save_pretrained

NUM_FRAMES = 4


def _write_mp4(path, num_frames: int = 20, height: int = 72, width: int = 96) -> None:
    """A small H.264 clip written with PyAV: a red square moving left to right on grey."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        for t in range(num_frames):
            frame = np.full((height, width, 3), 90, np.uint8)
            x = int((width - 16) * t / (num_frames - 1))
            frame[28:44, x:x + 16] = (220, 40, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    _write_mp4(path)
    return path


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = stanlib.create_model(clip="stan-tiny", temporal="attn", depth=2, num_frames=NUM_FRAMES).eval()
    with torch.no_grad():  # leave the identity init so the branch matters
        for p in m.branch.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    return save_pretrained(model, tmp_path_factory.mktemp("ckpt") / "tiny")


def _reference_video_embedding(model, path) -> torch.Tensor:
    """The recipe by hand: all frames, TSN segment middles, test transform, encode, normalise."""
    frames = read_frames(path)
    idx = segment_indices(len(frames), NUM_FRAMES, train=False)
    clip = test_transform(model.image_size)(frames[idx])
    with torch.no_grad():
        return F.normalize(model.encode_video(clip[None]), dim=-1)[0]


def test_similarity_follows_the_test_recipe(model, video):
    predictor = stanlib.Predictor(model, device="cpu")
    texts = ["a red square moves right", "a blue circle grows", "a red square moves left"]
    scores = predictor.similarity(video, texts)
    assert scores.shape == (3,) and scores.abs().max() <= 1 + 1e-6
    assert scores.unique().numel() == 3  # the texts matter
    with torch.no_grad():
        text = F.normalize(model.encode_text(model.tokenize(texts)), dim=-1)
    expected = text @ _reference_video_embedding(model, video)
    assert torch.allclose(scores, expected, atol=1e-6)
    assert predictor.load_video(video).shape == (NUM_FRAMES, 3, 64, 64)
    # decoded frames passed as a tensor go through the same sampling
    assert torch.allclose(predictor.similarity(read_frames(video), texts), scores, atol=1e-6)


def test_classify_ranks_softmax_of_scaled_cosine(model, video):
    predictor = stanlib.Predictor(model)
    names = ["moves left", "moves right", "grows", "shrinks", "rotates"]
    top = predictor.classify(video, names, topk=3)
    assert len(top) == 3 and all(name in names for name, _ in top)
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    expected = (model.logit_scale * predictor.similarity(video, names)).softmax(-1)
    assert top[0][1] == pytest.approx(float(expected.max()), abs=1e-5)
    assert top[0][0] == names[int(expected.argmax())]
    assert len(predictor.classify(video, names, topk=10)) == len(names)
    with pytest.raises(ValueError, match="at least two"):
        predictor.classify(video, ["alone"])


def test_classify_uses_the_fixed_class_vectors_the_model_was_trained_with(model, video):
    names = ["moves left", "moves right", "grows", "shrinks", "rotates"]
    plain = stanlib.Predictor(model).classify(video, names, topk=5)
    model.config.extra = {"head": "orthogonal", "classes": names}
    try:
        predictor = stanlib.Predictor(model)
        top = predictor.classify(video, names, topk=5)
        classes = orthogonal_classes(len(names), model.embed_dim)
        expected = (model.logit_scale * (classes @ predictor.encode_video(video))).softmax(-1)
        assert [p for _, p in top] == pytest.approx(sorted(expected.tolist(), reverse=True), abs=1e-5)
        assert [p for _, p in top] != pytest.approx([p for _, p in plain], abs=1e-3)
        with pytest.raises(ValueError, match="extra\\['classes'\\]"):
            predictor.classify(video, names[::-1])  # another order would silently swap the classes
    finally:
        model.config.extra = {}


def test_bad_inputs_are_explained(model, tmp_path):
    predictor = stanlib.Predictor(model)
    with pytest.raises(VideoDecodeError, match="missing.mp4: file not found"):
        predictor.similarity(tmp_path / "missing.mp4", ["a"])
    with pytest.raises(ValueError, match="uint8 frames"):
        predictor.similarity(torch.zeros(4, 64, 64, 3), ["a"])


REPO = Path(__file__).resolve().parents[1]


def test_readme_five_line_example_runs(monkeypatch, tmp_path):
    """The five lines of the README (= the module docstring) on the bundled model and clip, run
    from a folder that holds nothing (the model and the clip ship inside the package)."""
    code = textwrap.dedent(P.__doc__.split("::", 1)[1].split("\n\n:class:")[0])
    lines = [ln for ln in code.strip().splitlines() if ln.strip()]
    assert len(lines) == 5 and lines[0] == "import stanlib"
    readme = (REPO / "README.md").read_text()
    assert all(ln in readme for ln in lines[1:]), "README example and stanlib/inference/predict.py docstring differ"
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README example", "exec"), {})
    printed = out.getvalue().splitlines()
    assert len(printed) == 2 and all(line.startswith("tensor([") for line in printed)
    for line in printed:  # free text, then words it was not trained with: the clip over its reversal
        fades_out, fades_in = (float(x) for x in re.findall(r"-?\d\.\d+", line))
        assert fades_out > fades_in + 0.1, line
    shown = re.search(r"prints .*?```\n(.*?)```", readme, re.S).group(1).strip().splitlines()
    numbers = lambda lines: [float(x) for line in lines for x in re.findall(r"-?\d\.\d+", line)]  # noqa: E731
    assert numbers(shown) == pytest.approx(numbers(printed), abs=2e-3), "the README shows what the example prints"


def test_bundled_tiny_model_is_trained():
    """The bundled model beats chance clearly on bundled held-out clips it never saw in training."""
    import json

    model = stanlib.from_pretrained(P.DEFAULT_CHECKPOINT)
    classes = model.config.extra["classes"]
    folder = REPO / "data_samples" / "synth" / "motion"
    entries = json.loads((folder / "something-something-v2-validation.json").read_text())[:20]
    predictor = stanlib.Predictor(model)
    hits = [predictor.classify(folder / "videos" / f"{e['id']}.mp4", classes, topk=1)[0][0]
            == e["template"].replace("[Something]", "Something") for e in entries]
    assert sum(hits) >= 8, f"top-1 {sum(hits)}/20 on bundled clips (chance: 2/20)"


def test_cli_scores_texts_and_classes(checkpoint, video, capsys):
    from stanlib.cli import main

    code = main(["predict", "--video", str(video), "--text", "a red square moves right", "--text", "a blue star",
                 "--classes", "moves left, moves right,grows", "--topk", "2", "--checkpoint", str(checkpoint)])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"[+-]\d\.\d{4}  a red square moves right", out)
    assert "top-2 classes" in out and len(re.findall(r"\d+\.\d%  (moves left|moves right|grows)", out)) == 2
    assert main(["predict", "--video", str(video) + ".nope", "--text", "x", "--checkpoint", str(checkpoint)]) == 1
    assert "error" in capsys.readouterr().err


def test_cli_without_bundled_model_warns_loudly(video, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(P, "DEFAULT_CHECKPOINT", tmp_path / "not-there")
    with pytest.warns(UserWarning, match="RANDOMLY INITIALISED"):
        assert P.cli_main(["--video", str(video), "--classes", "grows,shrinks"]) == 0
    assert "WARNING" in capsys.readouterr().err
    with pytest.raises(SystemExit), pytest.warns(UserWarning, match="RANDOMLY INITIALISED"):
        P.cli_main(["--video", str(video)])  # nothing to score: no texts, no classes, none recorded in the model
