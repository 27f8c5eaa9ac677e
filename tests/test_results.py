"""The committed result files are the evidence of the README's numbers: the teaching table in the
README equals what those files give, and every file is a well-formed run record."""
import importlib.util
import json
from pathlib import Path

import pytest

from stanlib.teaching.experiments import (FIRST_CLIP, MAIN_ROWS, RECIPE_SETS, RESULTS_DIR, TASK_KINDS, default_results,
                                          load_results, teaching_table)

REPO = Path(__file__).resolve().parents[1]


def _readme_tool():
    spec = importlib.util.spec_from_file_location("readme_table", REPO / "tools" / "readme_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_teaching_table_equals_the_committed_results():
    tool = _readme_tool()
    text, results = (REPO / "README.md").read_text(), load_results(RESULTS_DIR)
    assert tool.readme_block(text) == teaching_table(results), (
        "README's teaching table differs from the committed result files; run `python tools/readme_table.py --write`")
    assert tool.readme_block(text, "teaching-table-first-clip") == teaching_table(results, FIRST_CLIP)


def test_readme_preset_tables_equal_the_committed_stanlib_train_runs():
    tool = _readme_tool()
    text = (REPO / "README.md").read_text()
    for name in tool.README_BLOCKS:
        assert tool.readme_block(text, name) == tool.tables()[name], (
            f"README's {name} differs from the committed result files; run `python tools/readme_table.py --write`")
    docs = (REPO / "docs" / "experiments.md").read_text()
    for name in tool.DOCS_BLOCKS:
        assert tool.readme_block(docs, name) == tool.tables()[name], (
            f"docs/experiments.md's {name} differs from the result files; run `python tools/readme_table.py --write`")


def _readme_command(text: str, start: str) -> str:
    """The README's shell command that begins with ``start``, its continuation lines joined."""
    lines = text.splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith(start))
    command = lines[k]
    while command.endswith("\\"):
        k += 1
        command = command[:-1] + " " + lines[k].strip()
    return command


def test_readme_textured_commands_are_the_recipe_of_the_textured_table():
    """The README's `stanlib train` and `stanlib experiments run` lines for the textured world change the preset
    the same way, and every run in its textured table was trained with those changes."""
    from stanlib.engine.presets import apply_overrides, get_preset

    tool, text = _readme_tool(), (REPO / "README.md").read_text()
    train = _readme_command(text, "stanlib train --preset tiny-motion --data-root worlds/textured-twins-1600")
    sweep = _readme_command(text, "stanlib experiments run --preset tiny-motion --data generic_label:worlds/textured")
    sets = [w for a, w in zip(train.split(), train.split()[1:]) if a == "--set" and not w.startswith(("dataset=",
                                                                                                     "val_split="))]
    configs = [w for a, w in zip(sweep.split(), sweep.split()[1:]) if a == "--config"]
    assert sorted(sets) == sorted(configs) and configs, (train, sweep)
    cfg = apply_overrides(get_preset("tiny-motion"), configs)
    assert {k: getattr(cfg, k) for k in tool.TEXTURED_CONFIG} == tool.TEXTURED_CONFIG
    runs = [r for r in tool.load_preset_results(tool.PAPER_METHOD) if r["task"].startswith("tiny-motion@textured")
            and all(r["config"][k] == v for k, v in tool.TEXTURED_CONFIG.items())]
    assert sorted((r["row"], r["seed"]) for r in runs) == [(row, s) for row in ("meanpool", "stan-self")
                                                             for s in (0, 1, 2)]


def test_preset_result_files_are_complete_run_records():
    files = sorted((REPO / "docs" / "results" / "preset-results").glob("*.json"))
    assert files, "no committed stanlib train runs under docs/results/preset-results"
    for f in files:
        r = json.loads(f.read_text())
        for key in ("preset", "task", "row", "seed", "config", "config_key", "metrics", "train_seconds", "device"):
            assert key in r, f"{f.name}: no {key!r}"
        assert f.name == f"{r['task']}__{r['row']}__seed{r['seed']}__{r['config_key']}.json", f.name
        if r["row"] == "meanpool" and r["task"] == "tiny-motion":   # exact reversals on lossless files
            assert r["metrics"]["direction"] == 50.0, f.name


def test_result_files_are_complete_run_records():
    files = sorted((RESULTS_DIR / "results").glob("*.json"))
    assert files, f"no committed result files under {RESULTS_DIR / 'results'}"
    for f in files:
        r = json.loads(f.read_text())
        for key in ("task", "row", "seed", "recipe", "recipe_key", "metrics", "train_seconds", "device"):
            assert key in r, f"{f.name}: no {key!r}"
        assert f.name == f"{r['task']}__{r['row']}__seed{r['seed']}__{r['recipe_key']}.json", f.name


@pytest.mark.parametrize("recipe", list(RECIPE_SETS))
def test_every_main_row_has_results_on_motion(recipe):
    runs = default_results(load_results(RESULTS_DIR), RECIPE_SETS[recipe])
    missing = [row for row in MAIN_ROWS if ("motion", row) not in runs]
    assert not missing, f"no committed motion results of the {recipe} recipe for rows {missing}"
    assert set(t for t, _ in runs) == set(TASK_KINDS)


@pytest.mark.parametrize("recipe", list(RECIPE_SETS))
def test_order_blind_rows_sit_exactly_at_chance(recipe):
    """Mean pooling's direction (motion) and twin accuracy (captions) are 50% by construction."""
    runs = default_results(load_results(RESULTS_DIR), RECIPE_SETS[recipe])
    assert runs[("motion", "meanpool")] and runs[("captions", "meanpool")]
    for r in runs[("motion", "zero-shot")] + runs[("motion", "meanpool")]:
        assert r["metrics"]["direction"] == pytest.approx(50.0)
    for r in runs[("captions", "zero-shot")] + runs[("captions", "meanpool")]:
        assert r["metrics"]["twin"] == pytest.approx(50.0)


def test_default_recipe_runs_are_the_papers_method_on_the_v2_clip():
    """The default recipe's runs start from stan-tiny-v2 with the paper's head / loss; so do the textured-world runs
    of docs/results/paper-method, where mean pooling sits near 50% (the files are lossy)."""
    folder = REPO / "docs" / "results" / "paper-method"
    runs = [r for rs in default_results(load_results(RESULTS_DIR)).values() for r in rs]
    presets = [json.loads(f.read_text()) for f in sorted((folder / "preset-results").glob("*.json"))]
    assert runs and presets
    for r in runs:
        assert r["recipe"]["clip"] == "stan-tiny-v2"
        if r["task"] == "motion":
            assert r["recipe"]["head"] == "text"
        if r["task"] == "captions":  # plain symmetric InfoNCE
            assert not r["recipe"]["verb_negatives"] and r["recipe"]["verb_anchors"] == 0
        if r["row"] == "meanpool" and r["task"] != "appearance":
            assert r["metrics"]["direction" if r["task"] == "motion" else "twin"] == pytest.approx(50.0)
    for r in presets:
        assert r["config"]["model"]["clip"] == "stan-tiny-v2" and r["config"]["head"] == "text"
        if r["row"] == "meanpool":  # the textured world's files are lossy h264: a decoded twin is a near-reversal
            assert abs(r["metrics"]["direction"] - 50.0) <= 5.0
