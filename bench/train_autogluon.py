"""AutoGluon's side of the train benchmark, run by bench/train.py with AutoGluon's own venv.

Reads the fit rows (loopml's train + validation rows, loopml's feature columns, the target
encoded as loopml's class indices) and the test rows' features from Parquet files the
benchmark wrote, fits ``TabularPredictor(...).fit(presets="medium_quality",
time_limit=BUDGET, num_cpus=CORES)`` without neural networks (this venv has no PyTorch), and
writes its test predictions (``predictions.npy``) and what it did (``result.json``). The
benchmark scores the predictions itself, with the same function for every tool. Imports
nothing from loopml: AutoGluon's venv does not have it.

    bench/out/venv-autogluon/bin/python bench/train_autogluon.py --fit F --test T \
        --target y --task binary --metric roc_auc --classes 2 --budget 60 --cores 2 --out DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

EVAL_METRIC = {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "root_mean_squared_error"}
# medium_quality's neural networks need PyTorch (and fastai), which this venv leaves out.
EXCLUDED = ["NN_TORCH", "FASTAI"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--task", choices=["binary", "multiclass", "regression"], required=True)
    parser.add_argument("--metric", choices=sorted(EVAL_METRIC), required=True)
    parser.add_argument("--classes", type=int, default=0)
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--cores", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    from importlib.metadata import version

    import numpy as np
    import pandas as pd
    from autogluon.tabular import TabularPredictor

    import_s = time.perf_counter() - started
    # Without PyTorch, AutoGluon logs "Failed to import torch" as an error at every GPU count
    # check, then counts 0 GPUs, which is what this benchmark wants: keep that out of the log.
    logging.getLogger("autogluon.common.utils.resource_utils").setLevel(logging.CRITICAL)
    fit_rows = pd.read_parquet(args.fit)
    test_rows = pd.read_parquet(args.test)
    start = time.perf_counter()
    predictor = TabularPredictor(label=args.target, problem_type=args.task,
                                 eval_metric=EVAL_METRIC[args.metric],
                                 path=str(args.out / "model"), verbosity=0)
    predictor.fit(fit_rows, presets="medium_quality", time_limit=args.budget,
                  num_cpus=args.cores, num_gpus=0, excluded_model_types=EXCLUDED)
    fit_s = time.perf_counter() - start
    if args.task == "regression":
        predicted = predictor.predict(test_rows).to_numpy(dtype=float)
    else:
        proba = predictor.predict_proba(test_rows, as_multiclass=True)
        # Columns are the class indices AutoGluon saw; one missing from the fit rows gets 0.
        predicted = proba.reindex(columns=range(args.classes), fill_value=0.0).to_numpy(
            dtype=float)
    wall_s = time.perf_counter() - start
    np.save(args.out / "predictions.npy", predicted)
    board = predictor.leaderboard(silent=True)
    (args.out / "result.json").write_text(json.dumps({
        "import_s": import_s, "fit_s": fit_s, "predict_s": wall_s - fit_s, "wall_s": wall_s,
        "best": predictor.model_best, "models": board["model"].tolist(),
        "validation_scores": dict(zip(board["model"], board["score_val"].astype(float),
                                      strict=True)),
        "fit_rows": len(fit_rows), "test_rows": len(test_rows),
        "features": predictor.features(),
        "version": version("autogluon.tabular"),
    }, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
