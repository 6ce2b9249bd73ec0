"""Score a CSV file with the loopml model in this folder (the ``predict.py`` of an edge bundle).

Usage::

    pip install numpy onnxruntime
    python predict.py INPUT.csv [OUTPUT.csv]

The first row of INPUT.csv names the columns; extra columns are ignored, a missing one is an
error. The output has ``prediction`` and, for a classifier, one ``probability_<class>`` column
per class, one row per input row, in the same order (standard output when no OUTPUT.csv).

How values are read (the loopml ONNX contract):

- number columns: decimal text; empty, NA, NaN, null, None mean missing; true/false are 1/0.
- category columns: the text as it is; empty means missing.
- datetime columns: ISO 8601 text (``2024-01-31``, ``2024-01-31T12:00:00``, with an optional
  ``Z`` or ``+02:00``); times without an offset are read as UTC; empty or NA means missing.

Errors (a missing column, text in a number column, an unreadable file) are one line on
standard error and exit code 2.

This file imports only the standard library, numpy and onnxruntime, so it runs anywhere those
two install; it reads the model's signature from the model itself (``loopml.signature``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

SIGNATURE_KEY = "loopml.signature"
SIGNATURE_FORMAT = 1
CHUNK_ROWS = 10_000
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "<na>", "nat"})
TRUE, FALSE = frozenset({"true"}), frozenset({"false"})
_OFFSET = re.compile(r"(?:[zZ]|([+-])(\d{2}):?(\d{2}))$")
_EPOCH = np.datetime64(0, "s")

__all__ = ["BundleError", "load_model", "predict_rows", "main"]


class BundleError(ValueError):
    """Input this model cannot score; the message is one line naming the column and row."""


def load_model(path: str | os.PathLike[str]) -> Any:
    """Return an onnxruntime session for the ONNX file at ``path`` (CPU)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    try:
        return onnxruntime.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise BundleError(f"{path}: cannot load the model: "
                          f"{' '.join(str(exc).split())[:300]}") from exc


def signature(session: Any) -> dict[str, Any]:
    """Return the loopml signature stored in the model's metadata."""
    text = session.get_modelmeta().custom_metadata_map.get(SIGNATURE_KEY)
    if text is None:
        raise BundleError(f"the model has no {SIGNATURE_KEY!r} metadata: it was not made "
                          "by loopml (import it with `loopml models import` first)")
    found = json.loads(text)
    if found.get("format") != SIGNATURE_FORMAT:
        raise BundleError(f"the model's signature has format {found.get('format')!r}; this "
                          f"predict.py reads format {SIGNATURE_FORMAT}: use the predict.py "
                          "bundled with the model")
    return found


def predict_rows(session: Any, rows: Iterable[Mapping[str, Any]], *,
                 first_row: int = 1) -> list[dict[str, Any]]:
    """Return one output dict per input row (``prediction`` and ``probability_<class>``).

    ``rows`` are mappings from column name to text (as ``csv.DictReader`` gives) or to
    numbers; ``first_row`` is the number errors give the first of them.
    """
    sig = signature(session)
    rows = list(rows)
    feeds = {}
    for column in sig["columns"]:
        name = column["name"]
        read = _READERS[column["kind"]]
        values = []
        for offset, row in enumerate(rows):
            if name not in row:
                raise BundleError(f"row {first_row + offset}: no value for column {name!r}")
            values.append(read(row[name], name, first_row + offset))
        dtype = object if column["kind"] == "category" else np.float64
        feeds[column["input"]] = np.array(values, dtype=dtype).reshape(-1, 1)
    if not rows:
        return []
    return _answers(session, sig, feeds)


def _answers(session: Any, sig: dict[str, Any], feeds: dict[str, np.ndarray]
             ) -> list[dict[str, Any]]:
    """Return the output rows of one run of the model."""
    outputs = sig["outputs"]
    if sig["task"] == "regression":
        (value,) = session.run([outputs["value"]], feeds)
        return [{"prediction": float(v)} for v in np.asarray(value).reshape(-1)]
    (proba,) = session.run([outputs["probabilities"]], feeds)
    proba = np.asarray(proba)
    classes = np.asarray(sig["classes"], dtype=object)
    # The same rule as loopml's own labels: threshold on the second column, else argmax.
    if sig["task"] == "binary":
        labels = classes[(proba[:, 1] >= sig["threshold"]).astype(int)]
    else:
        labels = classes[proba.argmax(axis=1)]
    names = [f"probability_{_text(c)}" for c in sig["classes"]]
    return [{"prediction": _text(label), **{n: float(p) for n, p in zip(names, row, strict=True)}}
            for label, row in zip(labels, proba, strict=True)]


def output_columns(sig: dict[str, Any]) -> list[str]:
    """Return the header of the output file for a model with signature ``sig``."""
    if sig["task"] == "regression":
        return ["prediction"]
    return ["prediction", *(f"probability_{_text(c)}" for c in sig["classes"])]


def _text(value: Any) -> str:
    """Return a class value as the text loopml writes for it (``True``, ``3``, ``yes``)."""
    return value if isinstance(value, str) else str(value)


