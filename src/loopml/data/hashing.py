"""The content hash of a table: same columns, types and rows in the same order → same hash.

The hash does not depend on the file format or on how the reader cut the rows into
batches: each column feeds three streams (validity, fixed-width values or string lengths,
string bytes) into their own sha256, and streams are concatenation-safe. Row order is
part of the content on purpose: a model trained on the first 80% of rows of a file
sees different data when the rows are shuffled, so reordered rows are a new version.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


def canonical_type(arrow_type: pa.DataType) -> str:
    """Return the type name that enters the hash (string and large_string are one type).

    >>> import pyarrow as pa
    >>> canonical_type(pa.large_string())
    'string'
    """
    import pyarrow as pa

    if pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return "string"
    if pa.types.is_large_binary(arrow_type):
        return "binary"
    return str(arrow_type)


class TableHasher:
    """Feed record batches with a fixed schema; :meth:`hexdigest` gives the content hash."""

    def __init__(self, schema: pa.Schema) -> None:
        self._schema = schema
        self._rows = 0
        self._streams = [
            (hashlib.sha256(), hashlib.sha256(), hashlib.sha256()) for _ in schema
        ]

    def update(self, batch: pa.RecordBatch) -> None:
        self._rows += batch.num_rows
        for column, streams in zip(batch.columns, self._streams, strict=True):
            _feed(column, streams)

    def hexdigest(self) -> str:
        digest = hashlib.sha256()
        header = ";".join(f"{f.name}:{canonical_type(f.type)}" for f in self._schema)
        digest.update(f"loopml-table-v1|{self._rows}|{header}".encode())
        for streams in self._streams:
            for stream in streams:
                digest.update(stream.digest())
        return digest.hexdigest()


def _feed(array: pa.Array, streams: tuple) -> None:
    import numpy as np
    import pyarrow as pa

    validity, values, data = streams
    valid = _validity(array)
    validity.update(valid.view(np.uint8).tobytes())  # a byte a row: batch-boundary safe
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) \
            or pa.types.is_large_binary(kind):
        filled = array.fill_null(b"" if pa.types.is_binary(kind) else "") if array.null_count \
            else array
        offsets_type = np.int64 if pa.types.is_large_string(kind) or \
            pa.types.is_large_binary(kind) else np.int32
        width = np.dtype(offsets_type).itemsize
        offsets = np.frombuffer(filled.buffers()[1], dtype=offsets_type,
                                count=len(filled) + 1, offset=filled.offset * width)
        values.update(np.diff(offsets).astype(np.int64).tobytes())
        buffer = filled.buffers()[2]
        if buffer is not None:
            data.update(memoryview(buffer)[int(offsets[0]):int(offsets[-1])])
    elif pa.types.is_boolean(kind):
        values.update(array.fill_null(False).to_numpy(zero_copy_only=False).view(np.uint8).tobytes())
    elif kind.bit_width and kind.bit_width % 8 == 0 and not pa.types.is_nested(kind):
        width = kind.bit_width // 8
        raw = np.frombuffer(array.buffers()[1], dtype=f"u{width}" if width in (1, 2, 4, 8)
                            else "u1", count=len(array) * (1 if width in (1, 2, 4, 8) else width),
                            offset=array.offset * width).copy()
        if array.null_count and width in (1, 2, 4, 8):
            raw[~valid] = 0  # null slots hold arbitrary bytes
        values.update(raw.tobytes())
    else:  # nested and other rare types: hash their canonical text form
        values.update(str(array.to_pylist()).encode())


def _validity(array: pa.Array) -> np.ndarray:
    import numpy as np

    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    return array.is_valid().to_numpy(zero_copy_only=False)
