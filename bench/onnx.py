"""ONNX benchmark: each trainer's native model against its ONNX export, on one dataset.

Data: loopml's generated credit dataset (``loopml.demo_data.make_credit``, 20,000 rows,
seed 7; nothing is downloaded) with one generated date column added (``applied_at``, so the
date-part graph is measured too). Features are inferred as ``loopml train`` infers them
(the id and the personal e-mail are dropped): 4 numbers, 3 categories, 1 date. Target:
``default`` (binary).

Models are built as ``loopml train`` builds its final model: ``build_preprocessor`` for the
trainer's family, the trainer's default parameters (the first search trial), fitted on 80 %
of the rows with ``n_jobs`` = all cores (the refit's setting), threshold 0.5.

For each trainer, with :func:`loopml.optimize.profile.profile` (what ``loopml models
export`` records) on the 20 % held-out rows:

- single-row latency p50/p99 (µs), 200 calls of one row each after 10 warm-up calls (the
  native model stops after 2 s): ``native.predict_proba`` and ``OnnxModel.predict_proba``
  (frame → inputs → session, one intra-op thread), and the bare ``session.run`` on
  prepared inputs;
- rows/s on 1,000 and 100,000 rows resampled from the held-out rows, plus the 100,000-row
  batch on an ONNX session with one intra-op thread per core;
- file size: the native model as ``joblib`` bytes (what the registry stores, less its
  header), the ONNX file;
- parity: :func:`loopml.optimize.parity.check_parity` on the held-out rows.

Targets (issue 8): ONNX single row ≤ 100 µs and ≥ 50× faster than native; batch ≥ 1.5×.

Run: ``.venv/bin/python bench/onnx.py`` (results printed and written to bench/out/onnx.json).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

from common import machine, versions, write_report  # bench/common.py, beside this script

# This file is bench/onnx.py: with its folder first on sys.path, "import onnx" would find it.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

OUT_FILE = HERE / "out" / "onnx.json"
TRAINERS = ["logistic", "random_forest", "hist_gradient_boosting", "lightgbm", "xgboost",
            *(["mlp"] if importlib.util.find_spec("torch") else [])]  # mlp: the torch extra


def dataset(rows: int, seed: int) -> Any:
    """Return the credit rows with a generated application date."""
    import numpy as np
    import pandas as pd

    from loopml.demo_data import make_credit

    frame = make_credit(rows, seed=seed)
    rng = np.random.default_rng(seed)
    seconds = rng.integers(0, 3 * 365 * 86400, rows)
    frame["applied_at"] = pd.Timestamp("2022-01-01") + pd.to_timedelta(seconds, unit="s")
    return frame


def build(trainer: str, train: Any, *, n_jobs: int) -> Any:
    """Return a TrainedModel fitted as ``loopml train`` fits its final model."""
    from sklearn.pipeline import Pipeline

    from loopml.config import FeaturesSection
    from loopml.train.features import build_preprocessor, infer_features
    from loopml.train.model import TrainedModel
    from loopml.train.trainers import get_trainer

    features = infer_features(train, target="default", spec=FeaturesSection(),
                              sensitive=[])
    builder = get_trainer(trainer)
    X, y = train[features.columns], train["default"].to_numpy()
    pipeline = Pipeline([
        ("features", build_preprocessor(features, X, tree_based=builder.tree_based,
                                        task="binary")),
        ("model", builder.build(builder.defaults("binary"), task="binary", seed=0,
                                n_jobs=n_jobs)),
    ]).fit(X, y)
    return TrainedModel(pipeline=pipeline, task="binary", target="default",
                        input_columns=features.columns, classes=[0, 1], candidate=trainer)


def measure(trainer: str, train: Any, test: Any) -> dict[str, Any]:
    import joblib

    from loopml.optimize.export import to_onnx
    from loopml.optimize.parity import check_parity
    from loopml.optimize.profile import _batch, profile
    from loopml.optimize.runtime import OnnxModel

    cores = os.cpu_count() or 1
    started = time.perf_counter()
    native = build(trainer, train, n_jobs=cores)
    fit_s = time.perf_counter() - started
    buffer = io.BytesIO()
    joblib.dump(native, buffer)
    started = time.perf_counter()
    blob = to_onnx(native)
    export_s = time.perf_counter() - started
    exported = OnnxModel.from_bytes(blob)
    parity = check_parity(native, exported, test)
    report = profile(native, exported, test, onnx_bytes=blob,
                     native_bytes=len(buffer.getvalue()))
    threaded = OnnxModel.from_bytes(blob, threads=cores)
    big = test[native.input_columns].sample(100_000, replace=True, random_state=0)
    report["onnx_threaded_rows_per_s_100k"], _ = _batch(threaded, big.reset_index(drop=True),
                                                        memory=False)
    report["parity"] = {"passed": parity.passed, "max_abs_diff": parity.max_abs_diff,
                        "tolerance": parity.tolerance,
                        "label_mismatches": parity.label_mismatches, "detail": parity.detail}
    report["fit_s"], report["export_s"] = round(fit_s, 2), round(export_s, 2)
    report["features"] = native.input_columns
    return report


def table(results: dict[str, dict[str, Any]]) -> str:
    header = ("| trainer | single row p50 / p99 µs: native | ONNX (wrapper) | ONNX session | "
              "speed-up p50 / p99 | 1k rows/s native / ONNX | 100k rows/s native / ONNX / "
              "ONNX all cores | batch ratio 100k | size native / ONNX | parity (max diff) |")
    lines = [header, "|" + "---|" * 10]
    for trainer, r in results.items():
        if "error" in r:
            lines.append(f"| {trainer} | {r['error']} |" + " |" * 8)
            continue
        n, o = r["native"], r["onnx"]
        lines.append(
            f"| {trainer} | {n['single_row_p50_us']:,.0f} / {n['single_row_p99_us']:,.0f} "
            f"| {o['single_row_p50_us']:,.0f} / {o['single_row_p99_us']:,.0f} "
            f"| {o['session_p50_us']:,.0f} / {o['session_p99_us']:,.0f} "
            f"| {n['single_row_p50_us'] / o['single_row_p50_us']:,.0f}× / "
            f"{n['single_row_p99_us'] / o['single_row_p99_us']:,.0f}× "
            f"| {n['rows_per_s_1k']:,.0f} / {o['rows_per_s_1k']:,.0f} "
            f"| {n['rows_per_s_100k']:,.0f} / {o['rows_per_s_100k']:,.0f} / "
            f"{r['onnx_threaded_rows_per_s_100k']:,.0f} "
            f"| {o['rows_per_s_100k'] / n['rows_per_s_100k']:.2f}× "
            f"| {n['size_bytes'] / 1e6:.2f} / {o['size_bytes'] / 1e6:.2f} MB "
            f"| {'pass' if r['parity']['passed'] else 'FAIL'} "
            f"({r['parity']['max_abs_diff']:.1e}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--trainers", nargs="*", default=TRAINERS)
    args = parser.parse_args()
    from loopml.errors import LoopmlError

    frame = dataset(args.rows, seed=7)
    cut = int(0.8 * len(frame))
    train, test = frame.iloc[:cut], frame.iloc[cut:].reset_index(drop=True)
    results: dict[str, dict[str, Any]] = {}
    started = time.time()
    for trainer in args.trainers:
        try:
            results[trainer] = measure(trainer, train, test)
        except (LoopmlError, ImportError) as exc:  # a trainer without its extra, say
            results[trainer] = {"error": str(exc)}
        print(f"{trainer}: done", file=sys.stderr)
    print(table(results))
    write_report(OUT_FILE, {"results": results, "rows": args.rows,
                            "wall_s": round(time.time() - started, 1), "machine": machine(),
                            "versions": versions("onnx", "onnxruntime", "skl2onnx",
                                                 "onnxmltools", "scikit-learn", "lightgbm",
                                                 "xgboost-cpu", "torch", "pandas", "numpy")})


if __name__ == "__main__":
    main()
