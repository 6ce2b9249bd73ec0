"""Batch scoring benchmark: ``loopml predict`` (``score_file``) against raw onnxruntime.

Data: loopml's generated credit dataset (``loopml.demo_data.make_credit``, ``--rows``
rows, seed 7; nothing is downloaded), written once as CSV and as Parquet. Models: LightGBM
(the trainer's defaults: 300 trees) and logistic regression, built as ``loopml train``
builds its final model, fitted on 20,000 other rows, exported to ONNX (one intra-op thread,
as the registry loads it).

For each model, the same rows:

- **raw onnxruntime**: ``session.run`` on feeds prepared beforehand from the whole frame
  (``loopml.optimize.contract.input_feeds``), in chunks of ``--chunk-rows``: the ceiling;
- **scoring only**: loopml's chunk scorer on Arrow chunks already in memory (Arrow columns
  to feeds, the session, labels and probabilities into an Arrow table), no file I/O;
- **file to file**: ``score_file`` Parquet → Parquet, CSV → CSV and CSV → Parquet, ONNX
  flavour, and Parquet → Parquet with the native flavour;
- **pandas by hand**: ``pd.read_csv`` of the whole file, ``model.predict_proba`` (ONNX
  wrapper), ``to_csv``: what a user writes without loopml.

Each figure is rows/s, best of ``--repeat`` runs taken in turn (path after path, so a burst
of load on a shared machine hits them all); the ratio is against raw onnxruntime.
Target (issue): file-to-file rows/s ≥ 90 % of raw onnxruntime on the same model.

Run: ``.venv/bin/python bench/batch.py`` (results printed and written to bench/out/batch.json).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import machine, versions, write_report  # bench/common.py, beside this script

# This file is bench/batch.py: keep its folder from shadowing installed packages.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

OUT_FILE = HERE / "out" / "batch.json"


def build(trainer: str, train: Any) -> Any:
    """Return a TrainedModel fitted as ``loopml train`` fits its final model."""
    from sklearn.pipeline import Pipeline

    from loopml.config import FeaturesSection
    from loopml.train.features import build_preprocessor, infer_features
    from loopml.train.model import TrainedModel
    from loopml.train.trainers import get_trainer

    features = infer_features(train, target="default", spec=FeaturesSection(), sensitive=[])
    builder = get_trainer(trainer)
    X, y = train[features.columns], train["default"].to_numpy()
    pipeline = Pipeline([
        ("features", build_preprocessor(features, X, tree_based=builder.tree_based,
                                        task="binary")),
        ("model", builder.build(builder.defaults("binary"), task="binary", seed=0)),
    ]).fit(X, y)
    return TrainedModel(pipeline=pipeline, task="binary", target="default",
                        input_columns=features.columns, classes=[0, 1], candidate=trainer)


def best(fn: Any, repeat: int) -> float:
    """Return the fastest wall time of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(trainer: str, train: Any, frame: Any, folder: Path, *, chunk_rows: int,
            repeat: int) -> dict[str, Any]:
    import pandas as pd
    import pyarrow as pa

    from loopml.optimize.contract import input_feeds
    from loopml.optimize.export import to_onnx
    from loopml.optimize.runtime import OnnxModel
    from loopml.serve.batch import score_file
    from loopml.serve.batch_io import rechunk
    from loopml.serve.batch_scorer import _Scorer

    native = build(trainer, train)
    model = OnnxModel.from_bytes(to_onnx(native))
    rows = len(frame)
    output = next(iter(model.signature["outputs"].values()))
    feeds = input_feeds(frame, model.signature)
    parts = [{k: v[i:i + chunk_rows] for k, v in feeds.items()}
             for i in range(0, rows, chunk_rows)]
    table = pa.parquet.read_table(folder / "in.parquet")
    chunks = list(rechunk(table.to_batches(), chunk_rows))
    scorer = _Scorer(model, keep=list(table.column_names), source="memory")

    def file_to_file(source: str, target: str, which: Any) -> Any:
        return lambda: score_file(which, folder / source, folder / target,
                                  chunk_rows=chunk_rows, overwrite=True)

    def by_hand() -> None:
        data = pd.read_csv(folder / "in.csv")
        proba = model.predict_proba(data)
        data["probability_1"] = proba[:, 1]
        data.to_csv(folder / "by_hand.csv", index=False)

    paths = {
        "raw onnxruntime": lambda: [model.session.run([output], p) for p in parts],
        "scoring only (Arrow in memory)": lambda: [scorer(c) for c in chunks],
        "Parquet → Parquet": file_to_file("in.parquet", "out.parquet", model),
        "CSV → CSV": file_to_file("in.csv", "out.csv", model),
        "CSV → Parquet": file_to_file("in.csv", "out2.parquet", model),
        "native: Parquet → Parquet": file_to_file("in.parquet", "out3.parquet", native),
        "pandas by hand: read_csv, predict_proba, to_csv": by_hand,
    }
    # interleaved, best of ``repeat``: a burst of load on a shared machine hits every path
    times = {name: float("inf") for name in paths}
    for _ in range(repeat):
        for name, run in paths.items():
            times[name] = min(times[name], best(run, 1))
    return {name: round(rows / seconds) for name, seconds in times.items()}


def render(results: dict[str, dict[str, float]]) -> str:
    names = list(next(iter(results.values())))
    head = "| path | " + " | ".join(f"{t} rows/s | ratio" for t in results) + " |"
    lines = [head, "|---|" + "---:|---:|" * len(results)]
    for name in names:
        cells = []
        for figures in results.values():
            raw = figures["raw onnxruntime"]
            cells.append(f"{figures[name]:,.0f} | {figures[name] / raw:.0%}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--trainers", default="lightgbm,logistic")
    args = parser.parse_args()

    import pyarrow.parquet  # noqa: F401 - pa.parquet below

    from loopml.demo_data import make_credit

    started = time.perf_counter()
    train = make_credit(20_000, seed=3)
    frame = make_credit(args.rows, seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frame.to_csv(folder / "in.csv", index=False)
        frame.to_parquet(folder / "in.parquet", index=False)
        results = {t: measure(t, train, frame, folder, chunk_rows=args.chunk_rows,
                              repeat=args.repeat) for t in args.trainers.split(",")}
    print(render(results))
    write_report(OUT_FILE, {
        "rows": args.rows, "chunk_rows": args.chunk_rows, "repeat": args.repeat,
        "rows_per_s": results, "wall_s": round(time.perf_counter() - started, 1),
        "machine": machine(),
        "versions": versions("loopml", "onnxruntime", "pyarrow", "pandas", "lightgbm",
                             "scikit-learn"),
    })


if __name__ == "__main__":
    main()
