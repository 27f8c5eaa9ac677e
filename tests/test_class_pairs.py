"""Reversal classes: class names that are each other's time reversal (SSv2 templates, the synthetic
worlds), read into ``class_twins`` and measured by the direction metric when no clip twin exists."""
import json
import warnings
from pathlib import Path

import pytest
import torch

from stanlib.data.datasets import (VideoLabelDataset, VideoRecord, build_dataset, read_annotations,
                                   reversal_class_pairs)
from stanlib.teaching.synth import APPEARANCE_CLASSES, MOTION_CLASSES, TEXTURED_CLASSES
from stanlib.engine.evaluate import dataset_direction, direction_metrics_from_twins, evaluate_recognition
from stanlib.inference.evaluate import format_direction

FIXTURES = Path(__file__).resolve().parents[1] / "data_samples" / "fixtures"

# The 174 Something-Something-v2 class names (templates without brackets), label id order.
SSV2_CLASSES = (
    'Approaching something with your camera',
    'Attaching something to something',
    'Bending something so that it deforms',
    'Bending something until it breaks',
    'Burying something in something',
    'Closing something',
    'Covering something with something',
    'Digging something out of something',
    'Dropping something behind something',
    'Dropping something in front of something',
    'Dropping something into something',
    'Dropping something next to something',
    'Dropping something onto something',
    'Failing to put something into something because something does not fit',
    'Folding something',
    'Hitting something with something',
    'Holding something',
    'Holding something behind something',
    'Holding something in front of something',
    'Holding something next to something',
    'Holding something over something',
    'Laying something on the table on its side, not upright',
    'Letting something roll along a flat surface',
    'Letting something roll down a slanted surface',
    'Letting something roll up a slanted surface, so it rolls back down',
    'Lifting a surface with something on it but not enough for it to slide down',
    'Lifting a surface with something on it until it starts sliding down',
    'Lifting something up completely without letting it drop down',
    'Lifting something up completely, then letting it drop down',
    'Lifting something with something on it',
    'Lifting up one end of something without letting it drop down',
    'Lifting up one end of something, then letting it drop down',
    'Moving away from something with your camera',
    'Moving part of something',
    'Moving something across a surface until it falls down',
    'Moving something across a surface without it falling down',
    'Moving something and something away from each other',
    'Moving something and something closer to each other',
    'Moving something and something so they collide with each other',
    'Moving something and something so they pass each other',
    'Moving something away from something',
    'Moving something away from the camera',
    'Moving something closer to something',
    'Moving something down',
    'Moving something towards the camera',
    'Moving something up',
    'Opening something',
    'Picking something up',
    'Piling something up',
    'Plugging something into something',
    'Plugging something into something but pulling it right out as you remove your hand',
    'Poking a hole into some substance',
    'Poking a hole into something soft',
    'Poking a stack of something so the stack collapses',
    'Poking a stack of something without the stack collapsing',
    'Poking something so it slightly moves',
    "Poking something so lightly that it doesn't or almost doesn't move",
    'Poking something so that it falls over',
    'Poking something so that it spins around',
    'Pouring something into something',
    'Pouring something into something until it overflows',
    'Pouring something onto something',
    'Pouring something out of something',
    'Pretending or failing to wipe something off of something',
    'Pretending or trying and failing to twist something',
    'Pretending to be tearing something that is not tearable',
    'Pretending to close something without actually closing it',
    'Pretending to open something without actually opening it',
    'Pretending to pick something up',
    'Pretending to poke something',
    'Pretending to pour something out of something, but something is empty',
    'Pretending to put something behind something',
    'Pretending to put something into something',
    'Pretending to put something next to something',
    'Pretending to put something on a surface',
    'Pretending to put something onto something',
    'Pretending to put something underneath something',
    'Pretending to scoop something up with something',
    'Pretending to spread air onto something',
    'Pretending to sprinkle air onto something',
    'Pretending to squeeze something',
    'Pretending to take something from somewhere',
    'Pretending to take something out of something',
    'Pretending to throw something',
    'Pretending to turn something upside down',
    'Pulling something from behind of something',
    'Pulling something from left to right',
    'Pulling something from right to left',
    'Pulling something onto something',
    'Pulling something out of something',
    'Pulling two ends of something but nothing happens',
    'Pulling two ends of something so that it gets stretched',
    'Pulling two ends of something so that it separates into two pieces',
    'Pushing something from left to right',
    'Pushing something from right to left',
    'Pushing something off of something',
    'Pushing something onto something',
    'Pushing something so it spins',
    "Pushing something so that it almost falls off but doesn't",
    'Pushing something so that it falls off the table',
    'Pushing something so that it slightly moves',
    'Pushing something with something',
    'Putting number of something onto something',
    'Putting something and something on the table',
    'Putting something behind something',
    'Putting something in front of something',
    'Putting something into something',
    'Putting something next to something',
    'Putting something on a flat surface without letting it roll',
    'Putting something on a surface',
    'Putting something on the edge of something so it is not supported and falls down',
    "Putting something onto a slanted surface but it doesn't glide down",
    'Putting something onto something',
    'Putting something onto something else that cannot support it so it falls down',
    'Putting something similar to other things that are already on the table',
    "Putting something that can't roll onto a slanted surface, so it slides down",
    "Putting something that can't roll onto a slanted surface, so it stays where it is",
    'Putting something that cannot actually stand upright upright on the table, so it falls on its side',
    'Putting something underneath something',
    'Putting something upright on the table',
    'Putting something, something and something on the table',
    'Removing something, revealing something behind',
    'Rolling something on a flat surface',
    'Scooping something up with something',
    'Showing a photo of something to the camera',
    'Showing something behind something',
    'Showing something next to something',
    'Showing something on top of something',
    'Showing something to the camera',
    'Showing that something is empty',
    'Showing that something is inside something',
    'Something being deflected from something',
    'Something colliding with something and both are being deflected',
    'Something colliding with something and both come to a halt',
    'Something falling like a feather or paper',
    'Something falling like a rock',
    'Spilling something behind something',
    'Spilling something next to something',
    'Spilling something onto something',
    'Spinning something so it continues spinning',
    'Spinning something that quickly stops spinning',
    'Spreading something onto something',
    'Sprinkling something onto something',
    'Squeezing something',
    'Stacking number of something',
    'Stuffing something into something',
    'Taking one of many similar things on the table',
    'Taking something from somewhere',
    'Taking something out of something',
    'Tearing something into two pieces',
    'Tearing something just a little bit',
    'Throwing something',
    'Throwing something against something',
    'Throwing something in the air and catching it',
    'Throwing something in the air and letting it fall',
    'Throwing something onto a surface',
    "Tilting something with something on it slightly so it doesn't fall down",
    'Tilting something with something on it until it falls off',
    'Tipping something over',
    'Tipping something with something in it over, so something in it falls out',
    'Touching (without moving) part of something',
    "Trying but failing to attach something to something because it doesn't stick",
    'Trying to bend something unbendable so nothing happens',
    'Trying to pour something into something, but missing so it spills next to it',
    'Turning something upside down',
    'Turning the camera downwards while filming something',
    'Turning the camera left while filming something',
    'Turning the camera right while filming something',
    'Turning the camera upwards while filming something',
    'Twisting (wringing) something wet until water comes out',
    'Twisting something',
    'Uncovering something',
    'Unfolding something',
    'Wiping something off of something',
)
SSV2_PAIRS = {
    ("Approaching something with your camera", "Moving away from something with your camera"),
    ("Burying something in something", "Digging something out of something"),
    ("Closing something", "Opening something"),
    ("Covering something with something", "Uncovering something"),
    ("Folding something", "Unfolding something"),
    ("Moving something and something away from each other", "Moving something and something closer to each other"),
    ("Moving something away from something", "Moving something closer to something"),
    ("Moving something away from the camera", "Moving something towards the camera"),
    ("Moving something down", "Moving something up"),
    ("Pulling something from left to right", "Pulling something from right to left"),
    ("Pushing something from left to right", "Pushing something from right to left"),
    ("Putting something into something", "Taking something out of something"),
    ("Turning the camera downwards while filming something", "Turning the camera upwards while filming something"),
    ("Turning the camera left while filming something", "Turning the camera right while filming something"),
}


