"""Command line: ``stanlib <command> ...`` (also ``python -m stanlib <command> ...``).

Each command lives in the module that does the work and exposes ``cli_main(argv) -> int``;
this file only dispatches, so commands stay next to their code and import lazily (fast ``--help``).
"""
from __future__ import annotations

import importlib
import sys

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "flops": ("stanlib.model.flops", "per-view GFLOPs (paper convention) and parameter counts"),
    "synth": ("stanlib.teaching.synth", "write synthetic teaching videos + annotations"),
    "data": ("stanlib.data.tools", "data check <dataset> / data bench / data compress"),
    "presets": ("stanlib.engine.presets", "list training presets and their key values"),
    "train": ("stanlib.engine.trainer", "train a model from a preset"),
    "eval": ("stanlib.inference.evaluate", "evaluate a checkpoint"),
    "attention": ("stanlib.viz.cli", "attention-map figures and GIF for one video"),
    "predict": ("stanlib.inference.predict", "video + text -> similarity / class"),
    "convert": ("stanlib.weights.convert", "convert checkpoints (authors' mmengine layout <-> stanlib)"),
    "pretrain-tiny": ("stanlib.teaching.tiny", "pretrain the tiny teaching CLIP on synthetic images"),
    "experiments": ("stanlib.teaching.experiments", "run the miniature paper experiments"),
    "demo": ("stanlib.teaching.demo", "the main job: mean pooling vs STAN on the motion task"),
    "vocab": ("stanlib.model.tokenizer", "the tiny CLIP's vocabulary; check texts for unknown words"),
}

# not a command of the package: the model benchmarks are a script of the repository
BENCHMARKS = "the benchmarks are `python benchmarks/bench.py ...` in the stanlib repository"


def _usage() -> str:
    lines = ["usage: stanlib <command> [options]", "", "commands:"]
    lines += [f"  {name:<14} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `stanlib <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name == "bench":
        print(f"stanlib bench: {BENCHMARKS} (decoding throughput: stanlib data bench)", file=sys.stderr)
        return 2
    if name not in COMMANDS:
        print(f"stanlib: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.cli_main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
