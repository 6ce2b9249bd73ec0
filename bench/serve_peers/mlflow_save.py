"""Save the benchmark's fitted sklearn pipeline as an MLflow model that answers predict_proba.

Run with the MLflow venv: ``python mlflow_save.py PIPELINE.joblib OUT_DIR``. cloudpickle, not
skops: MLflow 3 refuses the pipeline's loopml helper function under skops unless it is listed
as a trusted type.
"""

from __future__ import annotations

import sys


def main(pipeline_path: str, out_dir: str) -> None:
    """Write the MLflow model folder ``out_dir`` (replaced if present)."""
    import json
    import shutil
    from pathlib import Path

    import joblib
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature

    pipeline = joblib.load(pipeline_path)
    columns = list(pipeline.feature_names_in_)
    shutil.rmtree(out_dir, ignore_errors=True)
    row = json.loads((Path(pipeline_path).parent / "model.json").read_text())["row"]
    frame = pd.DataFrame([row])[columns]
    mlflow.sklearn.save_model(pipeline, out_dir, serialization_format="cloudpickle",
                              pyfunc_predict_fn="predict_proba",
                              signature=infer_signature(frame, pipeline.predict_proba(frame)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