def pairs_of(classes):
    partner = reversal_class_pairs(classes)
    return {(classes[c], classes[p]) for c, p in enumerate(partner) if c < p}, partner


# ----------------------------------------------------------------------------- the swap rules
def test_ssv2_templates_pair_by_the_swap_rules():
    assert len(SSV2_CLASSES) == 174 and len(set(SSV2_CLASSES)) == 174
    found, partner = pairs_of(list(SSV2_CLASSES))
    assert found == SSV2_PAIRS
    assert all(partner[p] == c for c, p in enumerate(partner) if p >= 0)  # mutual
    for lonely in ("Picking something up", "Turning something upside down",
                   "Letting something roll down a slanted surface",
                   "Pretending to open something without actually opening it",
                   "Lifting something up completely, then letting it drop down",
                   "Putting something upright on the table"):
        assert partner[SSV2_CLASSES.index(lonely)] == -1, lonely


def test_synthetic_class_lists_pair():
    assert reversal_class_pairs(list(MOTION_CLASSES)) == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8]
    assert reversal_class_pairs(list(TEXTURED_CLASSES)) == [1, 0, 3, 2, 5, 4, 7, 6]
    assert reversal_class_pairs(["The video fades out", "The video fades in"]) == [1, 0]
    rotations = ["Something rotates counterclockwise", "x", "Something rotates clockwise"]
    assert reversal_class_pairs(rotations) == [2, -1, 0]
    assert set(reversal_class_pairs(list(APPEARANCE_CLASSES))) == {-1}


