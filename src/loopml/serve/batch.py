"""Batch scoring: a CSV or Parquet file in, the same rows with their predictions out.

:func:`score_file` streams the input in chunks of ``chunk_rows`` rows (pyarrow's streaming
CSV reader, Parquet batches), scores each chunk and streams it to the output (pyarrow's CSV
or Parquet writer), so memory follows the chunk size, not the file size. The output holds the
input columns, ``prediction`` and, for classifiers, one ``probability_<label>`` column per
class. It is written to a temporary file beside the target and renamed at the end: a failure
or Ctrl-C leaves nothing behind. ``backend="ray"`` runs the same job on Ray Data (the model
loaded once per worker) and writes the same file.

ONNX models are fed straight from Arrow columns (no pandas, no per-row Python), so a file is
scored nearly as fast as onnxruntime alone runs the model (``bench/batch.py``).

Examples
--------
>>> model = loopml.load_model("credit@champion", flavour="onnx")      # doctest: +SKIP
>>> score_file(model, "customers.csv", "scored.parquet")              # doctest: +SKIP
ScoreSummary(rows=1000000, seconds=2.1, output=PosixPath('scored.parquet'))
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import AlreadyExists, InvalidInput, LoopmlError
from loopml.files import publish

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["BACKENDS", "ScoreSummary", "check_paths", "file_format", "output_names",
           "score_file"]

BACKENDS = ("local", "ray")
PREDICTION = "prediction"
PROBABILITY = "probability_"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# pyarrow infers CSV column types from the first block, and its reader keeps about 32 blocks
# read ahead whatever the file's size: 1 MiB blocks bound that to ~40 MB
BLOCK_BYTES = 1 << 20
# the value runs to the end of its line: Ray's copy of the message has a traceback after it
_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to ([^:\n]+): "
                         r"invalid value '(.*)'$", re.MULTILINE)

_RAISED = re.compile(r"^loopml\.errors\.(\w+): (.*)$", re.MULTILINE)

Progress = Callable[[int, "int | None"], None]
"""Called after each chunk with the rows written so far and the total when known."""


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring job did: rows written, wall seconds, where the output is."""

    rows: int
    seconds: float
    output: Path

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def score_file(model: Any, source: str | os.PathLike[str], target: str | os.PathLike[str], *,
               chunk_rows: int = 50_000, backend: str = "local",
               columns: Sequence[str] | None = None, overwrite: bool = False,
               on_progress: Progress | None = None) -> ScoreSummary:
    """Return a summary after scoring every row of ``source`` into ``target``.

    ``model`` is a loopml model (native or ONNX: ``predict``, ``predict_proba``, ``task``,
    ``input_columns``, ``classes_``). Formats follow the suffixes (``.csv``, ``.csv.gz``,
    ``.parquet``, ``.pq``). ``columns`` picks the input columns copied to the output (default:
    all of them). An existing ``target`` is refused unless ``overwrite``.

    Examples
    --------
    >>> score_file(model, "in.csv", "out.parquet", chunk_rows=10_000).rows   # doctest: +SKIP
    25000
    """
    source, target = check_paths(source, target, overwrite=overwrite)
    if backend not in BACKENDS:
        raise InvalidInput(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InvalidInput(f"chunk_rows {chunk_rows!r}: expected a whole number of at least 1")
    start = time.perf_counter()
    job = _Job(model, source, chunk_rows=chunk_rows, columns=columns, on_progress=on_progress)
    rows = _write_atomically(target, overwrite=overwrite,
                             write=lambda path: job.run(path, file_format(target), backend))
    return ScoreSummary(rows=rows, seconds=time.perf_counter() - start, output=target)


def check_paths(source: str | os.PathLike[str], target: str | os.PathLike[str], *,
                overwrite: bool = False) -> tuple[Path, Path]:
    """Return ``(source, target)`` as paths once both are usable: checked before slow work."""
    source, target = Path(source), Path(target)
    file_format(source)
    file_format(target)
    if not source.is_file():
        raise InvalidInput(f"input file {str(source)!r} does not exist (or is not a file)")
    if not target.parent.is_dir():
        raise InvalidInput(f"output {str(target)!r}: folder {str(target.parent)!r} does not "
                           "exist; create it first")
    if target.exists() and target.resolve() == source.resolve():
        raise InvalidInput(f"output {str(target)!r} is the input file; choose another path")
    if target.exists() and not overwrite:
        raise AlreadyExists(f"output {str(target)!r} already exists; choose another path or "
                            "pass --force (overwrite=True) to replace it")
    return source, target


def file_format(path: str | os.PathLike[str]) -> str:
    """Return ``"csv"`` or ``"parquet"`` for ``path``'s suffix.

    >>> file_format("scored.csv.gz"), file_format("in.pq")
    ('csv', 'parquet')
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] == ".gz" and suffixes[:1] == [".csv"]:
        return "csv"
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    raise InvalidInput(f"file {str(path)!r}: expected a .csv, .csv.gz, .parquet or .pq file "
                       "(the format follows the suffix)")


def output_names(classes: Iterable[Any]) -> list[str]:
    """Return the ``probability_<label>`` column names of ``classes``: unique and plain.

    Characters other than letters, digits, ``_``, ``.`` and ``-`` become ``_``; a label left
    empty or taken by an earlier label gets its index instead.

    >>> output_names(["yes", "no"]), output_names([0, 1]), output_names(["a b", "a/b", ""])
    (['probability_yes', 'probability_no'], ['probability_0', 'probability_1'], \
['probability_a_b', 'probability_a_b_1', 'probability_2'])
    """
    names: list[str] = []
    for index, label in enumerate(classes):
        plain = re.sub(r"[^\w.-]+", "_", str(label)).strip("_")[:60]
        name = f"{PROBABILITY}{plain}" if plain else f"{PROBABILITY}{index}"
        names.append(name if name not in names else f"{name}_{index}")
    return names


# --- scoring one chunk ----------------------------------------------------------------


class _Scorer:
    """Turns a chunk of input rows (an Arrow table) into output rows; also runs on Ray."""

    def __init__(self, model: Any, *, keep: list[str], source: str) -> None:
        self.model = model
        self.keep = keep
        self.source = source
        self.task = model.task
        self.inputs = list(model.input_columns)
        self.kinds = model_kinds(model)
        signature = getattr(model, "signature", None)
        # the fast path: an ONNX model of the loopml contract (OnnxModel), fed from Arrow
        self.onnx = hasattr(model, "session") and isinstance(signature, dict) and \
            "columns" in signature
        self.classes = model.classes_ if self.task != "regression" else None
        self.probabilities = output_names(self.classes) if self.classes is not None else []
        self.label_type = self._label_type()

    def output_fields(self) -> list[pa.Field]:
        """Return the fields this scorer appends: prediction, then probabilities."""
        import pyarrow as pa

        fields = [pa.field(PREDICTION, self.label_type)]
        return fields + [pa.field(name, pa.float64()) for name in self.probabilities]

    def __call__(self, table: pa.Table, *, first_row: int | None = None) -> pa.Table:
        return self.finish(table, self.prepare(table, first_row=first_row))

    def prepare(self, table: pa.Table, *, first_row: int | None = None) -> Any:
        """Return the model's input for ``table``: ONNX feeds, or a pandas frame."""
        import pyarrow as pa

        columns = self._model_inputs(table, first_row)
        if self.onnx:
            return onnx_feeds(columns, self.model.signature)
        return pa.table(columns).to_pandas()

    def finish(self, table: pa.Table, prepared: Any) -> pa.Table:
        """Return ``table``'s kept columns with the model's answers on ``prepared`` added."""
        import numpy as np
        import pyarrow as pa

        if self.task == "regression":
            values = self._run_onnx(prepared)[:, 0] if self.onnx else \
                self.model.predict(prepared)
            out = {PREDICTION: pa.array(np.asarray(values, dtype=np.float64))}
        else:
            proba = self._proba(prepared)
            labels = self._labels(proba, prepared)
            try:
                prediction = pa.array(labels, type=self.label_type)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # labels of mixed kinds, as text
                prediction = pa.array(np.asarray(labels).astype(str))
            out = {PREDICTION: prediction}
            out.update({name: pa.array(proba[:, i], type=pa.float64())
                        for i, name in enumerate(self.probabilities)})
        result = table.select(self.keep)
        for name, array in out.items():
            result = result.append_column(name, array)
        return result

    def _label_type(self) -> pa.DataType:
        """Return the Arrow type of the labels: numbers, booleans or text, as the classes."""
        import numpy as np
        import pyarrow as pa

        if self.classes is None:
            return pa.float64()
        try:
            kind = pa.array(np.asarray(self.classes, dtype=object).tolist()).type
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds: written as text
            return pa.string()
        return pa.string() if pa.types.is_null(kind) else kind

    def _model_inputs(self, table: pa.Table, first_row: int | None) -> dict[str, Any]:
        """Return the model's columns, numbers checked: a text value is a clear error."""
        columns = {}
        for name in self.inputs:
            column = table.column(name)
            if self.kinds.get(name) == "number" and not _numeric(column.type):
                column = self._as_numbers(name, column, first_row)
            columns[name] = column
        return columns

    def _as_numbers(self, name: str, column: Any, first_row: int | None) -> Any:
        import pyarrow as pa

        try:
            return column.cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        import pandas as pd

        values = column.to_pandas()
        bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
        index = int(bad.to_numpy().argmax()) if bad.any() else 0
        row = f", data row {first_row + index + 1:,}" if first_row is not None else ""
        # the value itself is not shown: it may be personal data
        raise InvalidInput(f"{self.source}: column {name!r}{row}: expected a number, got "
                           f"{column.type} values the model cannot use ({int(bad.sum())} in "
                           "this chunk); fix the file or convert the column to numbers")

    def _proba(self, prepared: Any) -> np.ndarray:
        import numpy as np

        if not self.onnx:
            return np.asarray(self.model.predict_proba(prepared), dtype=np.float64)
        # as OnnxModel.predict_proba: float64 rows renormalised when they already sum to ~1
        proba = np.asarray(self._run_onnx(prepared), dtype=np.float64)
        sums = proba.sum(axis=1, keepdims=True)
        return np.where(np.abs(sums - 1.0) <= 1e-4, proba / np.where(sums == 0, 1.0, sums),
                        proba)

    def _labels(self, proba: np.ndarray, prepared: Any) -> np.ndarray:
        threshold = getattr(self.model, "threshold", None)
        if threshold is None:  # not a loopml model: its own predict decides
            return self.model.predict(prepared)
        # the rule of TrainedModel.predict and OnnxModel.predict, without a second pass
        if self.task == "binary":
            return self.classes[(proba[:, 1] >= threshold).astype(int)]
        return self.classes[proba.argmax(axis=1)]

    def _run_onnx(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        output = next(iter(self.model.signature["outputs"].values()))
        return self.model.session.run([output], feeds)[0]


def onnx_feeds(columns: dict[str, Any], signature: dict[str, Any]) -> dict[str, np.ndarray]:
    """Return the ONNX feeds of Arrow ``columns`` (name -> array) under the loopml contract.

    Numbers, text and whole numbers as categories, and timestamps are converted by Arrow
    kernels; any other type goes through :func:`loopml.optimize.contract.input_feeds`.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    feeds: dict[str, np.ndarray] = {}
    slow: list[dict[str, Any]] = []
    for spec in signature["columns"]:
        column, kind = columns[spec["name"]], spec["kind"]
        kind_of = column.type
        if kind == "number" and _numeric(kind_of):
            array = _floats(column.cast(pa.float64()))
        elif kind == "category" and (pa.types.is_string(kind_of) or
                                     pa.types.is_large_string(kind_of) or
                                     pa.types.is_integer(kind_of)):
            # "" is the contract's missing value; an integer reads as str(value) does
            text = column.cast(pa.string()) if not pa.types.is_string(kind_of) else column
            array = np.asarray(pc.fill_null(text, "").to_numpy(zero_copy_only=False),
                               dtype=object)
        elif kind == "datetime" and pa.types.is_timestamp(kind_of):
            per_second = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[kind_of.unit]
            raw = column.cast(pa.timestamp(kind_of.unit)).cast(pa.int64())
            array = _floats(raw.cast(pa.float64())) / per_second
        else:
            slow.append(spec)
            continue
        feeds[spec["input"]] = array.reshape(-1, 1)
    if slow:
        from loopml.optimize.contract import input_feeds

        frame = pa.table({s["name"]: columns[s["name"]] for s in slow}).to_pandas()
        feeds.update(input_feeds(frame, {**signature, "columns": slow}))
    return feeds


def model_kinds(model: Any) -> dict[str, str]:
    """Return the kind (number, category, datetime) of each input column ``model`` knows.

    From an ONNX signature, an ``input_kinds`` mapping, or the preprocessing of a loopml
    pipeline (its ``features`` step); empty for other models (their columns go unchecked).
    """
    signature = getattr(model, "signature", None)
    if isinstance(signature, dict) and "columns" in signature:
        return {c["name"]: c["kind"] for c in signature["columns"]}
    kinds = getattr(model, "input_kinds", None)
    if isinstance(kinds, dict):
        return dict(kinds)
    steps = getattr(getattr(model, "pipeline", None), "named_steps", {})
    parts = getattr(steps.get("features"), "transformers", None) or []
    # the part names of loopml.train.features.build_preprocessor
    names = {"numeric": "number", "categorical": "category", "high_cardinality": "category",
             "datetime": "datetime"}
    return {column: names[part] for part, _, cols in parts if part in names
            for column in (cols if isinstance(cols, list) else [])}


def _numeric(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return (pa.types.is_integer(kind) or pa.types.is_floating(kind) or
            pa.types.is_boolean(kind) or pa.types.is_decimal(kind) or pa.types.is_null(kind))


def _floats(column: Any) -> np.ndarray:
    """Return a float64 numpy array of an Arrow float column, NaN where null."""
    import numpy as np

    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


# --- the job: read, score, write ------------------------------------------------------


class _TypeChange(Exception):  # noqa: N818 - internal signal, never leaves this module
    """A CSV column's values changed type after the first block: read it again as ``to``."""

    def __init__(self, column: str, to: pa.DataType) -> None:
        super().__init__(column)
        self.column, self.to = column, to


class _Job:
    """One scoring job: the input's schema, the scorer, and the loop for each backend."""

    def __init__(self, model: Any, source: Path, *, chunk_rows: int,
                 columns: Sequence[str] | None, on_progress: Progress | None) -> None:
        self.model = model
        self.source = source
        self.format = file_format(source)
        self.chunk_rows = chunk_rows
        self.wanted = None if columns is None else list(columns)
        self.on_progress = on_progress
        self.types: dict[str, pa.DataType] = {}  # CSV columns read with a fixed type
        self.names: list[str] = []  # the file's columns, in order

    def run(self, path: Path, out_format: str, backend: str) -> int:
        """Return the rows written to ``path``; read again when a CSV column changes type."""
        while True:
            try:
                schema = self._schema()
                self.scorer = self._scorer()
                with _Writer(path, out_format, _output_schema(schema, self.scorer)) as writer:
                    if backend == "ray":
                        return self._score_ray(writer, schema)
                    return self._score_local(writer, schema)
            except _TypeChange as change:
                self.types[change.column] = change.to

    # reading

    def _schema(self) -> pa.Schema:
        """Return the schema of the columns this job reads (the file's names kept apart)."""
        import pyarrow as pa

        if self.format == "parquet":
            schema = self._parquet().schema_arrow
            self.names = list(schema.names)
            return pa.schema([schema.field(n) for n in self._needed(self.names)])
        with self._guard():
            self.names = list(self._csv_reader(include=None).schema.names)
            return self._csv_reader(include=self._needed(self.names)).schema

    def _needed(self, names: list[str]) -> list[str]:
        seen: set[str] = set()
        twice = [n for n in names if n in seen or seen.add(n)]
        if twice:
            raise InvalidInput(f"{self.source}: column {twice[0]!r} appears more than once in "
                               "the header; rename one of them")
        inputs = list(self.model.input_columns)
        missing = [c for c in inputs if c not in names]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:10])
            raise InvalidInput(f"{self.source}: missing column(s) {shown} that the model reads "
                               f"(it needs {len(inputs)}: {', '.join(map(repr, inputs[:10]))}"
                               f"{' …' if len(inputs) > 10 else ''})")
        if self.wanted is not None:
            unknown = [c for c in self.wanted if c not in names]
            if unknown:
                raise InvalidInput(f"{self.source}: columns to keep {unknown[:10]} are not in "
                                   "the file")
        keep = set(names if self.wanted is None else self.wanted) | set(inputs)
        return [n for n in names if n in keep]

    def _scorer(self) -> _Scorer:
        keep = [n for n in self.names if self.wanted is None or n in self.wanted]
        scorer = _Scorer(self.model, keep=keep, source=str(self.source))
        taken = [f.name for f in scorer.output_fields() if f.name in keep]
        if taken:
            raise InvalidInput(f"{self.source}: column {taken[0]!r} is also an output column "
                               "(a file scored before?); drop it from the input, or keep only "
                               "other columns (columns=…)")
        return scorer

    def csv_options(self, include: list[str] | None) -> dict[str, Any]:
        """Return pyarrow's CSV read, parse and convert options for this job."""
        import pyarrow.csv as csv

        return {"read_options": csv.ReadOptions(block_size=BLOCK_BYTES),
                "parse_options": csv.ParseOptions(newlines_in_values=True),
                # as pandas reads a CSV: an empty field is missing in text columns too
                "convert_options": csv.ConvertOptions(
                    include_columns=include, column_types=dict(self.types),
                    strings_can_be_null=True, quoted_strings_can_be_null=True)}

    def _csv_reader(self, *, include: list[str] | None) -> Any:
        import pyarrow.csv as csv

        return csv.open_csv(self.source, **self.csv_options(include))

    def _parquet(self) -> Any:
        import pyarrow.parquet as pq

        with self._guard():
            return pq.ParquetFile(self.source)

    def batches(self, schema: pa.Schema) -> Iterator[Any]:
        """Yield the input's record batches, errors translated to loopml's."""
        if self.format == "parquet":
            with self._guard():
                yield from self._parquet().iter_batches(batch_size=self.chunk_rows,
                                                        columns=schema.names)
            return
        with self._guard():
            reader = self._csv_reader(include=schema.names)
            yield from reader

    def total_rows(self) -> int | None:
        return self._parquet().metadata.num_rows if self.format == "parquet" else None

    def _guard(self) -> _translated:
        return _translated(self)

    def type_change(self, message: str) -> _TypeChange | None:
        """Return the retry a CSV conversion error asks for; None when it is not one."""
        import pyarrow as pa

        found = _CONVERSION.search(message)
        if found is None:
            return None
        index, was, value = int(found[1]), found[2].strip(), found[3]
        if was in ("string", "large_string", "binary") or index >= len(self.names):
            return None
        # widen as pandas would: int to float, anything else to text (a model's number
        # column read as text is then refused by the chunk check, which names the row)
        to: pa.DataType = pa.string()
        if was in ("null", "int64") and _parses(value, float):
            to = pa.int64() if was == "null" and _parses(value, int) else pa.float64()
        return _TypeChange(self.names[index], to)

    # local backend

    def _score_local(self, writer: _Writer, schema: pa.Schema) -> int:
        total = self.total_rows()
        done = 0
        for chunk, prepared in _ahead(self._prepared(schema)):
            writer.write(self.scorer.finish(chunk, prepared))
            done += chunk.num_rows
            if self.on_progress is not None:
                self.on_progress(done, total)
        return done

    def _prepared(self, schema: pa.Schema) -> Iterator[tuple[pa.Table, Any]]:
        """Yield each chunk with the model's input made from it (run ahead in a thread)."""
        first = 0
        for chunk in rechunk(self.batches(schema), self.chunk_rows):
            yield chunk, self.scorer.prepare(chunk, first_row=first)
            first += chunk.num_rows

    def _score_ray(self, writer: _Writer, schema: pa.Schema) -> int:
        """Return the rows written after Ray Data scored them (see batch_ray.py)."""
        from loopml.serve.batch_ray import score_on_ray

        return score_on_ray(self, writer, schema)

    def _scan_types(self) -> None:
        """Read the whole CSV once, without scoring, until every column has a type that fits."""
        while True:
            try:
                for _ in self.batches(self._schema()):
                    pass
                return
            except _TypeChange as change:
                self.types[change.column] = change.to


