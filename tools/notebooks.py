"""Build, execute, clean and check the teaching notebooks (``notebooks/*.ipynb``).

::

    python tools/notebooks.py build SRC.py notebooks/NAME.ipynb   # percent-format script -> notebook
    python tools/notebooks.py export notebooks/NAME.ipynb SRC.py  # notebook -> percent-format script
    python tools/notebooks.py run [NOTEBOOK ...]    # execute in place (CPU profile), clean, report times
    python tools/notebooks.py clean [NOTEBOOK ...]  # strip widget state and machine-specific metadata
    python tools/notebooks.py check [NOTEBOOK ...]  # the hygiene rules of tests/test_notebooks_hygiene.py
    python tools/notebooks.py colab [NOTEBOOK ...]  # Colab badge, install cell, GPU metadata from pyproject.toml

Without NOTEBOOK arguments every ``notebooks/*.ipynb`` is used. ``run`` executes with nbclient on a
kernel of *this* Python (the venv that runs the script), from the notebook's folder, with
``HF_HUB_OFFLINE=1``; the notebook is saved with its outputs (the committed CPU-profile outputs) and
then cleaned. The percent format is jupytext's: ``# %%`` starts a code cell, ``# %% [markdown]`` a
markdown cell whose lines start with ``# ``; ``# %% tags=["parameters"]`` tags a cell.

``colab`` rewrites, from the one project URL in ``pyproject.toml`` (``[project.urls]``), each
notebook's Colab badge (first cell), its install cell (one ``%pip install`` of
``stanlib[notebooks] @ git+URL``, run only on Colab) and its Colab accelerator metadata (a T4 GPU for
the notebooks in :data:`GPU_NOTEBOOKS`, none for the others). ``check`` reports what ``colab``
would change.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Optional

import nbformat

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
PYPROJECT = REPO / "pyproject.toml"
MAX_BYTES = 2_000_000
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# notebook-level metadata worth keeping; everything else (widgets, papermill, vscode...) goes
KEEP_NOTEBOOK_META = ("kernelspec", "language_info", "colab", "accelerator")
KEEP_CELL_META = ("tags",)
# text that only makes sense on one machine
MACHINE_PATTERNS = (r"/work/main", r"/home/[a-z_][\w-]*/", r"/Users/\w+", r"/tmp/[\w.-]+/", r"[A-Z]:\\\\Users")



# ------------------------------------------------------------------------------------------ Colab
COLAB_BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
# notebooks that want a GPU on Colab (they get accelerator metadata; the others run on a CPU runtime)
GPU_NOTEBOOKS = ("07_colab_finetune.ipynb",)
COLAB_GPU_META = {"accelerator": "GPU", "colab": {"gpuType": "T4"}}
COLAB_FIX = "run `python tools/notebooks.py colab`"
_BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def project_url(pyproject: Path = PYPROJECT) -> str:
    """The project's URL: the one entry of ``[project.urls]`` in ``pyproject.toml``, a GitHub repository."""
    import tomllib

    urls = tomllib.loads(Path(pyproject).read_text())["project"].get("urls", {})
    if len(urls) != 1:
        raise ValueError(f"{pyproject}: [project.urls] must hold exactly one URL (the GitHub repository), "
                         f"found {urls or 'none'}")
    url = next(iter(urls.values())).rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"{pyproject}: [project.urls] holds {url!r}; Colab opens notebooks from GitHub, so it "
                         "must be https://github.com/OWNER/REPO")
    return url.removesuffix(".git")


def colab_url(name: str, url: Optional[str] = None) -> str:
    """The address that opens ``notebooks/<name>`` of the repository's main branch in Colab."""
    repo = (url or project_url()).removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{name}"


def colab_badge(name: str, url: Optional[str] = None) -> str:
    """The markdown "Open In Colab" badge of a notebook."""
    return f"[![Open In Colab]({COLAB_BADGE_SVG})]({colab_url(name, url)})"


