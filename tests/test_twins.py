"""Reversal twins declared as data (generic CSV/JSON column, twins.csv/.txt, synth_meta.json), the direction
metric computed from them, and `stanlib eval` printing it."""
import csv
import json
import warnings

import pytest
import torch

from stanlib.data.datasets import AnnotationError, build_dataset, read_annotations, read_twins
from stanlib.engine.evaluate import direction_metrics_from_twins, twin_scores

CLASSES = ["Something moves left", "Something moves right", "Something grows", "Something shrinks"]


def write_generic(root, split, rows, header=("video", "label", "twin")):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{split}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")


def read(root, split="test", name="generic_label"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the listed videos do not exist: never loaded here
        return read_annotations(name, root, split)


# ----------------------------------------------------------------------------- declaring twins
def test_twin_column_of_a_generic_csv(tmp_path):
    write_generic(tmp_path, "test", [("videos/a.mp4", CLASSES[0], "videos/b.mp4"),  # by path
                                     ("videos/b.mp4", CLASSES[1], ""),               # filled from a's row
                                     ("videos/c.mp4", CLASSES[2], "d"),              # by id
                                     ("videos/d.mp4", CLASSES[3], "c.mp4"),          # by file name
                                     ("videos/e.mp4", CLASSES[0], "")])              # no twin
    ann = read(tmp_path)
    assert ann.twins == [1, 0, 3, 2, -1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = build_dataset("generic_label", tmp_path, "test")
    assert ds.twins == [1, 0, 3, 2, -1]
    write_generic(tmp_path, "train", [("videos/x.mp4", CLASSES[0])], header=("video", "label"))
    assert read(tmp_path, "train").twins is None  # no column, no file: nothing declared


def test_a_twin_missing_from_the_split_is_an_error_naming_it(tmp_path):
    write_generic(tmp_path, "test", [("a.mp4", CLASSES[0], "reversed_a.mp4"), ("b.mp4", CLASSES[1], "")])
    with pytest.raises(AnnotationError, match=r"test.csv: line 2: twin 'reversed_a.mp4' of 'a.mp4' is not a video "
                                              r"of split 'test'"):
        read(tmp_path)


@pytest.mark.parametrize("rows, message", [
    ([("a.mp4", CLASSES[0], "b.mp4"), ("b.mp4", CLASSES[0], "")], "both in class 'Something moves left'"),
    ([("a.mp4", CLASSES[0], "a.mp4")], "its own twin"),
    ([("a.mp4", CLASSES[0], "b.mp4"), ("b.mp4", CLASSES[1], "c.mp4"), ("c.mp4", CLASSES[0], "")],
     "twin of both 'a' and 'c'"),
])
def test_inconsistent_twins_are_errors(tmp_path, rows, message):
    write_generic(tmp_path, "test", rows)
    with pytest.raises(AnnotationError, match=message):
        read(tmp_path)


def test_twins_json_key_and_root_files(tmp_path):
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (tmp_path / "test.json").write_text(json.dumps([{"video": "a.mp4", "label": CLASSES[0], "twin": "b.mp4"},
                                                    {"video": "b.mp4", "label": CLASSES[1]}]))
    assert read(tmp_path).twins == [1, 0]
    # a twins file beside the annotations covers every split; each split takes its own pairs
    (tmp_path / "test.json").write_text(json.dumps([{"video": "a.mp4", "label": CLASSES[0]},
                                                    {"video": "b.mp4", "label": CLASSES[1]}]))
    write_generic(tmp_path, "train", [("t1.mp4", CLASSES[2]), ("t2.mp4", CLASSES[3])], header=("video", "label"))
    (tmp_path / "twins.txt").write_text("# clip, reversal\na.mp4 b.mp4\nt1, t2\n")
    assert read(tmp_path).twins == [1, 0] and read(tmp_path, "train").twins == [1, 0]
    assert read_twins(tmp_path)[1].name == "twins.txt"
    (tmp_path / "twins.txt").unlink()
    (tmp_path / "twins.csv").write_text("video,twin\na.mp4,t1.mp4\n")
    with pytest.raises(AnnotationError, match="twin 't1.mp4' of 'a.mp4' is not a video of split 'test'"):
        read(tmp_path)


def test_write_clean_keeps_the_twins(tmp_path):
    from stanlib.data.tools import write_clean

    write_generic(tmp_path / "data", "test", [("a.mp4", CLASSES[0], "b.mp4"), ("b.mp4", CLASSES[1], ""),
                                              ("c.mp4", CLASSES[2], "d.mp4"), ("d.mp4", CLASSES[3], "")])
    out = tmp_path / "clean" / "test.csv"
    assert write_clean(read(tmp_path / "data"), [True, True, True, False], out) == 3  # d.mp4 is unusable
    assert read(out).twins == [1, 0, -1]


def test_ssv2_reader_takes_twins_from_synth_meta(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({name: str(i) for i, name in enumerate(CLASSES)}))
    entries = [{"id": str(i), "label": "x", "template": CLASSES[i % 2], "placeholders": []} for i in range(4)]
    (tmp_path / "validation.json").write_text(json.dumps(entries))
    meta = {"items": [{"id": "0", "twin": "1"}, {"id": "1", "twin": "0"}, {"id": "2", "twin": None},
                      {"id": "9", "twin": "8"}]}  # 8 and 9 belong to another split
    (tmp_path / "synth_meta.json").write_text(json.dumps(meta))
    assert read(tmp_path, "val", "ssv2").twins == [1, 0, -1, -1]


# ----------------------------------------------------------------------------- the direction metric
def test_order_blind_scores_give_exactly_fifty_percent():
    torch.manual_seed(0)
    labels = torch.tensor([0, 1, 2, 3, 1, 0])
    twins = [1, 0, 3, 2, 5, 4]
    logits = torch.randn(6, 4)
    blind = logits.clone()
    for i, j in enumerate(twins):  # a clip and its reversal get identical scores
        blind[max(i, j)] = blind[min(i, j)]
    out = direction_metrics_from_twins(blind, labels, twins, class_names=CLASSES)
    assert out["direction"] == 50.0 and out["n"] == 6
    assert set(out["per_pair"]) == {"Something moves left / Something moves right",
                                    "Something grows / Something shrinks"}
    assert out["per_pair"]["Something moves left / Something moves right"]["n"] == 4


def test_direction_counts_ties_as_wrong_and_uses_class_twins():
    labels = torch.tensor([0, 1, 2])
    logits = torch.tensor([[5.0, 1.0, 0, 0], [5.0, 1.0, 0, 0], [0, 0, 2.0, 2.0]])
    out = direction_metrics_from_twins(logits, labels, twin_index=[1, 0, -1], class_twin=[1, 0, 3, 2])
    assert out["direction"] == pytest.approx(100 / 3) and out["n"] == 3  # clip 0 right, 1 wrong, 2 a tie
    assert out["per_pair"] == {"0 / 1": {"direction": 50.0, "n": 2}, "2 / 3": {"direction": 0.0, "n": 1}}
    scores = twin_scores(logits, labels, [1, 0, -1])
    assert scores["partner"].tolist() == [1, 0, -1] and torch.isnan(scores["twin"][2])
    views = torch.stack([logits, logits], dim=1)  # (N, views, C): view-averaged like top-1
    assert direction_metrics_from_twins(views, labels, [1, 0, -1])["direction"] == 50.0
    with pytest.raises(ValueError, match="no clip has a declared twin"):
        direction_metrics_from_twins(logits, labels, [-1, -1, -1])
    with pytest.raises(ValueError, match="twin_index"):
        direction_metrics_from_twins(logits, labels, [1, 0])


# ----------------------------------------------------------------------------- `stanlib eval`
def test_eval_prints_direction_and_writes_scores(tmp_path, capsys):
    from stanlib.teaching.synth import motion_task, write_task
    from stanlib.inference.evaluate import cli_main as eval_main
    from stanlib.engine.presets import apply_overrides, get_preset
    from stanlib.engine.trainer import build_trainer

    synth = tmp_path / "synth"
    task = motion_task(n_train=4, n_test=4, size=32, num_frames=4)
    write_task(task, synth, progress=False)
    root = tmp_path / "mine"  # the same clips in the generic format, twins in a column
    names = {c: task.classes[c] for c in range(len(task.classes))}
    write_generic(root, "train", [(f"../synth/videos/{it.id}.mp4", names[it.label]) for it in task.train],
                  header=("video", "label"))
    write_generic(root, "test", [(f"../synth/videos/{it.id}.mp4", names[it.label], it.twin or "")
                                 for it in task.test])
    (root / "classes.txt").write_text("\n".join(task.classes) + "\n")
    config = apply_overrides(get_preset("tiny-motion"), [
        f"data_root={root}", "dataset=generic_label", "val_split=test", "pretrained=none", "num_frames=2",
        "batch_size=2", "depth=1", "amp=off", "twin_batches=false", f"out_dir={tmp_path / 'run'}"])
    trainer = build_trainer(config)
    assert trainer.val_set.twins == [1, 0, 3, 2]
    trainer.save("last.pt")

    scores = tmp_path / "scores.csv"
    assert eval_main(["--checkpoint", str(tmp_path / "run" / "last.pt"), "--scores", str(scores),
                      "--json", str(tmp_path / "eval.json")]) == 0
    printed = capsys.readouterr().out
    assert "direction (own class scored above its time reversal's class)" in printed
    assert "over 4 clips with a twin" in printed and " / " in printed
    rows = list(csv.DictReader(scores.open()))
    assert [r["video"] for r in rows] == [it.id for it in task.test]
    assert rows[0]["twin_video"] == rows[1]["video"] and rows[0]["twin_class"] == rows[1]["label"]
    assert all(float(r["own_score"]) >= 0 and r["direction_correct"] in ("True", "False") for r in rows)
    report = json.loads((tmp_path / "eval.json").read_text())
    assert 0 <= report["metrics"]["direction"] <= 100 and report["direction_per_pair"]
