"""Serving: the real-time API (`loopml serve`), its prediction log and tokens, batch scoring.

- :mod:`~loopml.serve.app` — the FastAPI app: v1 predict/feedback, Open Inference Protocol V2,
  health, Prometheus metrics; micro-batching (:mod:`~loopml.serve.batching`); hot swap.
- :mod:`~loopml.serve.predlog` — the prediction (and feedback) log: Parquet segments.
- :mod:`~loopml.serve.auth` — bearer tokens.
- :mod:`~loopml.serve.batch` — `loopml predict`: files scored in chunks, locally or on Ray.
"""
