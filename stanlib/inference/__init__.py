"""Using a trained model: :class:`~stanlib.inference.predict.Predictor` (video + text -> similarity or
class; ``stanlib predict``) and checkpoint evaluation (``stanlib eval``, :mod:`stanlib.inference.evaluate`).
"""
