"""Packaging: environment.yml lists the same dependencies as pyproject.toml; the CLI answers."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {r.replace(" ", "") for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    text = (ROOT / "environment.yml").read_text()
    conda_part, pip_part = text.split("- pip:", 1)
    items = lambda part: [m.group(1).strip() for m in re.finditer(r"^\s*-\s+(.+)$", part, re.M)]  # noqa: E731
    pip_lines = items(pip_part)
    env = {line.replace(" ", "") for line in pip_lines if not line.startswith("-e")}
    assert env == declared, f"only in environment.yml: {sorted(env - declared)}; only in pyproject: {sorted(declared - env)}"
    assert "python=3.11" in items(conda_part)
    assert "-e .[dev]" in pip_lines


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_cli_lists_commands_and_flops_runs():
    out = subprocess.run([sys.executable, "-m", "stanlib", "--help"], capture_output=True, text=True, check=True).stdout
    assert "flops" in out and "train" in out and "demo" in out
    res = subprocess.run([sys.executable, "-m", "stanlib", "flops", "--clip", "ViT-B-16", "--frames", "8",
                          "--temporal", "attn", "--depth", "4"], capture_output=True, text=True, check=True)
    assert "197.8" in res.stdout and "197.7" in res.stdout  # ours and the paper's
    bad = subprocess.run([sys.executable, "-m", "stanlib", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command" in bad.stderr
