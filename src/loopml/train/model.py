"""The trained model as one object: preprocessing + estimator + labels + decision threshold.

This is what is stored, registered and served: it takes the raw rows users have (a pandas
DataFrame with the input columns) and returns labels or probabilities in the target's own
values, never encoded ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass
class TrainedModel:
    pipeline: Any
    task: str
    target: str
    input_columns: list[str]
    classes: list[Any] = field(default_factory=list)
    threshold: float = 0.5
    candidate: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def _check(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            raise InvalidInput(f"input is missing column(s) {missing}; the model needs "
                               f"{self.input_columns}")
        return frame[self.input_columns]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Return class probabilities (columns in the order of ``classes``)."""
        if self.task == "regression":
            raise InvalidInput("a regression model has no probabilities; use predict")
        return self.pipeline.predict_proba(self._check(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Return predictions in the target's own values (the threshold applies to binary)."""
        import numpy as np

        if self.task == "regression":
            return self.pipeline.predict(self._check(frame))
        proba = self.predict_proba(frame)
        if self.task == "binary":
            index = (proba[:, 1] >= self.threshold).astype(int)
        else:
            index = proba.argmax(axis=1)
        return np.asarray(self.classes, dtype=object)[index] if not \
            _all_numeric(self.classes) else np.asarray(self.classes)[index]


def _all_numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
