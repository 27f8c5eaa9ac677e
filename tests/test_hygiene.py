"""The repository describes the software, not the story of its making.

- No wording that only makes sense to the people who built it: numbered work rounds (a "session"
  and its number), tracker numbers (an "issue" and its number), borrowed hardware (a "lent" GPU).
  Results name the hardware and the date they were measured on instead; design notes say what was
  measured and what was learnt.
- Code that cites the architecture document cites a section that exists, and nothing cites the
  outside specification file the code was once written against (it is not in the repository).

A failure lists every offending ``file:line``.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ["README.md", "Makefile", "docs", "stanlib", "notebooks", "tools", "tests", "data_samples"]
SUFFIXES = {".py", ".md", ".ipynb", ".sh", ".cfg", ".toml", ".txt", ".yml", ".yaml"}
SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints"}
# written so that the pattern does not match its own source line
MAKING_OF = re.compile(r"sessio[n] [0-9]|issu[e] [0-9]|len[t] H100|issu[e]_?9", re.IGNORECASE)
ARCHITECTURE_CITATION = re.compile(r"docs/architecture\.md,? (?:section|sec\.) ?(\d+)")
MISSING_SPEC = re.compile(r"STAN_SPE[C]")  # not matching its own source line


def scanned_files():
    for entry in SCANNED:
        path = ROOT / entry
        if path.is_file():
            yield path
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                if (file.is_file() and file.suffix in SUFFIXES and not SKIPPED_PARTS & set(file.parts)
                        and file.resolve() != Path(__file__).resolve()):
                    yield file


def matches(pattern: re.Pattern, files) -> list[tuple[str, str]]:
    """``(file:line, text)`` of every line of ``files`` that ``pattern`` finds something in."""
    found = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                name = file.relative_to(ROOT) if file.is_relative_to(ROOT) else file
                found.append((f"{name}:{number}", line.strip()[:160]))
    return found


def test_no_making_of_narration():
    found = matches(MAKING_OF, scanned_files())
    assert not found, ("wording about how the project was made (say what the software does, how to reproduce "
                       "a number, what was learnt; results carry hardware and date):\n"
                       + "\n".join(f"  {where}: {text}" for where, text in found))


def test_the_scan_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "notes.md"
    sample.write_text("fine\nIn Sess" "ion 4 we tried\nsee ISS" "UE 9\nran on a len" "t h100\nsessions of training\n")
    assert [where.rsplit(":", 1)[1] for where, _ in matches(MAKING_OF, [sample])] == ["2", "3", "4"]


def test_architecture_citations_point_at_existing_sections():
    headings = set(re.findall(r"^## (\d+)\. ", (ROOT / "docs" / "architecture.md").read_text(), re.MULTILINE))
    assert {str(n) for n in range(1, 11)} <= headings
    bad = []
    for file in scanned_files():
        if file.suffix not in (".py", ".md", ".ipynb"):
            continue
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            for section in ARCHITECTURE_CITATION.findall(line):
                if section not in headings:
                    bad.append(f"  {file.relative_to(ROOT)}:{number}: section {section}")
    assert not bad, "citations of missing docs/architecture.md sections:\n" + "\n".join(bad)


def test_no_citation_of_a_spec_outside_the_repository():
    found = matches(MISSING_SPEC, scanned_files())
    assert not found, ("citations of a specification that is not part of the repository: cite "
                       "docs/architecture.md (its numbered sections) instead:\n" + "\n".join(f"  {where}: {text}" for where, text in found))
