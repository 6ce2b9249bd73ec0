"""The benchmark's sklearn pipeline as a BentoML 1.4 service (one worker).

``BENCH_BENTO_BATCH=1`` turns on adaptive batching (``@bentoml.api(batchable=True)``): requests
queued together become one ``predict_proba`` call. ``BENCH_PIPELINE`` is the joblib file.
Body: ``{"rows": [{column: value}]}``; answer: one ``[p0, p1]`` list a row.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml

BATCH = os.environ.get("BENCH_BENTO_BATCH") == "1"


# No access log: loopml serve and the floor run without one too (uvicorn, access_log=False).
@bentoml.service(workers=1, traffic={"timeout": 60}, logging={"access": {"enabled": False}})
class Credit:
    def __init__(self) -> None:
        import joblib

        self.pipeline = joblib.load(os.environ["BENCH_PIPELINE"])
        self.columns = list(self.pipeline.feature_names_in_)

    @bentoml.api(batchable=BATCH, max_batch_size=256, max_latency_ms=1000)
    def predict(self, rows: list[dict[str, Any]]) -> list[list[float]]:
        """Return P(class) for each row, in the classes' order."""
        import pandas as pd

        frame = pd.DataFrame.from_records(rows, columns=self.columns)
        return self.pipeline.predict_proba(frame).tolist()
