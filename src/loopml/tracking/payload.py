"""Turn what users pass to ``log_artifact`` into named bytes: files, bytes, frames, figures."""

from __future__ import annotations

import io
import json
import mimetypes
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loopml.errors import InvalidInput


@dataclass(frozen=True)
class Payload:
    name: str
    media_type: str
    data: bytes | None = None
    path: Path | None = None
    in_folder: bool = False  # a file found by walking a folder: links there are refused


def media_type_of(name: str) -> str:
    """Return the media type for a file name.

    >>> media_type_of("model/card.html")
    'text/html'
    """
    if name.endswith(".parquet"):
        return "application/vnd.apache.parquet"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def payloads(obj: object, name: str | None) -> Iterator[Payload]:
    """Yield the named payloads for ``obj``: one, or one per file of a folder."""
    if isinstance(obj, bytes | bytearray | memoryview):
        if not name:
            raise InvalidInput("log_artifact(bytes) needs a name, e.g. name='weights.bin'")
        yield Payload(name, media_type_of(name), data=bytes(obj))
    elif isinstance(obj, str | os.PathLike):
        yield from _path_payloads(Path(obj), name)
    elif _is_dataframe(obj):
        yield _frame_payload(obj, name or "data.parquet")
    elif hasattr(obj, "savefig") and hasattr(obj, "get_axes"):
        yield _matplotlib_payload(obj, name or "figure.png")
    elif hasattr(obj, "to_plotly_json") and hasattr(obj, "to_html"):
        name = name or "figure.html"
        html = obj.to_html(include_plotlyjs=True, full_html=True)  # type: ignore[attr-defined]
        yield Payload(name, "text/html", data=html.encode())
    elif isinstance(obj, dict | list):
        name = name or "data.json"
        try:
            text = json.dumps(obj, indent=2, sort_keys=True, default=str)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"cannot write artifact {name!r} as JSON: {exc}") from exc
        yield Payload(name, "application/json", data=text.encode())
    else:
        raise InvalidInput(
            f"cannot log an object of type {type(obj).__name__} as an artifact: pass a file "
            "or folder path, bytes (with name=), a pandas DataFrame, a matplotlib or plotly "
            "figure, or a dict"
        )


def _path_payloads(path: Path, name: str | None) -> Iterator[Payload]:
    if path.is_dir():
        yield from _folder_payloads(path, name or path.name)
    elif path.is_file():
        name = name or path.name
        yield Payload(name, media_type_of(name), path=path)
    else:
        raise InvalidInput(f"cannot log {path}: no such file or folder")


def _folder_payloads(folder: Path, prefix: str) -> Iterator[Payload]:
    """Yield one payload per file under ``folder``; refuse symbolic links anywhere in it.

    A link is never followed: one pointing outside the folder (``/etc/hostname``) would
    store that file's content under a name that looks local, and a dangling one would be
    a file silently missing from the artifact.
    """
    files, links = [], []
    for root, dirs, names in os.walk(folder, followlinks=False):
        for entry in sorted([*dirs, *names]):
            path = Path(root, entry)
            if path.is_symlink():
                links.append(path)
            elif entry in names and path.is_file():
                files.append(path)
    if links:
        shown = ", ".join(f"{p.relative_to(folder).as_posix()} -> {os.readlink(p)}"
                          for p in links[:5])
        more = f" and {len(links) - 5} more" if len(links) > 5 else ""
        raise InvalidInput(
            f"cannot log folder {folder}: it contains symbolic links ({shown}{more}); links "
            "are not followed: replace them with the files they point to, or remove them"
        )
    if not files:
        raise InvalidInput(f"cannot log folder {folder}: it has no files")
    for file in sorted(files):
        item = f"{prefix}/{file.relative_to(folder).as_posix()}"
        yield Payload(item, media_type_of(item), path=file, in_folder=True)


def _is_dataframe(obj: object) -> bool:
    module = type(obj).__module__
    return module.startswith("pandas") and hasattr(obj, "to_parquet")


def _frame_payload(frame: object, name: str) -> Payload:
    buffer = io.BytesIO()
    if name.endswith(".csv"):
        frame.to_csv(buffer, index=False)  # type: ignore[attr-defined]
    elif name.endswith(".parquet"):
        frame.to_parquet(buffer, index=False)  # type: ignore[attr-defined]
    else:
        raise InvalidInput(f"a DataFrame is logged as .parquet or .csv, not as {name!r}")
    return Payload(name, media_type_of(name), data=buffer.getvalue())


def _matplotlib_payload(figure: object, name: str) -> Payload:
    fmt = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if fmt not in ("png", "svg", "pdf"):
        raise InvalidInput(f"a matplotlib figure is logged as .png, .svg or .pdf, not {name!r}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, bbox_inches="tight")  # type: ignore[attr-defined]
    return Payload(name, media_type_of(name), data=buffer.getvalue())
