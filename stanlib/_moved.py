"""Old module paths keep working: ``import stanlib.train`` gives :mod:`stanlib.engine.trainer` itself.

stanlib's modules were grouped into subpackages (model, weights, engine, inference, teaching). Code
written against the flat layout still imports: a finder on ``sys.meta_path`` answers each old name
with the module that now holds the code (the same module object, so ``isinstance`` checks,
monkeypatching and pickles behave as before) and emits a :class:`DeprecationWarning` naming the
new path.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# old module -> new module
MOVED = {
    "stanlib.clip": "stanlib.model.clip",
    "stanlib.tokenizer": "stanlib.model.tokenizer",
    "stanlib.stan": "stanlib.model.branch",
    "stanlib.baselines": "stanlib.model.baselines",
    "stanlib.flops": "stanlib.model.flops",
    "stanlib.zoo": "stanlib.weights.zoo",
    "stanlib.train": "stanlib.engine.trainer",
    "stanlib.presets": "stanlib.engine.presets",
    "stanlib.losses": "stanlib.engine.losses",
    "stanlib.distributed": "stanlib.engine.distributed",
    "stanlib.evaluate": "stanlib.engine.evaluate",
    "stanlib.evaluate_checkpoint": "stanlib.inference.evaluate",
    "stanlib.predict": "stanlib.inference.predict",
    "stanlib.data.synth": "stanlib.teaching.synth",
    "stanlib.tiny": "stanlib.teaching.tiny",
    "stanlib.experiments": "stanlib.teaching.experiments",
    "stanlib.demo": "stanlib.teaching.demo",
}


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves the names in :data:`MOVED` to the modules that replaced them."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import {new} instead (the old name will be removed)",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module):
        pass  # the module is already executed: it is the new one


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
