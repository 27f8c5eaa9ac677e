"""The model: open_clip's CLIP plus the STAN branch, and the structures it is compared with.

==================  ===========================================================================
``config``          :class:`STANConfig`: every field that rebuilds a model (``config.json``)
``clip``            :func:`create_clip`: open_clip CLIP from a name and weights (files, Hugging Face folders)
``tokenizer``       :func:`get_tokenizer`: open_clip's BPE, or the tiny CLIP's word vocabulary
``branch``          :class:`STANBranch`: intra-frame and cross-frame modules over K CLIP levels
``stan``            :class:`STANModel` and :func:`create_model`: CLIP + branch, read top to bottom
``baselines``       posterior and intermediate structures (seqTransf, TDB, ST-Adapter, X-CLIP)
``flops``           per-view GFLOPs and parameter counts (``stanlib flops``)
==================  ===========================================================================

Layer: imports :mod:`stanlib.weights.io` and :mod:`stanlib.weights.keymaps` (reading files), nothing
above them.
"""
from stanlib.model.clip import create_clip, list_clips
from stanlib.model.config import ARCHS, STANConfig, parse_levels
from stanlib.model.stan import STANModel, create_model
from stanlib.model.tokenizer import get_tokenizer

__all__ = ["ARCHS", "STANConfig", "STANModel", "create_clip", "create_model", "get_tokenizer", "list_clips",
           "parse_levels"]