class _translated:  # noqa: N801 - a context manager used like a function
    """Turn pyarrow's and the OS's errors about the input into InvalidInput (or a retry)."""

    def __init__(self, job: _Job) -> None:
        self.job = job

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        import pyarrow as pa

        if exc is None or isinstance(exc, LoopmlError | _TypeChange):
            return False
        if isinstance(exc, pa.ArrowCancelled):  # Ctrl-C seen inside pyarrow's C++ code
            raise KeyboardInterrupt from exc
        if not isinstance(exc, pa.ArrowException | OSError | UnicodeError):
            return False
        message = str(exc).strip()
        change = self.job.type_change(message)
        if change is not None:
            raise change from None
        found = _CONVERSION.search(message)
        if found is not None and "string" in found[2]:
            raise InvalidInput(f"{self.job.source}: CSV column #{int(found[1]) + 1} is not "
                               "UTF-8 text; convert the file to UTF-8") from exc
        first = message.splitlines()[0][:300] if message else type(exc).__name__
        kind_name = "CSV" if self.job.format == "csv" else "Parquet"
        raise InvalidInput(f"{self.job.source} cannot be read as {kind_name}: {first}") from exc


def _parses(text: str, kind: type) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def _ahead(items: Iterator[Any]) -> Iterator[Any]:
    """Yield ``items`` with the next one made in a thread meanwhile (one at most).

    Reading, parsing and preparing the next chunk overlap the model's run on this one
    (onnxruntime, pyarrow and numpy release the GIL); an error there is raised here.
    """
    from concurrent.futures import ThreadPoolExecutor

    end = object()
    pool = ThreadPoolExecutor(1, thread_name_prefix="loopml-batch-read")
    try:
        pending = pool.submit(next, items, end)
        while (item := pending.result()) is not end:
            pending = pool.submit(next, items, end)
            yield item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # the thread is done with ``items``
        close = getattr(items, "close", None)
        if close is not None:
            close()


