"""Optimised model formats: ONNX export with proven parity, a latency profile, edge bundles.

- :mod:`loopml.optimize.contract` — how rows go into a loopml ONNX model and answers come out.
"""
