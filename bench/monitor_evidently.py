"""Evidently's side of bench/monitor.py: DataDriftPreset over two Parquet files, timed.

Runs in Evidently's own venv (bench/out/evidently-venv: Evidently 0.7 needs pandas < 3)::

    python monitor_evidently.py REF CUR RESULT --numeric a,b --categorical c
        --num-threshold 0.1 --cat-threshold 0.1 [--drift-share 0.3]

The tests are loopml's large-sample rule: Wasserstein distance normalised by the reference's
standard deviation for numbers, Jensen-Shannon distance for categories, a column drifting when
its statistic is at or above the threshold (Evidently's rule for both). The thresholds come
from bench/monitor.py (loopml's defaults); Evidently's Jensen-Shannon distance is in natural-log
units and loopml's in bits, so its threshold is loopml's times sqrt(ln 2) (the same rule) and
its values are written back in bits (``value``; ``value_native`` as Evidently gives it). The
time runs from reading the files (``pandas.read_parquet``, as a user would) to the snapshot's
values; ``stage`` lines on stdout say how far a run got when it is stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
from pathlib import Path

NUM_METHOD, CAT_METHOD = "wasserstein", "jensenshannon"
BITS = math.sqrt(math.log(2))  # JS distance in nats = JS distance in bits × this


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("current")
    parser.add_argument("result")
    parser.add_argument("--numeric", required=True)
    parser.add_argument("--categorical", required=True)
    parser.add_argument("--num-threshold", type=float, required=True,
                        help="Wasserstein distance / reference std at which a number drifts")
    parser.add_argument("--cat-threshold", type=float, required=True,
                        help="Jensen-Shannon distance in bits at which a category drifts")
    parser.add_argument("--drift-share", type=float, default=0.3)
    args = parser.parse_args()
    numeric, categorical = args.numeric.split(","), args.categorical.split(",")

    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)

    def drift(reference: pd.DataFrame, current: pd.DataFrame) -> list[dict]:
        report = Report([DataDriftPreset(num_method=NUM_METHOD, cat_method=CAT_METHOD,
                                         num_threshold=args.num_threshold,
                                         cat_threshold=args.cat_threshold * BITS,
                                         drift_share=args.drift_share)])
        snapshot = report.run(Dataset.from_pandas(current, data_definition=definition),
                              Dataset.from_pandas(reference, data_definition=definition))
        return snapshot.dict()["metrics"]

    def stage(text: str) -> None:
        print(f"stage {text} at {time.perf_counter() - start:.1f} s", flush=True)

    # A first run on the first 1,000 rows keeps first-call set-up out of the time, as
    # bench/monitor.py does for loopml.
    start = time.perf_counter()
    drift(_head(args.reference), _head(args.current))
    stage("warm-up run on 1,000 rows")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB, before the data
    start = time.perf_counter()
    reference = pd.read_parquet(args.reference)
    current = pd.read_parquet(args.current)
    stage("files read")
    metrics = drift(reference, current)
    seconds = time.perf_counter() - start
    stage("report run")

    columns, count = {}, None
    for metric in metrics:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            native, threshold = float(metric["value"]), float(config["threshold"])
            bits = config.get("method") == CAT_METHOD
            columns[config["column"]] = {
                "kind": "numeric" if config["column"] in numeric else "categorical",
                "method": config.get("method"), "value": native / BITS if bits else native,
                "value_native": native, "threshold_native": threshold,
                "drifted": native >= threshold}
        elif config["type"].endswith(":DriftedColumnsCount"):
            count = metric["value"]
    frames_mb = sum(frame.memory_usage(deep=True).sum() for frame in (reference, current)) / 1e6
    Path(args.result).write_text(json.dumps({
        "seconds": round(seconds, 3), "baseline_rss_mb": round(baseline, 1), "columns": columns,
        "drifted": sorted(name for name, c in columns.items() if c["drifted"]),
        "drifted_columns_count": count, "pandas_frames_mb": round(frames_mb, 1)}))


def _head(path: str, rows: int = 1000):
    """Return the first ``rows`` rows of a Parquet file as a DataFrame, read as a user would."""
    import pyarrow.parquet as pq

    return next(pq.ParquetFile(path).iter_batches(batch_size=rows)).to_pandas()


if __name__ == "__main__":
    main()
