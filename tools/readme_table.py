"""The README's result tables, generated from the committed result files.

    python tools/readme_table.py            # print the tables
    python tools/readme_table.py --write    # rewrite them in README.md and docs/experiments.md (between markers)

* ``teaching-table``: :func:`stanlib.teaching.experiments.teaching_table` of ``stanlib/assets/experiments/results/``
  (each task's default recipe, every seed);
* ``preset-table`` / ``textured-table``: :func:`stanlib.teaching.experiments.preset_table` of the ``stanlib train``
  runs in ``docs/results/preset-results/`` (``stanlib experiments run --preset ...``) on the bundled motion
  set and on the textured world.

``tests/test_results.py`` checks that README.md (and docs/experiments.md, for the preset tables) hold exactly
these tables.
"""
import argparse
import re
from pathlib import Path

from stanlib.teaching.experiments import (ABLATION_ROWS, LEVEL_ROWS, MAIN_ROWS, RESULTS_DIR, STRUCTURE_ROWS, default_results,
                                 load_preset_results, load_results, preset_table, results_table, teaching_table)

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs" / "experiments.md"            # holds the preset blocks too
PRESET_RESULTS = REPO / "docs" / "results"          # holds preset-results/


README_BLOCKS = ("teaching-table", "preset-table", "textured-table")
DOCS_BLOCKS = ("committed-results", "preset-table", "textured-table")


def _block(name: str) -> re.Pattern:
    return re.compile(re.escape(f"<!-- {name}:start -->") + r"\n(.*?)\n?" + re.escape(f"<!-- {name}:end -->"), re.S)


SECTIONS = (("main rows", MAIN_ROWS), ("Table 6 ablation", ABLATION_ROWS), ("Table 7 structures", STRUCTURE_ROWS),
            ("Table 8 levels (K = 2 of the 4 layers)", LEVEL_ROWS))


def committed_results(results: list[dict]) -> str:
    """docs/experiments.md 2.0: per task and group of rows, the default-recipe runs (mean ± std over seeds)."""
    runs = [r for rs in default_results(results).values() for r in rs]
    parts = []
    for task in ("motion", "appearance", "captions"):
        for title, rows in SECTIONS:
            present = [row for row in rows if any(r["task"] == task and r["row"] == row for r in runs)]
            if len(present) < 2 and title != "main rows":
                continue
            parts.append(f"**{task}, {title}** (mean ± std over seeds; last column: training CPU seconds)\n\n"
                         + results_table(runs, task, rows))
    return "\n\n".join(parts)


def tables() -> dict[str, str]:
    """Every generated block: marker name -> markdown."""
    presets = load_preset_results(PRESET_RESULTS)
    return {
        "committed-results": committed_results(load_results(RESULTS_DIR)),
        "teaching-table": teaching_table(load_results(RESULTS_DIR)),
        "preset-table": preset_table([r for r in presets if r["task"] == "tiny-motion"]),
        "textured-table": preset_table([r for r in presets if r["task"].startswith("tiny-motion@textured")]),
    }


def readme_block(text: str, name: str = "teaching-table") -> str:
    """The text between a block's markers in a README text."""
    match = _block(name).search(text)
    if match is None:
        raise ValueError(f"README.md has no <!-- {name}:start --> ... <!-- {name}:end --> block")
    return match.group(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the tables in README.md")
    args = ap.parse_args()
    blocks = tables()
    if not args.write:
        for name, table in blocks.items():
            print(f"{name}:\n{table}\n")
        return 0
    for path, names in ((README, README_BLOCKS), (DOCS, DOCS_BLOCKS)):
        text = path.read_text()
        written = []
        for name in names:
            table = blocks[name]
            readme_block(text, name)  # the markers must be there
            text = _block(name).sub(lambda _: f"<!-- {name}:start -->\n{table}\n<!-- {name}:end -->", text)
            written.append(name)
        path.write_text(text)
        print(f"wrote {', '.join(written)} into {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
