"""Evaluation of any model on held-out data: metrics, curves, threshold, slices, fairness,
explanations, and the model card that shows them.

Public surface: :func:`evaluate` (in ``report.py``) and :func:`render_card` (in ``card.py``).
"""