def install_cell_source(url: Optional[str] = None) -> str:
    """The notebooks' install cell: one ``%pip install`` of stanlib with the notebooks extra, Colab only."""
    return ("# Colab only: install stanlib from GitHub (elsewhere this cell does nothing)\n"
            "import sys\n"
            "\n"
            'if "google.colab" in sys.modules:\n'
            f'    %pip install -q "stanlib[notebooks] @ git+{url or project_url()}"')


def _is_install_cell(cell) -> bool:
    return cell.cell_type == "code" and "pip install" in cell.source


def apply_colab(nb: nbformat.NotebookNode, name: str, url: Optional[str] = None) -> nbformat.NotebookNode:
    """Rewrite ``nb`` (in place, returned) for Colab from the project URL: the badge in the first
    markdown cell, one install cell before the parameters cell, and the accelerator metadata."""
    url = url or project_url()
    badge = colab_badge(name, url)
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "markdown" and _BADGE.search(first.source):
        first.source = _BADGE.sub(lambda _: badge, first.source, count=1)
    elif first is not None and first.cell_type == "markdown":
        first.source = badge + "\n\n" + first.source
    else:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(badge))
    installs = [k for k, c in enumerate(nb.cells) if _is_install_cell(c)]
    if installs:
        nb.cells[installs[0]].source = install_cell_source(url)
        nb.cells[installs[0]].outputs = []
        for k in reversed(installs[1:]):
            del nb.cells[k]
    else:
        params = [k for k, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
        cell = nbformat.v4.new_code_cell(install_cell_source(url))
        nb.cells.insert(params[0] if params else 1, cell)
    if name in GPU_NOTEBOOKS:
        nb.metadata["accelerator"] = COLAB_GPU_META["accelerator"]
        nb.metadata["colab"] = {**nb.metadata.get("colab", {}), **COLAB_GPU_META["colab"]}
    else:
        nb.metadata.pop("accelerator", None)
        colab = {k: v for k, v in nb.metadata.pop("colab", {}).items() if k != "gpuType"}
        if colab:
            nb.metadata["colab"] = colab
    return nb


def colab_problems(nb: nbformat.NotebookNode, name: str, url: Optional[str] = None) -> list[str]:
    """What :func:`apply_colab` would change (empty list = the notebook is Colab-ready); every message
    names the command that fixes it."""
    url = url or project_url()
    issues = []
    badge = colab_badge(name, url)
    first = nb.cells[0] if nb.cells else None
    badges = _BADGE.findall(first.source) if first is not None and first.cell_type == "markdown" else []
    if badges != [badge]:
        issues.append(f"the first cell must hold the one Colab badge {badge} (found {badges or 'none'}): {COLAB_FIX}")
    installs = [c for c in nb.cells if _is_install_cell(c)]
    if len(installs) != 1 or installs[0].source != install_cell_source(url):
        issues.append(f"need exactly one install cell, the Colab-only `%pip install` of stanlib from {url} "
                      f"(found {len(installs)}, not in that form): {COLAB_FIX}")
    for k, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        hack = re.search(r"sys\.path\.(insert|append)\(|os\.chdir\(|git clone", cell.source)
        if hack:
            issues.append(f"code cell {k} uses {hack.group(0)!r}: the installed package is all a notebook needs "
                          f"(no clone, no path changes): {COLAB_FIX}")
    gpu = {k: nb.metadata.get(k) for k in ("accelerator", "colab")}
    if name in GPU_NOTEBOOKS:
        if gpu["accelerator"] != "GPU" or (gpu["colab"] or {}).get("gpuType") != "T4":
            issues.append(f"a GPU notebook needs Colab metadata {COLAB_GPU_META} (has {gpu}): {COLAB_FIX}")
    elif gpu["accelerator"] is not None or "gpuType" in (gpu["colab"] or {}):
        issues.append(f"asks Colab for a GPU ({gpu}) but is not in GPU_NOTEBOOKS of tools/notebooks.py: {COLAB_FIX}")
    return issues


# ------------------------------------------------------------------------------------------ build/export
_CELL_START = re.compile(r"^# %%(?P<rest>.*)$")


def _parse_header(rest: str, path: Path, line: int) -> tuple[str, list[str]]:
    """``' [markdown] tags=["x"]'`` -> ("markdown", ["x"])."""
    kind = "code"
    rest = rest.strip()
    if rest.startswith("[markdown]"):
        kind, rest = "markdown", rest[len("[markdown]"):].strip()
    tags: list[str] = []
    if rest:
        m = re.fullmatch(r"tags=(\[.*\])", rest)
        if not m:
            raise ValueError(f"{path}:{line}: cannot read cell header '# %%{rest}'; expected "
                             "'# %%', '# %% [markdown]' or '# %% tags=[\"name\"]'")
        tags = json.loads(m.group(1))
    return kind, tags


def _markdown_source(lines: list[str], path: Path, start: int) -> str:
    out = []
    for k, line in enumerate(lines):
        if line == "#":
            out.append("")
        elif line.startswith("# "):
            out.append(line[2:])
        elif line.strip() == "":
            out.append("")
        else:
            raise ValueError(f"{path}:{start + k}: markdown line must start with '# ': {line!r}")
    return "\n".join(out).strip("\n")


def script_to_notebook(path: Path) -> nbformat.NotebookNode:
    """Read a percent-format script into a notebook (cell ids are stable: ``c00``, ``c01``...)."""
    lines = Path(path).read_text().splitlines()
    cells, current, header = [], [], None
    for number, line in enumerate(lines + ["# %%"], start=1):
        m = _CELL_START.match(line)
        if not m:
            current.append(line)
            continue
        if header is not None:
            kind, tags, start = header
            if kind == "markdown":
                cell = nbformat.v4.new_markdown_cell(_markdown_source(current, path, start))
            else:
                cell = nbformat.v4.new_code_cell("\n".join(current).strip("\n"))
            if tags:
                cell.metadata["tags"] = tags
            cells.append(cell)
        elif any(s.strip() for s in current):
            raise ValueError(f"{path}: text before the first '# %%' cell marker")
        if number <= len(lines):
            header = (*_parse_header(m.group("rest"), path, number), number + 1)
        current = []
    for k, cell in enumerate(cells):
        cell.id = f"c{k:02d}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    return nb


def notebook_to_script(nb: nbformat.NotebookNode) -> str:
    """The inverse of :func:`script_to_notebook` (outputs are dropped)."""
    parts = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags")
        suffix = f" tags={json.dumps(tags)}" if tags else ""
        if cell.cell_type == "markdown":
            body = "\n".join(f"# {line}" if line else "#" for line in cell.source.splitlines())
            parts.append(f"# %% [markdown]{suffix}\n{body}")
        elif cell.cell_type == "code":
            parts.append(f"# %%{suffix}\n{cell.source}")
    return "\n\n".join(parts) + "\n"


def build(src: Path, dst: Path) -> None:
    """Write ``dst`` from the script ``src``, keeping the notebook-level metadata ``dst`` already has."""
    nb = script_to_notebook(src)
    if dst.exists():
        old = nbformat.read(dst, as_version=4)
        nb.metadata.update({k: v for k, v in old.metadata.items() if k in KEEP_NOTEBOOK_META})
    nbformat.write(nb, dst)
    print(f"built {dst} ({len(nb.cells)} cells) from {src}")


# ------------------------------------------------------------------------------------------ clean
def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip widget state and views, execution timings and other per-machine metadata; keep outputs."""
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEEP_NOTEBOOK_META}
    if "language_info" in nb.metadata:  # the exact Python/pygments versions are machine facts
        nb.metadata["language_info"] = {"name": nb.metadata["language_info"].get("name", "python")}
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEEP_CELL_META}
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None:
                if WIDGET_VIEW in data or WIDGET_STATE in data:
                    # a widget view cannot render without its (stripped) state, and its text fallback is
                    # stale (a tqdm bar frozen at 0%, "VBox(...)"): drop the whole output
                    continue
                out["metadata"] = {k: v for k, v in out.get("metadata", {}).items() if k in ("image/png",)}
            previous = kept[-1] if kept else None
            if (out.get("output_type") == "stream" and previous is not None
                    and previous.get("output_type") == "stream" and previous.get("name") == out.get("name")):
                # consecutive writes to one stream are one block of text (as Jupyter shows them)
                previous["text"] = "".join(previous["text"]) + "".join(out["text"])
                continue
            kept.append(out)
        cell.outputs = kept
    return nb


# ------------------------------------------------------------------------------------------ check
def _code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _walk(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield f"{path}/{k}", k, v
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{path}[{i}]")


def _output_text(out: dict) -> str:
    if out.get("output_type") == "stream":
        return "".join(out.get("text", ""))
    data = out.get("data", {})
    return "".join("".join(v) if isinstance(v, list) else str(v)
                   for k, v in data.items() if k.startswith("text/"))


def problems(path: Path) -> list[str]:
    """Everything wrong with one notebook (empty list = clean). The rules of the README's course."""
    path = Path(path)
    issues: list[str] = []
    size = path.stat().st_size
    if size > MAX_BYTES:
        issues.append(f"{size / 1e6:.1f} MB > {MAX_BYTES / 1e6:.0f} MB: shrink figures (dpi) or outputs")
    raw = json.loads(path.read_text())
    for where, key, _ in _walk(raw):
        if key in (WIDGET_STATE, "widgets"):
            issues.append(f"widget state at {where}: run `python tools/notebooks.py clean {path.name}`")
            break
    nb = nbformat.reads(json.dumps(raw), as_version=4)
    extra = set(nb.metadata) - set(KEEP_NOTEBOOK_META)
    if extra:
        issues.append(f"notebook metadata {sorted(extra)} is machine/editor specific: clean it")
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        issues.append("kernelspec name must be 'python3' (not a machine-specific kernel)")
    for k, cell in enumerate(nb.cells):
        extra = set(cell.metadata) - set(KEEP_CELL_META)
        if extra:
            issues.append(f"cell {k}: metadata {sorted(extra)} (timings, collapse state...): clean it")
            break
    issues += _content_problems(nb, path.name)
    return issues


def _content_problems(nb, name: str) -> list[str]:
    issues = []
    first = nb.cells[0] if nb.cells else None
    badge = colab_url(name)
    if first is None or first.cell_type != "markdown" or badge not in first.source \
            or "colab-badge.svg" not in first.source:
        issues.append(f"the first cell must be markdown with the Colab badge linking to {badge}")
    code = _code(nb)
    params = [k for k, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    if len(params) != 1:
        issues.append(f"need exactly one code cell tagged 'parameters', found {len(params)}")
    else:
        src = code[params[0]].source
        if not re.search(r"^(PROFILE\s*=\s*\"auto\"|TRAIN\s*=\s*False)", src, re.M):
            issues.append('the parameters cell must set PROFILE = "auto" (runs anywhere) or TRAIN = False '
                          '(trained models by default, training one switch away)')
        if params[0] > 1:
            issues.append("the parameters cell must come first (after the Colab install cell)")
    install = [c for c in code if "pip install" in c.source]
    if not install or any("google.colab" not in c.source for c in install):
        issues.append("need an install cell that only acts on Colab ('google.colab' guard around pip install)")
    sources = "\n".join(c.source for c in code)
    if not re.search(r"^\s*(import stanlib|from stanlib)", sources, re.M):
        issues.append("the notebook must import stanlib")
    if not re.search(r"seed_everything\(|torch\.manual_seed\(", sources):
        issues.append("the notebook must seed (stanlib.engine.trainer.seed_everything or torch.manual_seed)")
    if re.search(r"^\s*class \w+\((torch\.)?(nn\.)?Module\)", sources, re.M):
        issues.append("defines an nn.Module: models belong in stanlib, notebooks import them")
    # one training loop may be written out to teach it, in a cell that says so; real training uses the library
    loops = [c.source for c in code if re.search(r"\.backward\(|optimizer\.step\(|\boptim\.\w+\(", c.source)]
    if len(loops) > 1 or any("# forward" not in src for src in loops):
        issues.append("has a training loop of its own: use stanlib.engine.trainer.Trainer or stanlib.teaching.experiments "
                      "(one written-out teaching loop is allowed: mark its forward pass with a '# forward' comment)")
    for k, cell in enumerate(code):
        if cell.execution_count is None and cell.source.strip():
            issues.append(f"code cell {k} was not executed: run `python tools/notebooks.py run {name}`")
            break
    for k, cell in enumerate(code):
        for out in cell.outputs:
            if out.get("output_type") == "error":
                issues.append(f"code cell {k} has an error output ({out.get('ename')})")
            text = _output_text(out)
            for pattern in MACHINE_PATTERNS:
                if re.search(pattern, text):
                    issues.append(f"code cell {k} prints a machine-specific path ({pattern}): print it "
                                  "relative to the repository")
                    break
    return issues


# ------------------------------------------------------------------------------------------ run
def execute(path: Path, timeout: int = 600) -> float:
    """Execute a notebook in place with this Python's kernel; returns the wall time in seconds."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_before = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "MPLBACKEND", "PYDEVD_DISABLE_FILE_VALIDATION")}
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # silences a debugger warning on stderr
    os.environ.pop("MPLBACKEND", None)  # the inline backend, so figures are saved in the notebook
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - start
    nbformat.write(clean_notebook(nb), path)
    return seconds


def _targets(names: list[str]) -> list[Path]:
    if not names:
        return sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    out = []
    for n in names:
        p = Path(n)
        if not p.exists() and (NOTEBOOK_DIR / n).exists():
            p = NOTEBOOK_DIR / n
        if not p.exists() and (NOTEBOOK_DIR / f"{n}.ipynb").exists():
            p = NOTEBOOK_DIR / f"{n}.ipynb"
        if not p.exists():
            raise FileNotFoundError(f"notebook {n!r} not found (looked in . and {NOTEBOOK_DIR})")
        out.append(p)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/notebooks.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="percent-format script -> notebook (no outputs)")
    b.add_argument("src", type=Path)
    b.add_argument("dst", type=Path)
    e = sub.add_parser("export", help="notebook -> percent-format script")
    e.add_argument("src", type=Path)
    e.add_argument("dst", type=Path)
    r = sub.add_parser("run", help="execute in place, clean, print durations")
    r.add_argument("notebooks", nargs="*")
    r.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    c = sub.add_parser("clean", help="strip widget state and machine-specific metadata")
    c.add_argument("notebooks", nargs="*")
    k = sub.add_parser("check", help="hygiene rules (size, metadata, badge, parameters, imports...)")
    k.add_argument("notebooks", nargs="*")
    g = sub.add_parser("colab", help="Colab badge, install cell and GPU metadata from pyproject's [project.urls]")
    g.add_argument("notebooks", nargs="*")
    args = ap.parse_args(argv)

    if args.cmd == "build":
        build(args.src, args.dst)
    elif args.cmd == "export":
        args.dst.write_text(notebook_to_script(nbformat.read(args.src, as_version=4)))
        print(f"wrote {args.dst}")
    elif args.cmd == "run":
        times = {}
        for path in _targets(args.notebooks):
            print(f"running {path.name} ...", flush=True)
            times[path.name] = execute(path, args.timeout)
            print(f"  {path.name}: {times[path.name]:.0f} s", flush=True)
        print("\n".join(["", "execution times:"] + [f"  {n:<36} {s:6.0f} s" for n, s in times.items()]
                        + [f"  {'total':<36} {sum(times.values()):6.0f} s"]))
    elif args.cmd == "clean":
        for path in _targets(args.notebooks):
            nbformat.write(clean_notebook(nbformat.read(path, as_version=4)), path)
            print(f"cleaned {path.name}")
    elif args.cmd == "colab":
        url = project_url()
        for path in _targets(args.notebooks):
            nb = nbformat.read(path, as_version=4)
            changes = colab_problems(nb, path.name, url)
            if changes:
                nbformat.write(apply_colab(nb, path.name, url), path)
            print(f"{path.name}: " + (f"rewritten for Colab ({url})" if changes else "already Colab-ready"))
    else:
        bad = 0
        for path in _targets(args.notebooks):
            found = problems(path) + colab_problems(nbformat.read(path, as_version=4), path.name)
            bad += bool(found)
            print(f"{path.name}: " + ("ok" if not found else "\n  - " + "\n  - ".join(found)))
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