def _number(value: Any, column: str, row: int) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool | int | float):
        return float(value)
    text = str(value).strip()
    folded = text.lower()
    if folded in MISSING:
        return math.nan
    if folded in TRUE or folded in FALSE:
        return 1.0 if folded in TRUE else 0.0
    try:
        # float() also takes "1_000"; a CSV number never has underscores
        if "_" in text:
            raise ValueError(text)
        return float(text)
    except ValueError:
        raise BundleError(f"column {column!r}, row {row}: expected a number, got text; "
                          "write a number, or leave it empty for a missing value") from None


def _category(value: Any, column: str, row: int) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value if isinstance(value, str) else str(value)


def _datetime(value: Any, column: str, row: int) -> float:
    if value is None:
        return math.nan
    text = str(value).strip()
    if text.lower() in MISSING:
        return math.nan
    shift = 0
    match = _OFFSET.search(text) if "T" in text or ":" in text else None
    if match:
        text = text[:match.start()]
        if match.group(1):
            minutes = int(match.group(2)) * 60 + int(match.group(3))
            shift = minutes * 60 * (1 if match.group(1) == "+" else -1)
    try:
        # The unit the text implies (days … nanoseconds): a fixed "ns" would wrap years
        # outside 1678-2262 silently.
        stamp = np.datetime64(text)
    except ValueError:
        raise BundleError(f"column {column!r}, row {row}: expected an ISO 8601 date or time "
                          "such as 2024-01-31 or 2024-01-31T12:00:00+00:00, or an empty "
                          "value for missing") from None
    if np.isnat(stamp):
        return math.nan
    return float((stamp - _EPOCH) / np.timedelta64(1, "s")) - shift


_READERS = {"number": _number, "category": _category, "datetime": _datetime}


def _positions(header: list[str], needed: list[str]) -> dict[str, int]:
    """Return where each needed column is in ``header``; refuse missing or doubled ones."""
    where: dict[str, int] = {}
    for index, name in enumerate(header):
        if name in needed and name in where:
            raise BundleError(f"column {name!r} appears twice in the header; keep one")
        where.setdefault(name, index)
    missing = [name for name in needed if name not in where]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:10])
        raise BundleError(f"input is missing column(s) {shown}; the model needs "
                          f"{', '.join(repr(n) for n in needed)}")
    return {name: where[name] for name in needed}


def _chunks(reader: Iterator[list[str]], header: list[str], where: dict[str, int]
            ) -> Iterator[tuple[int, list[dict[str, str]]]]:
    """Yield ``(first row number, rows)`` of at most CHUNK_ROWS rows holding the needed columns."""
    chunk: list[dict[str, str]] = []
    first = number = 1
    for record in reader:
        if not record:
            continue  # csv gives [] for a blank line; it is no row
        if len(record) != len(header):
            raise BundleError(f"row {number}: {len(record)} fields, the header has "
                              f"{len(header)}; check the quoting of that row")
        chunk.append({name: record[index] for name, index in where.items()})
        number += 1
        if len(chunk) == CHUNK_ROWS:
            yield first, chunk
            first, chunk = number, []
    if chunk:
        yield first, chunk


def score_file(session: Any, source: Path, out: Any) -> int:
    """Write the predictions for the CSV file ``source`` to the text stream ``out``.

    Returns the number of rows written.
    """
    sig = signature(session)
    needed = [column["name"] for column in sig["columns"]]
    writer = csv.DictWriter(out, fieldnames=output_columns(sig), lineterminator="\n")
    try:
        with open(source, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            header = next(reader, None)
            if header is None:
                raise BundleError(f"{source}: the file is empty; the first row must name "
                                  "the columns")
            where = _positions(header, needed)
            writer.writeheader()
            total = 0
            for first, rows in _chunks(reader, header, where):
                writer.writerows(predict_rows(session, rows, first_row=first))
                total += len(rows)
            return total
    except csv.Error as exc:
        raise BundleError(f"{source}: not a readable CSV file ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise BundleError(f"{source}: not UTF-8 text (byte {exc.start}); save the file as "
                          "UTF-8") from exc
    except OSError as exc:
        raise BundleError(f"{source}: cannot read it ({exc.strerror or exc})") from exc


def _write_output(session: Any, source: Path, target: Path) -> None:
    """Score ``source`` into ``target`` whole or not at all (temp file, then rename)."""
    folder = target.parent if str(target.parent) else Path(".")
    try:
        descriptor, name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.",
                                            suffix=".tmp")
    except OSError as exc:
        raise BundleError(f"{target}: cannot write there ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as handle:
            score_file(session, source, handle)
        os.chmod(name, 0o644)  # mkstemp makes it private; a result file is not
        os.replace(name, target)
    except OSError as exc:
        Path(name).unlink(missing_ok=True)
        raise BundleError(f"{target}: cannot write there ({exc.strerror or exc})") from exc
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 done, 2 bad input)."""
    parser = argparse.ArgumentParser(
        prog="predict.py", description="Score a CSV file with the loopml model of this bundle.")
    parser.add_argument("input", type=Path, help="CSV file whose first row names the columns")
    parser.add_argument("output", type=Path, nargs="?",
                        help="CSV file to write (default: standard output)")
    parser.add_argument("--model", type=Path, default=Path(__file__).with_name("model.onnx"),
                        help="the ONNX model (default: model.onnx beside this file)")
    args = parser.parse_args(argv)
    try:
        if not args.model.is_file():
            raise BundleError(f"{args.model}: no such model file")
        session = load_model(args.model)
        if args.output is None:
            score_file(session, args.input, sys.stdout)
        else:
            _write_output(session, args.input, args.output)
    except BundleError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
