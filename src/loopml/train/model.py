"""The trained model as one object: preprocessing + estimator + labels + decision threshold.

This is what is stored, registered and served: it takes the raw rows users have (a pandas
DataFrame with the input columns) and returns labels or probabilities in the target's own
values, never encoded ones. Load a stored one with :func:`loopml.load_model`.
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
    """A fitted pipeline with what it needs to answer in the target's own labels.

    Examples
    --------
    >>> model = loopml.load_model("3f2a")                     # doctest: +SKIP
    >>> model.predict(frame)                                  # doctest: +SKIP
    array(['no', 'yes', ...], dtype=object)
    >>> model.predict_proba(frame)[:, list(model.classes_).index("yes")]  # doctest: +SKIP
    """

    pipeline: Any
    task: str
    target: str
    input_columns: list[str]
    classes: list[Any] = field(default_factory=list)
    threshold: float = 0.5
    candidate: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def classes_(self) -> np.ndarray:
        """The target's labels, in the order of :meth:`predict_proba`'s columns."""
        import numpy as np

        return np.asarray(self.classes, dtype=object if not _all_numeric(self.classes)
                          else None)

    def _check(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise InvalidInput(f"input is missing column(s) {shown}{more}; the model needs "
                               f"{len(self.input_columns)} columns")
        return frame[self.input_columns]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Return class probabilities, one column per label in the order of ``classes_``."""
        if self.task == "regression":
            raise InvalidInput("a regression model has no probabilities; use predict")
        return self.pipeline.predict_proba(self._check(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Return predictions in the target's own values (the threshold applies to binary)."""
        if self.task == "regression":
            return self.pipeline.predict(self._check(frame))
        proba = self.predict_proba(frame)
        if self.task == "binary":
            index = (proba[:, 1] >= self.threshold).astype(int)
        else:
            index = proba.argmax(axis=1)
        return self.classes_[index]

    def feature_contributions(self, frame: pd.DataFrame
                              ) -> tuple[dict[str, np.ndarray], np.ndarray, str] | None:
        """Return exact TreeSHAP contributions per input column, expected values and their unit.

        None when the estimator has no native TreeSHAP (then evaluation falls back to
        permutation importance). Per row, contributions + expected value = raw output.
        """
        import numpy as np

        from loopml.evaluate.explain import booster_contributions, sum_by_source

        steps = getattr(self.pipeline, "named_steps", None)
        if steps is None:  # an ensemble: its members' raw outputs do not add up to one
            return None
        features = self.pipeline.named_steps["features"]
        transformed = np.asarray(features.transform(self._check(frame)), dtype=float)
        shap = booster_contributions(self.pipeline.named_steps["model"], transformed,
                                     n_classes=len(self.classes))
        if shap is None:
            return None
        contributions, expected = shap
        by_column = sum_by_source(contributions, list(features.get_feature_names_out()),
                                  self.input_columns)
        unit = "raw model output (log-odds of the predicted class)" if self.task == \
            "multiclass" else "raw model output (log-odds for classes)" if self.task == \
            "binary" else "raw model output (the predicted value)"
        return by_column, expected, unit

    def raw_output(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the booster's raw output (log-odds or value): what contributions add up to."""
        import numpy as np

        from loopml.evaluate.explain import booster_raw_output

        if getattr(self.pipeline, "named_steps", None) is None:
            raise InvalidInput("an ensemble has no single raw output; use predict or "
                               "predict_proba")
        transformed = np.asarray(self.pipeline.named_steps["features"].transform(
            self._check(frame)), dtype=float)
        return booster_raw_output(self.pipeline.named_steps["model"], transformed)


def _all_numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
