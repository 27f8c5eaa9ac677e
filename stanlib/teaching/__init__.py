"""The teaching world: everything that lets STAN's claims be shown on a CPU in minutes.

==================  ===========================================================================
``synth``           synthetic videos whose labels need motion, appearance or both (``stanlib synth``)
``tiny``            the tiny CLIP and its pretraining on synthetic images (``stanlib pretrain-tiny``)
``experiments``     the paper's comparisons in miniature: recipes, rows, seeds, result files
                    (``stanlib experiments``)
``demo``            mean pooling vs STAN on the motion task, end to end (``stanlib demo``)
==================  ===========================================================================

Modules are imported on first use (``from stanlib.teaching import experiments``).
"""
