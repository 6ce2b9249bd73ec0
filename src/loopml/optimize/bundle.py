"""Edge bundles: one zip that scores CSV files anywhere numpy and onnxruntime install.

A bundle holds ``model.onnx`` (a model following the loopml ONNX contract), ``signature.json``
(its signature, for people and tools that do not read ONNX), ``README.md`` (what the model is,
its columns, outputs and test metrics, how to run it) and ``predict.py`` (the text of
:mod:`loopml.optimize.bundle_predict`, which imports nothing of loopml, pandas or sklearn).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from loopml.errors import AlreadyExists, InvalidInput
from loopml.files import publish

__all__ = ["BUNDLE_FILES", "write_bundle"]

BUNDLE_FILES = ("model.onnx", "signature.json", "README.md", "predict.py")
# A fixed time in every entry: the same model gives the same zip, byte for byte.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def write_bundle(onnx_bytes: bytes, path: str | os.PathLike[str], *, name: str, version: str,
                 card: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Return ``path`` after writing there the bundle zip of ``onnx_bytes``.

    The zip is written whole or not at all: to a temporary file beside ``path``, then renamed.
    An existing ``path`` is kept (:class:`~loopml.errors.AlreadyExists`) unless ``overwrite``.
    ``card`` is the model card dict; its test metrics go into the README.
    """
    from loopml.optimize.contract import signature_of

    target = Path(path)
    signature = signature_of(_parse(onnx_bytes))
    if not target.parent.is_dir():
        raise InvalidInput(f"bundle path {str(target)!r}: folder {str(target.parent)!r} does "
                           "not exist; create it first or choose another path")
    if target.exists() and not overwrite:
        raise AlreadyExists(f"bundle path {str(target)!r} already exists; choose another "
                            "path or pass overwrite=True (--force) to replace it")
    entries = {
        "model.onnx": onnx_bytes,
        "signature.json": (json.dumps(signature, indent=2, ensure_ascii=False) + "\n").encode(),
        "README.md": readme(signature, name=name, version=version, card=card).encode(),
        "predict.py": predict_script().encode(),
    }
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                        suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for entry, data in entries.items():
                    info = zipfile.ZipInfo(entry, date_time=_ZIP_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = (0o755 if entry.endswith(".py") else 0o644) << 16
                    archive.writestr(info, data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes it private; a bundle is meant to be shared
        publish(temp, target, overwrite=overwrite, what="bundle path")
    finally:
        temp.unlink(missing_ok=True)
    return target



def _parse(onnx_bytes: bytes) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_from_string(onnx_bytes)
    except (DecodeError, ValueError, TypeError) as exc:
        raise InvalidInput(f"the bundle's model is not an ONNX model ({exc})") from exc
    if not model.graph.output:
        raise InvalidInput("the bundle's model is not an ONNX model (it has no graph outputs)")
    return model


def predict_script() -> str:
    """Return the text of the bundle's ``predict.py``."""
    from importlib.resources import files

    return files("loopml.optimize").joinpath("bundle_predict.py").read_text(encoding="utf-8")


def safe_text(value: Any) -> str:
    """Return ``value`` as text without control characters (shown escaped), for markdown.

    >>> safe_text("a\\nb\\x1b[31m")
    'a\\\\nb\\\\x1b[31m'
    """
    # str(), not JSON: a class True is written "True" by predict.py, so the README says so
    text = value if isinstance(value, str) else str(value)
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _cell(value: Any) -> str:
    """Return ``value`` fit for one markdown table cell: a ``|`` would end the cell."""
    return safe_text(value).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def _code(value: Any) -> str:
    """Return ``value`` as inline code whatever backticks it holds."""
    text = safe_text(value)
    fence = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def readme(signature: dict[str, Any], *, name: str, version: str,
           card: dict[str, Any] | None = None) -> str:
    """Return the bundle's README.md for a model with ``signature``."""
    task = signature["task"]
    lines = [f"# {safe_text(name)} — version {safe_text(version)}", "",
             f"A {task} model packaged by loopml as an edge bundle: it scores CSV files with "
             "nothing installed but Python, numpy and onnxruntime.", ""]
    if signature.get("target") is not None:
        lines += [f"It predicts the column {_code(signature['target'])}.", ""]
    if signature.get("source") == "imported":
        lines += ["The model was trained outside loopml and imported.", ""]
    lines += ["## Files", "",
              "- `model.onnx` — the model (ONNX; inputs `x0`, `x1`, … one per column below).",
              "- `signature.json` — the columns, their kinds, the outputs and the classes.",
              "- `predict.py` — scores a CSV file with the model.",
              "- `README.md` — this page.", "",
              "## How to run", "",
              "```sh", "pip install numpy onnxruntime", "python predict.py in.csv out.csv", "```",
              "", "Without `out.csv` the predictions go to standard output. The first row of "
              "`in.csv` names the columns; other columns are ignored, a missing one is an error "
              "(exit code 2, one line naming it).", "",
              "## Input columns", "",
              "| # | column | kind | ONNX input |", "|---|---|---|---|"]
    for index, column in enumerate(signature["columns"], start=1):
        lines.append(f"| {index} | {_cell(column['name'])} | {column['kind']} | "
                     f"`{column['input']}` |")
    lines += ["", "Kinds: `number` — decimal text, `true`/`false` read as 1/0, empty or `NA` "
              "missing; `category` — the text as it is, empty missing; `datetime` — ISO 8601 "
              "(`2024-01-31T12:00:00`, optional `Z` or `+02:00`; no offset means UTC), empty "
              "missing.", "", "## Outputs", ""]
    lines += _outputs(signature)
    if card:
        lines += _metrics(card)
    return "\n".join(lines) + "\n"


def _outputs(signature: dict[str, Any]) -> list[str]:
    task = signature["task"]
    if task == "regression":
        return ["`prediction` — the predicted value (ONNX output `value`, float [N, 1]).", ""]
    classes = signature["classes"]
    lines = ["- `prediction` — the predicted class.",
             "- `probability_<class>` — one column per class, in this order (ONNX output "
             "`probabilities`, float [N, classes]):", ""]
    lines += [f"  {i}. {_code(c)}" for i, c in enumerate(classes, start=1)]
    lines.append("")
    if task == "binary":
        lines += [f"Decision threshold: **{float(signature['threshold']):.6g}** — the "
                  f"prediction is {_code(classes[1])} when its probability is at least the "
                  f"threshold, else {_code(classes[0])}.", ""]
    else:
        lines += ["The prediction is the class with the highest probability.", ""]
    return lines


def _metrics(card: dict[str, Any]) -> list[str]:
    evaluation = card.get("evaluation") or {}
    metrics = evaluation.get("metrics") or {}
    if not metrics:
        return []
    rows = evaluation.get("rows")
    lines = ["## Test metrics", "",
             f"Measured on {rows} held-out test rows" if rows is not None else
             "Measured on the held-out test rows"]
    data = card.get("data") or {}
    if data.get("ref"):
        lines[-1] += f" of dataset {_code(data['ref'])}"
    if card.get("run_id"):
        lines[-1] += f" (training run {_code(card['run_id'])})"
    lines[-1] += "."
    lines += ["", "| metric | value |", "|---|---|"]
    for metric, value in metrics.items():
        shown = "undefined" if value is None else (
            f"{value:.4g}" if isinstance(value, float) else _cell(value))
        lines.append(f"| {_cell(metric)} | {shown} |")
    lines.append("")
    return lines
