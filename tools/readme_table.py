"""The README's teaching-world table, generated from the committed result files.

    python tools/readme_table.py            # print the table
    python tools/readme_table.py --write    # rewrite it in README.md (between the teaching-table markers)

The table is :func:`stanlib.experiments.teaching_table` of the results in
``stanlib/assets/experiments/results/`` (each task's default recipe, every seed);
``tests/test_results.py`` checks that README.md holds exactly this table.
"""
import argparse
import re
from pathlib import Path

from stanlib.experiments import RESULTS_DIR, load_results, teaching_table

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- teaching-table:start -->", "<!-- teaching-table:end -->"
BLOCK = re.compile(re.escape(START) + r"\n(.*?)\n?" + re.escape(END), re.S)


def readme_block(text: str) -> str:
    """The table between the markers of a README text."""
    match = BLOCK.search(text)
    if match is None:
        raise ValueError(f"README.md has no {START} ... {END} block")
    return match.group(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the table in README.md")
    args = ap.parse_args()
    table = teaching_table(load_results(RESULTS_DIR))
    if not args.write:
        print(table)
        return 0
    text = README.read_text()
    readme_block(text)  # the markers must be there
    README.write_text(BLOCK.sub(lambda _: f"{START}\n{table}\n{END}", text))
    print(f"wrote the teaching table into {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
