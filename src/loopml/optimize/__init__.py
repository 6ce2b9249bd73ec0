"""Optimised model formats: ONNX export with proven parity, a latency profile, edge bundles.

- :mod:`~loopml.optimize.contract` — how rows go into a loopml ONNX model and answers come out.
- :mod:`~loopml.optimize.export` — ``to_onnx``: a trained model, preprocessing included, as one
  graph (:mod:`~loopml.optimize.graph` builds nodes; :mod:`~loopml.optimize.estimators`
  writes the estimators, trees with double thresholds).
- :mod:`~loopml.optimize.runtime` — ``OnnxModel``: an onnxruntime session behind
  ``predict``/``predict_proba``.
- :mod:`~loopml.optimize.parity` and :mod:`~loopml.optimize.profile` — the native model against
  its export: the same answers (stated tolerances), and which is faster on this machine.
- :mod:`~loopml.optimize.bundle` (with ``bundle_predict.py``, the bundle's ``predict.py``) and
  :mod:`~loopml.optimize.foreign` — edge bundles, and ONNX models trained elsewhere.
"""
