"""Monitoring and the retraining loop: drift, data quality and performance over the prediction log.

Modules, one concept each:

- ``settings``: the ``monitor:`` and ``retrain:`` sections of loopml.yaml.
- ``stats``: the drift statistics (KS, Wasserstein, chi-squared, Jensen-Shannon, PSI) and the
  correction for testing many features at once.
- ``reference``: what the training data looked like per feature (from a dataset profile, a
  frame or a Parquet file).
- ``sketch``: the mergeable per-window sketch, counted on the reference's bins.
- ``binning``: count slots on the bins, columns as numbers or text, Parquet read in pieces.
- ``drift``: the verdict per feature and per window (tests for small windows, effect sizes
  for large ones), data quality, and ``compare`` for two frames.
- ``logscan``: the prediction log read as typed feature batches, in windows.
- ``performance``: realised metrics once labels arrive, and the confidence-based estimate
  (CBPE) before they do.
- ``runner``: one incremental pass over the log (cursor, stored windows, alerts).
- ``alerts``: alert rules and the webhook.
- ``report_data``: the report as data (references, alerts per window, personal-data
  columns, strict JSON); ``report_plots``: its figures; ``report_html``: the
  self-contained HTML page and the files written.
- ``service``: ``loopml monitor`` as a service (one pass and its report; ``--follow``).
- ``labels``, ``calibration``: labels from the feedback log; calibrated confidence (CBPE).
- ``retrain``: the retraining policy; ``retrain_data``: labelled production rows as a
  dataset version and its holdout.
"""