def test_missing_or_one_way_partners_give_minus_one():
    assert reversal_class_pairs(["Moving something up", "Holding something"]) == [-1, -1]  # partner missing
    # "away from" proposes both "closer to" and "towards": ambiguous, so the others' proposals are one way
    assert reversal_class_pairs(["Moving something away from something", "Moving something closer to something",
                                 "Moving something towards something"]) == [-1, -1, -1]
    assert reversal_class_pairs(["moving something down", "moving something up"]) == [1, 0]  # lower case too
    assert reversal_class_pairs(["Opening something", "Closing something"], swaps=[("up", "down")]) == [-1, -1]
    assert reversal_class_pairs([]) == []


# ----------------------------------------------------------------------------- direction with class twins
class _Logits(torch.utils.data.Dataset):
    """A recognition set whose clip i "is" row i of a logits table (the model below passes it through)."""

    def __init__(self, logits, labels, classes, class_twins):
        self.logits, self.labels, self.classes = logits, labels, classes
        self.twins, self.class_twins = None, class_twins

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"frames": self.logits[i].view(1, 1, 1, -1), "label": self.labels[i], "video_idx": i}


class _PassThrough(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def encode_video(self, frames):
        return frames.flatten(1)

    def logits(self, emb):
        return emb


def test_evaluate_recognition_reports_direction_from_class_twins_only():
    classes = ["Pushing something from left to right", "Pushing something from right to left", "Holding something"]
    class_twins = reversal_class_pairs(classes)
    assert class_twins == [1, 0, -1]
    logits = torch.tensor([[3.0, 1.0, 0.0],    # left-to-right clip, own class above its reversal: right
                           [3.0, 1.0, 0.0],    # right-to-left clip scored as left-to-right: wrong
                           [0.0, 2.0, 1.0],    # right-to-left: right
                           [0.0, 0.0, 5.0]])   # holding: no partner, not counted
    labels = [0, 1, 1, 2]
    model = _PassThrough()
    metrics, out = evaluate_recognition(model, _Logits(logits, labels, classes, class_twins), model, batch_size=3)
    assert torch.equal(out, logits)
    assert metrics["direction"] == pytest.approx(200 / 3)
    assert direction_metrics_from_twins(logits, labels, class_twin=class_twins)["direction"] == pytest.approx(200 / 3)
    direction = dataset_direction(logits, _Logits(logits, labels, classes, class_twins))
    assert (direction["n"], direction["clip_partners"], direction["class_partners"]) == (3, 0, 3)
    printed = format_direction(direction)
    assert "over 3 clips whose class has a reversal class (partner: reversal classes)" in printed
    assert f"{classes[0]} / {classes[1]}" in printed
    # no partner anywhere: no direction
    metrics, _ = evaluate_recognition(model, _Logits(logits, labels, classes, None), model)
    assert "direction" not in metrics
    only_lonely = _Logits(logits[3:], [2], classes, class_twins)
    assert dataset_direction(logits[3:], only_lonely) is None


def test_clip_twins_win_over_class_twins():
    ds = _Logits(torch.zeros(3, 3), [0, 1, 1], ["Moving something up", "Moving something down", "x"], [1, 0, -1])
    ds.twins = [1, 0, -1]
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 2.0, 0.0], [3.0, 1.0, 0.0]])
    direction = dataset_direction(logits, ds)
    assert (direction["n"], direction["clip_partners"], direction["class_partners"]) == (3, 2, 1)
    assert "partner: exact reversal clips for 2, reversal classes for 1" in format_direction(direction)


