"""Exporting a registered version: ONNX (proved and profiled, then recorded) or skops.

``export_onnx`` converts the whole model, proves parity with the native model on the
version's test rows, profiles both flavours on this machine, and records the ONNX
artifact with the flavour that serves (ONNX only when parity held and it is faster). A
model that cannot convert, or whose graph fails parity, is recorded too (the step and the
reason, or the parity figures), keeps no ONNX artifact and keeps serving natively. A
version's ONNX artifact, once kept, is not replaced. ``export_skops`` writes the
scikit-learn model in skops' format, which loads without running pickled code: the way a
native model leaves the machine.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from loopml.errors import ExportFailed, InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from loopml.registry.registry import Registry
    from loopml.store.models import ModelVersionRecord

FORMATS = ("onnx", "skops")
PARITY_ROWS = 5000  # at most this many test rows are compared


@dataclasses.dataclass
class OnnxExport:
    """The outcome of an ONNX export: bytes when it converted, parity, profile, flavour."""

    record: ModelVersionRecord
    onnx: bytes | None
    export: dict[str, Any]


def export_onnx(registry: Registry, record: ModelVersionRecord, *,
                rows: pd.DataFrame | None = None, profile_rows: bool = True) -> OnnxExport:
    """Convert, prove parity, profile, and record the serving flavour of ``record``."""
    from loopml.optimize.export import to_onnx
    from loopml.optimize.parity import check_parity
    from loopml.optimize.profile import choose_flavour, profile
    from loopml.optimize.runtime import OnnxModel

    if record.onnx_sha256 is not None:  # imported, or exported before: the version keeps it
        return OnnxExport(record, registry.client.artifacts.get_bytes(record.onnx_sha256),
                          record.export or {})
    if record.native_sha256 is None:
        raise InvalidInput(f"{record.ref} has neither a native nor an ONNX artifact")
    native = registry.load(record, flavour="native")
    try:
        blob = to_onnx(native)
    except ExportFailed as exc:
        export = {"error": str(exc), "flavour": "native"}
        updated = registry.models.set_export(record.name, record.version, export=export,
                                             onnx_sha256=None, onnx_size=None,
                                             flavour="native")
        return OnnxExport(updated, None, export)
    if rows is None:
        rows = held_out_rows(registry, record)
    rows = rows.head(PARITY_ROWS)
    onnx_model = OnnxModel.from_bytes(blob)
    parity = check_parity(native, onnx_model, rows)
    timings = profile(native, onnx_model, rows, onnx_bytes=len(blob),
                      native_bytes=record.native_size or 0) if profile_rows else {}
    flavour = choose_flavour(parity, timings) if timings else "native"
    export = {"parity": _plain(parity), "profile": timings, "flavour": flavour,
              "rows": len(rows)}
    if not parity.passed:  # recorded, but a graph that answers differently is never kept
        updated = registry.models.set_export(record.name, record.version, export=export,
                                             onnx_sha256=None, onnx_size=None,
                                             flavour="native")
        return OnnxExport(updated, None, export)
    stored = registry.client.artifacts.put_bytes(blob)
    updated = registry.models.set_export(
        record.name, record.version, export=export, onnx_sha256=stored.sha256,
        onnx_size=len(blob), flavour=flavour)
    return OnnxExport(updated, blob, export)


def export_skops(registry: Registry, record: ModelVersionRecord) -> bytes:
    """Return the native model in skops' format (loads without running pickled code)."""
    import skops.io as sio

    if record.native_sha256 is None:
        raise InvalidInput(f"{record.ref} was imported as ONNX: it has no native model to "
                           "write as skops; use --format onnx")
    model = registry.load(record, flavour="native")
    try:
        return sio.dumps(model)
    except (TypeError, ValueError, NotImplementedError) as exc:
        raise ExportFailed(f"{record.ref}: skops cannot store this model "
                           f"({type(exc).__name__}: {exc}); export it as ONNX instead") from exc


def held_out_rows(registry: Registry, record: ModelVersionRecord) -> pd.DataFrame:
    """Return the version's test rows (its training split), for parity and profiles."""
    from loopml.registry.promote import training_parts

    return training_parts(registry, record)["test"]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def write_new_file(data: bytes, path: Any, *, overwrite: bool = False) -> Any:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename); return the path.

    An existing file is refused unless ``overwrite``: nothing is half-written either way.
    """
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    if path.exists() and not overwrite:
        raise InvalidInput(f"{path} exists; pass --force to overwrite it")
    if not path.parent.is_dir():
        raise InvalidInput(f"{path}: folder {path.parent} does not exist")
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a model file is shared as usual
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def file_safe(name: str) -> str:
    """Return ``name`` usable in a file name.

    >>> file_safe("credit risk/v2")
    'credit-risk-v2'
    """
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:80] or "model"


def bundle(registry: Registry, record: ModelVersionRecord, path: Any, *,
           overwrite: bool = False) -> tuple[Any, ModelVersionRecord]:
    """Write the edge bundle of ``record`` to ``path``, exporting to ONNX first if needed.

    A version whose ONNX export did not pass parity (or cannot convert) has no bundle: the
    error says why.
    """
    from pathlib import Path

    from loopml.errors import AlreadyExists
    from loopml.optimize.bundle import write_bundle

    if Path(path).exists() and not overwrite:  # before any slow export
        raise AlreadyExists(f"bundle path {str(path)!r} already exists; choose another path "
                            "or pass --force to replace it")
    if record.onnx_sha256 is None:
        if record.export and record.export.get("error"):
            raise ExportFailed(f"{record.ref} cannot be bundled: {record.export['error']}")
        record = export_onnx(registry, record).record
    if record.onnx_sha256 is None:
        parity = (record.export or {}).get("parity") or {}
        why = (record.export or {}).get("error") or \
            f"its ONNX export failed the parity check ({parity.get('detail', 'no detail')})"
        raise ExportFailed(f"{record.ref} cannot be bundled: {why}")
    onnx = registry.client.artifacts.get_bytes(record.onnx_sha256)
    written = write_bundle(onnx, path, name=record.name, version=str(record.version),
                           card=registry.card(record), overwrite=overwrite)
    return written, record
