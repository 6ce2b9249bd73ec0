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

This module holds the public entry and the job (read, score, write, retry when a CSV column
changes type); ``batch_scorer.py`` turns a chunk into predictions, ``batch_io.py`` cuts the
input into chunks and writes the output atomically, ``batch_ray.py`` is the Ray backend.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import AlreadyExists, InvalidInput, LoopmlError
from loopml.serve.batch_io import _ahead, _output_schema, _write_atomically, _Writer, rechunk
from loopml.serve.batch_scorer import _Scorer, output_names

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["BACKENDS", "ScoreSummary", "check_paths", "file_format", "output_names",
           "score_file"]

BACKENDS = ("local", "ray")
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# pyarrow infers CSV column types from the first block, and its reader keeps about 32 blocks
# read ahead whatever the file's size: 1 MiB blocks bound that to ~40 MB
BLOCK_BYTES = 1 << 20
# the value runs to the end of its line: Ray's copy of the message has a traceback after it
# (Arrow's serial reader, one CPU thread as with OMP_NUM_THREADS=1, names the row too)
_CONVERSION = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to "
                         r"([^:\n]+): invalid value '(.*)'$", re.MULTILINE)

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