# ----------------------------------------------------------------------------- readers
def test_ssv2_fixture_reader_exposes_class_twins():
    ann = read_annotations("ssv2", FIXTURES / "ssv2", "val")
    left, right = (ann.classes.index(f"Pushing something from {a}") for a in ("left to right", "right to left"))
    assert ann.class_twins[left] == right and ann.class_twins[right] == left
    assert sum(t >= 0 for t in ann.class_twins) == 2 and ann.twins is None


def _write_ssv2(root, names, entries):
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.json").write_text(json.dumps({n: str(i) for i, n in enumerate(names)}))
    for split in ("train", "validation"):
        (root / f"something-something-v2-{split}.json").write_text(json.dumps(
            [{"id": str(k), "label": t.lower(), "template": t, "placeholders": []} for k, t in enumerate(entries)]))


def test_ssv2_folder_to_dataset_carries_class_twins(tmp_path):
    names = ["Moving something up", "Moving something down", "Holding something"]
    _write_ssv2(tmp_path, names, ["Moving [something] up", "Moving [something] down", "Holding [something]"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the listed videos do not exist: never decoded here
        ds = build_dataset("ssv2", tmp_path, "val")
    assert ds.class_twins == [1, 0, -1] and ds.twins is None
    _write_ssv2(tmp_path / "none", ["Holding something"], ["Holding [something]"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert read_annotations("ssv2", tmp_path / "none", "train").class_twins is None


def test_generic_label_reader_fills_class_twins(tmp_path):
    (tmp_path / "classes.txt").write_text("\n".join(TEXTURED_CLASSES) + "\n")
    (tmp_path / "test.csv").write_text("video,label\nvideos/a.mp4,Something grows\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ann = read_annotations("generic_label", tmp_path, "test")
    assert ann.class_twins == [1, 0, 3, 2, 5, 4, 7, 6]


def test_dataset_checks_class_twins():
    videos = [VideoRecord(Path("a.mp4"), "a")]
    with pytest.raises(ValueError, match="class_twins"):
        VideoLabelDataset(videos, [0], ["a", "b"], class_twins=[1])
    assert VideoLabelDataset(videos, [0], ["a", "b"], class_twins=[1, 0]).class_twins == [1, 0]
