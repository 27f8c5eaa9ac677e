"""Training: one engine for ``stanlib train``, the teaching experiments, tiny-CLIP pretraining and the
benchmarks.

==================  ===========================================================================
``optim``           parameter groups, AdamW, warm-up + cosine, AMP, denormal flushing, :class:`Stepper`
                    (one optimisation step: autocast, backward, unscale, clip, step, schedule)
``losses``          symmetric InfoNCE, recognition heads (class-name text, orthonormal, linear)
``distributed``     process groups and differentiable all-gather
``evaluate``        retrieval and recognition metrics, direction on reversal twins, encoding loops
``presets``         :class:`Config` (one training run) and the named presets (``stanlib presets``)
``trainer``         :class:`Trainer`: data, model, loop, checkpoints, resume (``stanlib train``)
==================  ===========================================================================

Every loop in stanlib steps through :class:`~stanlib.engine.optim.Stepper`; the names of ``optim``
are importable from here.
"""
from stanlib.engine.optim import (
                                  BETAS,
                                  EPS,
                                  NO_DECAY_KEYWORDS,
                                  Stepper,
                                  amp_settings,
                                  autocast,
                                  build_optimizer,
                                  flush_denormals,
                                  no_weight_decay,
                                  param_groups,
                                  warmup_cosine,
)

__all__ = ["BETAS", "EPS", "NO_DECAY_KEYWORDS", "Stepper", "amp_settings", "autocast", "build_optimizer",
           "flush_denormals", "no_weight_decay", "param_groups", "warmup_cosine"]