def rechunk(batches: Iterable[Any], rows: int) -> Iterator[pa.Table]:
    """Yield tables of exactly ``rows`` rows (the last one shorter) from record ``batches``."""
    import pyarrow as pa

    pending: list[Any] = []
    held = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


def _output_schema(schema: pa.Schema, scorer: _Scorer) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([*(schema.field(n) for n in scorer.keep), *scorer.output_fields()])


class _Writer:
    """A streaming CSV or Parquet writer of a fixed schema on one path.

    Each table is written in a thread while the next chunk is scored (encoding and
    compression overlap the model); one write at most is in flight, so memory stays bounded.
    """

    def __init__(self, path: Path, out_format: str, schema: pa.Schema) -> None:
        self.path, self.format, self.schema = path, out_format, schema
        self._sink: Any = None
        self._writer: Any = None
        self._pool: Any = None
        self._pending: Any = None

    def __enter__(self) -> _Writer:
        from concurrent.futures import ThreadPoolExecutor

        import pyarrow as pa

        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self.path, self.schema)
        else:
            import pyarrow.csv as csv

            gz = self.path.name.lower().endswith(".gz")
            self._sink = pa.output_stream(self.path, compression="gzip" if gz else None)
            self._writer = csv.CSVWriter(self._sink, self.schema)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="loopml-batch-write")
        return self

    def write(self, table: pa.Table) -> None:
        if table.schema != self.schema:
            table = table.cast(self.schema)
        self._wait()
        self._pending = self._pool.submit(self._writer.write_table, table)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # an error of the write is raised here

    def __exit__(self, kind: object, *exc: object) -> None:
        try:
            if kind is None:
                self._wait()
        finally:
            self._pool.shutdown(wait=True)
            self._writer.close()
            if self._sink is not None:
                self._sink.close()


def _write_atomically(target: Path, *, overwrite: bool, write: Callable[[Path], int]) -> int:
    """Return what ``write`` returns after it filled a temp file that then becomes ``target``."""
    import tempfile

    try:
        # the temp name keeps the target's suffixes: the writer picks gzip from them
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                        suffix=f".tmp{''.join(target.suffixes)}")
    except OSError as exc:
        raise InvalidInput(f"output {str(target)!r}: cannot write in folder "
                           f"{str(target.parent)!r} ({exc.strerror or exc})") from exc
    os.close(handle)
    temp = Path(name)
    try:
        rows = write(temp)
        with open(temp, "rb") as done:
            os.fsync(done.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes it private; scored rows are shared as files are
        publish(temp, target, overwrite=overwrite, what="output")
    except OSError as exc:  # reading errors are InvalidInput by now: this is the output's
        raise InvalidInput(f"output {str(target)!r} could not be written: "
                           f"{exc.strerror or exc}") from exc
    finally:
        temp.unlink(missing_ok=True)
    return rows


