"""`loopml init`: a commented loopml.yaml inferred from a data file."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import Any

from loopml.errors import InvalidInput

SAMPLE_ROWS = 200_000
# pyyaml reads these as line breaks too: a value holding one is written double-quoted.
_BREAKS = re.compile("[\n\r\x85\u2028\u2029]")


def yaml_value(value: Any) -> str:
    """Return ``value`` as one line of YAML that reads back as the same value.

    >>> yaml_value("2024.csv"), yaml_value("on"), yaml_value(["Income, USD", "x"])
    ('2024.csv', "'on'", "['Income, USD', x]")
    >>> yaml_value("a\\nb")
    '"a\\\\nb"'
    """
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=2**31)
    text = text.removesuffix("\n").removesuffix("\n...")
    if _BREAKS.search(text):
        text = yaml.safe_dump(value, default_flow_style=True, default_style='"',
                              allow_unicode=False, width=2**31).removesuffix("\n")
    return text


def comment_text(text: str) -> str:
    """Return ``text`` safe inside a YAML comment: no line breaks or control characters.

    >>> comment_text("a\\nb\\x1b[31m")
    'a b [31m'
    """
    return "".join(c if c.isprintable() else " " for c in text)


def dataset_name_for(stem: str) -> str:
    """Return a usable dataset name made from a file name's stem.

    >>> dataset_name_for("2024"), dataset_name_for(" on, #1: ü"), dataset_name_for("ü")
    ('2024', 'on_1', 'data')
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:128] or "data"


def render_project_file(data_file: Path, *, target: str, sensitive: list[str],
                        name: str | None, out: Path | None = None) -> str:
    """Return the text of a project file for ``data_file`` predicting ``target``.

    Every value is written by a YAML emitter, so a file ``2024.csv`` or a column ``on``
    reads back as the same text. With ``out``, ``data.source`` is relative to its folder.
    """
    from loopml.config import FeaturesSection
    from loopml.data import resolve_source
    from loopml.data.catalog import check_dataset_name
    from loopml.evaluate.metrics import DEFAULT_METRIC, metric_names
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
    project = check_dataset_name(name) if name else dataset_name_for(data_file.stem)
    source = str(data_file) if out is None else \
        os.path.relpath(data_file.resolve(), out.resolve().parent)
    dropped = "".join(f"\n  #   {comment_text(c)}: {comment_text(why)}"
                      for c, why in features.dropped.items() if c != target)
    listing = yaml_value
    command = comment_text(f"loopml init {data_file.name} --target {target}")

    return f"""# loopml project file, written by `{command}`.
# Every key is checked; `loopml train` explains any mistake before it starts work.
project:
  name: {yaml_value(project)}

data:
  dataset: {yaml_value(project)}              # the dataset name in the catalog
  source: {yaml_value(source)}    # hashed at every `loopml train`; new content, new version
  target: {yaml_value(target)}
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
  candidates: [linear, random_forest, extra_trees, hist_gradient_boosting, lightgbm, xgboost]
  metric: {DEFAULT_METRIC[task]}   # one of: {", ".join(metric_names(task))}
  trials: 40                      # and/or time_budget_s: 60
  n_jobs: -1                      # parallel trials; -1 = every core
  backend: local                  # local | ray
  cv_folds: auto                  # auto: 5-fold CV to 20,000 rows (repeated ≤ 5,000)
  ensemble: true                  # ensemble selection over the trials; false: the best single
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


def check_out_path(out: Path, *, force: bool) -> None:
    """Refuse an ``--out`` path that cannot take the project file, before any work."""
    if out.is_dir():
        raise InvalidInput(f"--out {out} is a folder; give a file path such as "
                           f"{out / 'loopml.yaml'}")
    folder = out.parent
    if not folder.is_dir():
        raise InvalidInput(f"--out {out}: the folder {folder} does not exist; create it "
                           "first or choose another path")
    if os.path.lexists(out) and not force:
        raise InvalidInput(f"{out} already exists; pass --force to overwrite it")


def write_project_file(text: str, out: Path, *, force: bool = False) -> None:
    """Write ``text`` to ``out`` whole, or not at all.

    The temp file has a random name in ``out``'s folder and is created exclusively
    (``O_EXCL``, ``O_NOFOLLOW``): a file or link planted in its place is never written
    through. It is then renamed over ``out``.
    """
    check_out_path(out, force=force)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(8)}.part"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except OSError as exc:
        raise InvalidInput(f"--out {out}: cannot create a file in {out.parent}: "
                           f"{exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise InvalidInput(f"--out {out}: cannot write: {exc.strerror}") from exc
        raise
