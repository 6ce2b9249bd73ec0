"""Feature preprocessing that lives inside the model: imputation, scaling, encodings, date parts.

The fitted preprocessing and the estimator are one scikit-learn pipeline, so whoever serves
the model hands it the raw rows users have. Defaults depend on the candidate: trees get no
scaling and ordinal-encoded categories; linear models and networks get scaled numbers and
one-hot categories; categories with many values get target encoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from loopml.config import FeaturesSection

HIGH_CARDINALITY = 30
DATE_PARTS = ("year", "month", "day", "day_of_week", "hour")


@dataclass(frozen=True)
class FeatureSet:
    """Which input columns are numbers, categories and dates; everything else is ignored."""

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    datetime: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.datetime]


def infer_features(frame: pd.DataFrame, *, target: str, spec: FeaturesSection,
                   sensitive: list[str], pii: Mapping[str, str] | None = None) -> FeatureSet:
    """Return the feature set of ``frame``: the spec's lists where given, inferred otherwise.

    ``pii`` maps personal-data columns the user gave no policy to their kind (a version's
    ``loopml.data.pii.unapproved_columns``); None detects them in ``frame``. They are never
    features (nor slices) unless listed under ``features:`` by name.
    """
    import pandas as pd

    named = [*(spec.numeric or []), *(spec.categorical or []), *(spec.datetime or []),
             *spec.drop]
    missing = [c for c in named if c not in frame.columns]
    if missing:
        raise InvalidInput(f"features name column(s) {missing} that the data does not have "
                           f"(columns: {', '.join(frame.columns)})")
    dropped: dict[str, str] = {target: "target"}
    dropped.update({c: "features.drop" for c in spec.drop})
    if not spec.use_sensitive:
        dropped.update({c: "sensitive (features.use_sensitive: false)" for c in sensitive})
    listed = {*(spec.numeric or []), *(spec.categorical or []), *(spec.datetime or [])}
    personal = _personal_columns(frame) if pii is None else dict(pii)
    for column, kind in personal.items():
        if column not in listed and column in frame.columns:
            dropped.setdefault(column, f"personal data ({kind}): give it a pii policy of keep "
                                       "and list it under features: to use it")
    numeric, categorical, dates = [], [], []
    for column in frame.columns:
        if column in dropped:
            continue
        series = frame[column]
        if spec.numeric is not None or spec.categorical is not None or spec.datetime is not None:
            if column in (spec.numeric or []):
                numeric.append(column)
            elif column in (spec.categorical or []):
                categorical.append(column)
            elif column in (spec.datetime or []):
                dates.append(column)
            else:
                dropped[column] = "not listed in features"
            continue
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            if _looks_like_id(column, series):
                dropped[column] = "an id (unique whole numbers)"
            else:
                numeric.append(column)
        elif pd.api.types.is_datetime64_any_dtype(series):
            dates.append(column)
        else:
            unique = series.nunique(dropna=True)
            if unique >= 0.9 * max(1, series.notna().sum()) and unique > HIGH_CARDINALITY:
                dropped[column] = "text with a different value in (almost) every row"
            else:
                categorical.append(column)
    if not (numeric or categorical or dates):
        raise InvalidInput("no usable feature columns are left; list them under features:")
    return FeatureSet(numeric, categorical, dates, dropped)


def _personal_columns(frame: pd.DataFrame) -> dict[str, str]:
    """Return {column: kind} of the columns of ``frame`` that look like personal data."""
    import pyarrow as pa

    from loopml.data.pii import SAMPLE, detect

    head = frame.head(SAMPLE)
    arrays = []
    for column in head.columns:
        try:
            arrays.append(pa.array(head[column], from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects: look at them as text
            arrays.append(pa.array(head[column].astype("string"), from_pandas=True))
    batch = pa.RecordBatch.from_arrays(arrays, names=[str(c) for c in head.columns])
    return {finding.column: finding.kind for finding in detect(batch)}


def _looks_like_id(column: str, series: pd.Series) -> bool:
    import pandas as pd

    from loopml.data.contract import _ID_NAME

    return bool(_ID_NAME.search(column)) and pd.api.types.is_integer_dtype(series) and \
        series.is_unique


def build_preprocessor(features: FeatureSet, frame: pd.DataFrame, *, tree_based: bool,
                       encoding: str = "auto", task: str = "binary") -> Any:
    """Return an unfitted ColumnTransformer for ``features`` suited to the model family."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    parts = []
    if features.numeric:
        steps = [SimpleImputer(strategy="median", add_indicator=True)]
        if not tree_based:
            steps.append(StandardScaler())
        parts.append(("numeric", make_pipeline(*steps), features.numeric))
    low, high = [], []
    for column in features.categorical:
        many = frame[column].nunique(dropna=True) > HIGH_CARDINALITY
        (high if many and encoding == "auto" else low).append(column)
    if low:
        kind = encoding if encoding != "auto" else ("ordinal" if tree_based else "onehot")
        if kind == "onehot":
            encoder: Any = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                                         sparse_output=False)
        elif kind == "ordinal":
            encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                     encoded_missing_value=-2)
        else:
            encoder = _target_encoder(task)
        parts.append(("categorical", make_pipeline(_as_text(), SimpleImputer(
            strategy="constant", fill_value="<missing>"), encoder), low))
    if high:
        steps = [_as_text(), SimpleImputer(strategy="constant", fill_value="<missing>"),
                 _target_encoder(task)]
        if not tree_based:
            steps.append(StandardScaler())
        parts.append(("high_cardinality", make_pipeline(*steps), high))
    if features.datetime:
        steps = [_date_parts(), SimpleImputer(strategy="median")]
        if not tree_based:
            steps.append(StandardScaler())
        parts.append(("datetime", make_pipeline(*steps), features.datetime))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=True)


def _target_encoder(task: str) -> Any:
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import TargetEncoder

    # Cross-fitted: each row's encoding is learned without that row, so no target leaks.
    return TargetEncoder(target_type=_target_type(task),
                         cv=KFold(5, shuffle=True, random_state=0))


def _target_type(task: str) -> str:
    return {"binary": "binary", "multiclass": "multiclass", "regression": "continuous"}[task]


def _as_text() -> Any:
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(_to_object, feature_names_out="one-to-one")


def _to_object(frame: Any) -> Any:
    return frame.astype("object").where(frame.notna(), None)


def _date_parts() -> Any:
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(_extract_date_parts, feature_names_out=_date_part_names)


def _extract_date_parts(frame: Any) -> Any:
    import pandas as pd

    out = {}
    for column in frame.columns:
        values = pd.to_datetime(frame[column], errors="coerce")
        for part in DATE_PARTS:
            out[f"{column}_{part}"] = getattr(values.dt, part).astype("float64")
    return pd.DataFrame(out, index=frame.index)


def _date_part_names(transformer: Any, names: Any) -> list[str]:
    return [f"{column}_{part}" for column in names for part in DATE_PARTS]
