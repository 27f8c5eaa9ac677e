"""The committed teaching notebooks are clean, small, Colab-ready and use the library.

Executing them is nbval's job (``make test``); this file only reads the ``.ipynb`` files, so it runs in
about a second. The rules live in ``tools/notebooks.py`` (``python tools/notebooks.py check``), which
also fixes most of them (``clean``, ``run``).
"""
from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _load_tool():
    spec = importlib.util.spec_from_file_location("stanlib_notebook_tool", REPO / "tools" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def test_course_is_present_and_named_in_order():
    names = [p.name for p in NOTEBOOKS]
    assert "00_welcome.ipynb" in names, f"notebooks found: {names}"
    for name in names:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", name), f"{name}: use NN_snake_case.ipynb"
    numbers = [n[:2] for n in names]
    assert len(set(numbers)) == len(numbers), f"two notebooks share a number: {names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_clean(path):
    found = tool.problems(path)
    assert not found, f"{path.name}:\n  - " + "\n  - ".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_figures_and_checked_facts(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any("image/png" in out.get("data", {}) for c in code for out in c.outputs), \
        f"{path.name}: no figure in the committed outputs (figures must show on GitHub)"
    assert any(c.source.lstrip().startswith("# NBVAL_CHECK_OUTPUT") for c in code), \
        f"{path.name}: no cell is checked by nbval (mark stable facts with # NBVAL_CHECK_OUTPUT)"
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 4, f"{path.name}: too little teaching text"
    assert any("Exercises" in c.source for c in nb.cells if c.cell_type == "markdown"), f"{path.name}: no exercises"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_colab_badge_install_cell_and_gpu_come_from_pyproject(path):
    """Fixed by `python tools/notebooks.py colab`: it rewrites every notebook's Colab badge, its install
    cell (one Colab-only `%pip install "stanlib[notebooks] @ git+URL"`) and, for GPU_NOTEBOOKS, the
    Colab accelerator metadata, all from the one URL of pyproject.toml's [project.urls]."""
    found = tool.colab_problems(nbformat.read(path, as_version=4), path.name)
    assert not found, (f"{path.name} is not Colab-ready; fix: python tools/notebooks.py colab\n  - "
                       + "\n  - ".join(found))


def test_readme_lists_every_notebook():
    readme = (REPO / "notebooks" / "README.md").read_text()
    for path in NOTEBOOKS:
        assert path.name in readme, f"notebooks/README.md does not mention {path.name}"
    assert "--nbval-lax" in readme, "the README must give the test command"


# ------------------------------------------------------------------ the checker itself catches what it should
def _good_notebook(name: str = "99_example.ipynb") -> nbformat.NotebookNode:
    badge = tool.colab_badge(name)
    cells = [
        nbformat.v4.new_markdown_cell(badge + "\n# Example"),
        nbformat.v4.new_code_cell('import sys\nif "google.colab" in sys.modules:\n    print("pip install stanlib")'),
        nbformat.v4.new_code_cell('PROFILE = "auto"\nSEED = 0'),
        nbformat.v4.new_code_cell("import stanlib, torch\ntorch.manual_seed(SEED)"),
    ]
    cells[2].metadata["tags"] = ["parameters"]
    for k, cell in enumerate(c for c in cells if c.cell_type == "code"):
        cell.execution_count = k + 1
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    return nb


def _problems_of(nb, tmp_path, name="99_example.ipynb") -> list[str]:
    path = tmp_path / name
    nbformat.write(nb, path)
    return tool.problems(path)


def test_checker_accepts_a_good_notebook(tmp_path):
    assert _problems_of(_good_notebook(), tmp_path) == []


@pytest.mark.parametrize("breakage, expected", [
    ("widget_state", "widget state"),
    ("module", "nn.Module"),
    ("training_loop", "training loop"),
    ("no_badge", "Colab badge"),
    ("no_parameters", "parameters"),
    ("unguarded_install", "install cell"),
    ("not_executed", "not executed"),
    ("machine_path", "machine-specific path"),
    ("cell_timing", "metadata"),
    ("no_stanlib", "import stanlib"),
])
def test_checker_flags_each_rule(tmp_path, breakage, expected):
    nb = _good_notebook()
    code = [c for c in nb.cells if c.cell_type == "code"]
    if breakage == "widget_state":
        nb.metadata["widgets"] = {tool.WIDGET_STATE: {"state": {}, "version_major": 2}}
    elif breakage == "module":
        code[-1].source += "\nclass Head(nn.Module):\n    pass"
    elif breakage == "training_loop":
        code[-1].source += "\nloss.backward()\noptimizer.step()"
    elif breakage == "no_badge":
        nb.cells[0].source = "# Example"
    elif breakage == "no_parameters":
        code[1].metadata = {}
    elif breakage == "unguarded_install":
        code[0].source = "!pip install stanlib"
    elif breakage == "not_executed":
        code[-1].execution_count = None
    elif breakage == "machine_path":
        code[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="saved /work/main/runs/x.pt\n")]
    elif breakage == "cell_timing":
        code[-1].metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
    elif breakage == "no_stanlib":
        code[-1].source = "import torch\ntorch.manual_seed(SEED)"
    found = _problems_of(nb, tmp_path)
    assert any(expected in msg for msg in found), f"{breakage}: expected a problem about {expected!r}, got {found}"


def test_checker_flags_an_oversized_notebook(tmp_path):
    nb = _good_notebook()
    nb.cells[-1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "A" * (tool.MAX_BYTES + 10)})]
    assert any("MB" in msg for msg in _problems_of(nb, tmp_path))


