"""Which kind of problem a target column poses, and which metrics fit it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.errors import InvalidInput
from loopml.evaluate.metrics import DEFAULT_METRIC, get_metric

if TYPE_CHECKING:
    import pandas as pd

MAX_CLASSES = 50


def infer_task(target: pd.Series) -> str:
    """Return binary, multiclass or regression for a target column.

    >>> import pandas as pd
    >>> infer_task(pd.Series([0, 1, 1])), infer_task(pd.Series([0.5, 1.7, 2.2, 9.1]))
    ('binary', 'regression')
    """
    import pandas as pd

    values = target.dropna()
    if values.empty:
        raise InvalidInput(f"target column {target.name!r} has no values")
    distinct = values.nunique()
    if distinct < 2:
        raise InvalidInput(f"target column {target.name!r} has a single value; nothing to learn")
    if distinct == 2:
        return "binary"
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric:
        whole = bool((values == values.round()).all())
        if not whole or distinct > 20:
            return "regression"
        return "multiclass"
    if distinct > MAX_CLASSES:
        raise InvalidInput(
            f"target column {target.name!r} is text with {distinct} different values: too many "
            f"classes (at most {MAX_CLASSES}); is it the right column?"
        )
    return "multiclass"


def resolve_metric(task: str, metric: str | None) -> str:
    """Return the metric to optimise; refuse one that does not fit the task."""
    if metric is None:
        return DEFAULT_METRIC[task]
    try:
        return get_metric(metric, task=task).name
    except InvalidInput as exc:
        raise InvalidInput(f"train.metric: {exc}") from exc
