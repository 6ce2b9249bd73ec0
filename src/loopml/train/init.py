"""`loopml init`: a commented loopml.yaml inferred from a data file."""

from __future__ import annotations

from pathlib import Path

from loopml.errors import InvalidInput

SAMPLE_ROWS = 200_000


def render_project_file(data_file: Path, *, target: str, sensitive: list[str],
                        name: str | None) -> str:
    """Return the text of a project file for ``data_file`` predicting ``target``."""
    from loopml.config import DEFAULT_METRIC, METRICS, FeaturesSection
    from loopml.data import resolve_source
    from loopml.train.features import infer_features
    from loopml.train.task import infer_task

    source = resolve_source(data_file)
    frame = _sample(source)
    if target not in frame.columns:
        raise InvalidInput(f"{data_file}: no column {target!r} to predict (columns: "
                           f"{', '.join(frame.columns)})")
    for column in sensitive:
        if column not in frame.columns:
            raise InvalidInput(f"{data_file}: no sensitive column {column!r}")
    task = infer_task(frame[target])
    features = infer_features(frame, target=target, spec=FeaturesSection(), sensitive=sensitive)
    project = name or data_file.stem
    dropped = "".join(f"\n  #   {c}: {why}" for c, why in features.dropped.items()
                      if c != target)

    def listing(values: list[str]) -> str:
        return "[" + ", ".join(values) + "]"

    return f"""# loopml project file, written by `loopml init {data_file.name} --target {target}`.
# Every key is checked; `loopml train` explains any mistake before it starts work.
project:
  name: {project}

data:
  dataset: {project}              # the dataset name in the catalog
  source: {data_file}             # added as a dataset version on first `loopml train`
  target: {target}
  task: {task}                    # auto | binary | multiclass | regression (inferred: {task})
  sensitive: {listing(sensitive)}              # fairness is reported per group of these
  split:
    method: auto                  # auto (stratified for classes) | random | group | time
    fractions: [0.7, 0.15, 0.15]  # train, validation, test
    seed: 42
  pii: {{}}                        # column: drop | hash | keep, applied before data is stored

features:                         # inferred below; delete a list to infer it again
  numeric: {listing(features.numeric)}
  categorical: {listing(features.categorical)}
  datetime: {listing(features.datetime)}
  drop: []{dropped and chr(10) + "  # not used as inputs:" + dropped}
  categorical_encoding: auto      # auto | onehot | ordinal | target
  use_sensitive: false            # sensitive columns are not model inputs unless true

train:
  candidates: [linear, random_forest, hist_gradient_boosting, lightgbm, xgboost]
  metric: {DEFAULT_METRIC[task]}   # one of: {", ".join(METRICS[task])}
  trials: 40                      # and/or time_budget_s: 60
  n_jobs: -1                      # parallel trials; -1 = every core
  backend: local                  # local | ray
  cv_folds: auto                  # auto: 5-fold CV up to 20,000 rows, else the validation split
  seed: 42
  search_space: {{}}               # e.g. lightgbm: {{num_leaves: {{low: 8, high: 64, int: true}}}}
"""


def _sample(source: object) -> object:
    import pyarrow as pa

    from loopml.data.sources import read_batches

    schema, batches = read_batches(source)  # type: ignore[arg-type]
    taken, rows = [], 0
    for batch in batches:
        taken.append(batch)
        rows += batch.num_rows
        if rows >= SAMPLE_ROWS:
            break
    if not taken:
        raise InvalidInput(f"{source.location}: the data has no rows")  # type: ignore[attr-defined]
    return pa.Table.from_batches(taken, schema=taken[0].schema).to_pandas()