def test_clean_strips_widgets_and_timings_but_keeps_outputs():
    nb = _good_notebook()
    nb.metadata["widgets"] = {tool.WIDGET_STATE: {"state": {"abc": {}}}}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7", "pygments_lexer": "ipython3"}
    cell = nb.cells[-1]
    cell.metadata["execution"] = {"shell.execute_reply": "2024-01-01T00:00:00Z"}
    cell.metadata["tags"] = ["keep-me"]
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={tool.WIDGET_VIEW: {"model_id": "x"}, "text/plain": "0%| |"}),
        nbformat.v4.new_output("stream", name="stdout", text="shape (2, 128)\n"),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"}),
    ]
    cleaned = tool.clean_notebook(copy.deepcopy(nb))
    assert "widgets" not in cleaned.metadata
    assert cleaned.metadata["language_info"] == {"name": "python"}
    assert cleaned.cells[-1].metadata == {"tags": ["keep-me"]}
    kinds = [out.get("data", {}).keys() or out["output_type"] for out in cleaned.cells[-1].outputs]
    assert len(kinds) == 2, f"the widget output should be gone, the others kept: {kinds}"
    assert cleaned.cells[-1].outputs[0]["text"] == "shape (2, 128)\n"
    assert "image/png" in cleaned.cells[-1].outputs[1]["data"]
    assert tool.WIDGET_STATE not in json.dumps(cleaned)


# ------------------------------------------------------------------ Colab: one URL, one install line
def _old_style_notebook(name: str = "99_example.ipynb") -> nbformat.NotebookNode:
    """A notebook that clones the repository on Colab and points at another fork."""
    nb = _good_notebook(name)
    fork = f"https://colab.research.google.com/github/someone/fork/blob/main/notebooks/{name}"
    nb.cells[0].source = f"[![Open In Colab]({tool.COLAB_BADGE_SVG})]({fork})\n# Example"
    nb.cells[1].source = ('import os, sys\nif "google.colab" in sys.modules:\n'
                          '    !git clone https://github.com/someone/fork /content/fork\n'
                          '    !pip install -e /content/fork\n    sys.path.insert(0, "/content/fork")\n'
                          '    os.chdir("/content/fork/notebooks")')
    return nb


