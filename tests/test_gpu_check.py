"""tools/gpu_check.py: its CPU rehearsal runs notebook 07 end to end and measures the input pipeline both ways,
also where IPython is not installed (as on a bare GPU machine); the committed H200 reports render."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# runs the tool with `import IPython` failing, as on a machine without it
BLOCK_IPYTHON = """
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "IPython" or name.startswith("IPython."):
            raise ImportError("IPython is not installed here")
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_dry_run_without_ipython_runs_the_notebook_and_both_input_paths(tmp_path):
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-c", BLOCK_IPYTHON, str(REPO / "tools" / "gpu_check.py"), "--dry-run",
                           "--only", "input", "notebook", "--out", str(out), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["complete"] and report["info"]["dry_run"]
    nb = report["notebook"]
    assert nb["ran_end_to_end"], [c for c in nb["cells"] if c["status"] != "ok"]
    assert all(c["status"] == "ok" for c in nb["cells"]) and len(nb["cells"]) >= 10
    assert list((tmp_path / "work" / "dry_run" / "notebook").glob("figure_*.png")), "display() saved no figure"
    rows = report["input_pipeline"]
    assert {(r["videos"], r["normalise_on"]) for r in rows} == {(v, n) for v in ("raw", "compressed")
                                                                for n in ("workers", "device")}
    assert all(r["clips_per_s"] > 0 for r in rows)
    assert out.with_suffix(".md").read_text().startswith("# GPU check")


def test_committed_h200_reports_render():
    sys.path.insert(0, str(REPO / "tools"))
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_check

    folder = REPO / "docs" / "results" / "gpu_check"
    train = json.loads((folder / "h200_train_step.json").read_text())
    summary = gpu_check.summarise(train)
    best = summary["best_train"]["ViT-B-16 8 frames"]
    assert best["mfu"] == max(r["mfu"] for r in train["train_step"] + train["train_step_compiled"]
                              if r.get("mfu") and r["model"] == "ViT-B-16")
    assert "| ViT-B-16 | 8 | 128 |" in gpu_check.markdown(train)
    notebook = json.loads((folder / "h200_notebook07.json").read_text())
    assert notebook["notebook"]["ran_end_to_end"] and notebook["notebook"]["profile"] == "gpu"