def test_project_url_is_the_single_pyproject_url(tmp_path):
    import tomllib

    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    assert list(urls.values()) == [tool.project_url()]
    assert tool.install_cell_source().endswith(f'%pip install -q "stanlib[notebooks] @ git+{tool.project_url()}"')
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project]\nname = "x"\n[project.urls]\nA = "https://github.com/a/b"\nB = "https://x.org"\n')
    with pytest.raises(ValueError, match="exactly one URL"):
        tool.project_url(bad)
    bad.write_text('[project]\nname = "x"\n[project.urls]\nHome = "https://gitlab.com/a/b"\n')
    with pytest.raises(ValueError, match="https://github.com/OWNER/REPO"):
        tool.project_url(bad)


@pytest.mark.parametrize("name", ["99_example.ipynb", tool.GPU_NOTEBOOKS[0]])
def test_colab_rewrite_fixes_an_old_style_notebook(name):
    nb = _old_style_notebook(name)
    found = tool.colab_problems(nb, name)
    assert any("Colab badge" in m for m in found) and any("install cell" in m for m in found)
    assert any("sys.path.insert" in m or "git clone" in m for m in found)
    assert all("python tools/notebooks.py colab" in m for m in found), found
    fixed = tool.apply_colab(copy.deepcopy(nb), name)
    assert tool.colab_problems(fixed, name) == []
    assert tool.apply_colab(copy.deepcopy(fixed), name) == fixed, "the rewrite must be idempotent"
    assert fixed.cells[0].source.startswith(tool.colab_badge(name)) and fixed.cells[0].source.endswith("# Example")
    installs = [c for c in fixed.cells if c.cell_type == "code" and "pip install" in c.source]
    assert len(installs) == 1 and "sys.path" not in installs[0].source and "chdir" not in installs[0].source
    code = [c for c in fixed.cells if c.cell_type == "code"]
    assert "parameters" in code[1].metadata["tags"], "the install cell stays right before the parameters cell"
    gpu = name in tool.GPU_NOTEBOOKS
    assert (fixed.metadata.get("accelerator") == "GPU") == gpu
    assert (fixed.metadata.get("colab", {}).get("gpuType") == "T4") == gpu
    assert tool._content_problems(fixed, name) == [], "the other hygiene rules must still accept it"


def test_colab_rewrite_adds_missing_parts_and_drops_a_stray_gpu():
    nb = _good_notebook()
    del nb.cells[1]  # no install cell
    nb.metadata["accelerator"] = "GPU"
    nb.metadata["colab"] = {"gpuType": "T4", "provenance": []}
    found = tool.colab_problems(nb, "99_example.ipynb")
    assert any("install cell" in m for m in found) and any("asks Colab for a GPU" in m for m in found)
    fixed = tool.apply_colab(nb, "99_example.ipynb")
    assert tool.colab_problems(fixed, "99_example.ipynb") == []
    assert fixed.metadata["colab"] == {"provenance": []} and "accelerator" not in fixed.metadata
    assert fixed.cells[1].source == tool.install_cell_source()


def test_percent_script_round_trip(tmp_path):
    nb = _good_notebook()
    script = tool.notebook_to_script(nb)
    src = tmp_path / "example.py"
    src.write_text(script)
    back = tool.script_to_notebook(src)
    assert [c.cell_type for c in back.cells] == [c.cell_type for c in nb.cells]
    assert [c.source for c in back.cells] == [c.source for c in nb.cells]
    assert back.cells[2].metadata["tags"] == ["parameters"]


def test_percent_script_errors_name_the_line(tmp_path):
    src = tmp_path / "bad.py"
    src.write_text("# %% [markdown]\n# fine\nnot a comment\n")
    with pytest.raises(ValueError, match=r"bad\.py:3"):
        tool.script_to_notebook(src)
