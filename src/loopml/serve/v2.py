"""The Open Inference Protocol (V2, KServe / Triton) over the same model, batcher and log.

Each model input column is one V2 input named after the column, shape ``[N]`` or ``[N, 1]``:
numbers as ``FP64``/``FP32``/``INT*``/``BOOL``, categories and date-times as ``BYTES`` (UTF-8;
date-times ISO 8601, or ``FP64`` seconds since 1970 UTC). Outputs: ``label`` ``[N]`` and
``probabilities`` ``[N, n_classes]`` (``FP64``) for classifiers, ``value`` ``[N]`` for
regression. Tensors come as JSON ``data`` or in the binary tensor data extension that
``tritonclient`` uses by default (``Inference-Header-Content-Length``); answers are JSON.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import Request  # at module level: FastAPI reads the string annotations here

from loopml.errors import NotFound
from loopml.serve.inputs import RequestError

if TYPE_CHECKING:
    from fastapi import FastAPI

HEADER_LENGTH = "inference-header-content-length"
NUMPY_TYPES = {"BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
               "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2",
               "FP32": "<f4", "FP64": "<f8"}
KIND_TYPES = {"number": "FP64", "category": "BYTES", "datetime": "BYTES"}


def parse_infer(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """Return the JSON part of an infer request and its binary tail (empty without one)."""
    if header_length is None:
        head, tail = body, b""
    else:
        if not (header_length.isascii() and header_length.isdigit()) \
                or int(header_length) > len(body):
            raise RequestError("Inference-Header-Content-Length does not fit the body", status=400)
        head, tail = body[:int(header_length)], body[int(header_length):]
    try:
        request = json.loads(head)
    except (ValueError, RecursionError):
        raise RequestError("the inference request is not valid JSON", status=400) from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise RequestError("an inference request needs \"inputs\": [{name, shape, datatype, "
                           "data}, …]")
    return request, tail


def tensor_values(tensor: Any, tail: bytes, offset: int) -> tuple[list[Any], int, int]:
    """Return ``(flat values, rows, next binary offset)`` of one request input."""
    import numpy as np

    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise RequestError("each input needs a name, a shape, a datatype and data")
    name, datatype, shape = tensor["name"], tensor.get("datatype"), tensor.get("shape")
    if not isinstance(datatype, str):
        raise RequestError(f"input {name!r}: datatype must be text such as FP64 or BYTES")
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError(f"input {name!r}: parameters must be an object")
    if not isinstance(shape, list) or not shape or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise RequestError(f"input {name!r}: shape must be a list of whole numbers, e.g. [N, 1]")
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise RequestError(f"input {name!r}: shape {shape}: expected [N] or [N, 1] (one value "
                           "per row)")
    rows = shape[0]
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(tail):
            raise RequestError(f"input {name!r}: binary_data_size does not fit the body",
                               status=400)
        chunk = tail[offset:offset + size]
        offset += size
        if datatype == "BYTES":
            values = _bytes_elements(chunk, name)
        elif datatype in NUMPY_TYPES:
            width = np.dtype(NUMPY_TYPES[datatype]).itemsize
            if len(chunk) % width:
                raise RequestError(f"input {name!r}: {len(chunk)} bytes is not a whole number of "
                                   f"{datatype} values", status=400)
            values = np.frombuffer(chunk, dtype=NUMPY_TYPES[datatype]).tolist()
        else:
            raise RequestError(f"input {name!r}: datatype {datatype!r} is not supported")
    else:
        values = _flatten(tensor.get("data"), name)
        if datatype == "BYTES":
            values = [v if isinstance(v, str) else None if v is None else _not_text(name)
                      for v in values]
        elif datatype not in NUMPY_TYPES:
            raise RequestError(f"input {name!r}: datatype {datatype!r} is not one of "
                               f"{', '.join([*NUMPY_TYPES, 'BYTES'])}")
    if len(values) != rows:
        raise RequestError(f"input {name!r}: shape {shape} says {rows} values, the data holds "
                           f"{len(values)}")
    return values, rows, offset


def _not_text(name: str) -> str:
    raise RequestError(f"input {name!r}: BYTES data must be text")


def _bytes_elements(chunk: bytes, name: str) -> list[Any]:
    """Return the strings of a binary BYTES tensor: each a 4-byte little-endian length + bytes."""
    values, at = [], 0
    while at < len(chunk):
        if at + 4 > len(chunk):
            raise RequestError(f"input {name!r}: a BYTES element is cut short", status=400)
        (length,) = struct.unpack_from("<I", chunk, at)
        at += 4
        if at + length > len(chunk):
            raise RequestError(f"input {name!r}: a BYTES element is cut short", status=400)
        try:
            values.append(chunk[at:at + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise RequestError(f"input {name!r}: BYTES data must be UTF-8 text") from None
        at += length
    return values


def _flatten(data: Any, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise RequestError(f"input {name!r}: data must be a list")
    out: list[Any] = []
    for item in data:
        if isinstance(item, list):
            out.extend(_flatten(item, name))
        else:
            out.append(item)
    return out


def _output(name: str, values: Any, datatype: str, shape: list[int]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": values}


def _label_type(classes: list[Any]) -> str:
    if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "INT64"
    if classes and all(isinstance(c, int | float) and not isinstance(c, bool) for c in classes):
        return "FP64"
    return "BYTES"


def add_routes(app: FastAPI, state: Any, *, answer: Callable[..., Any],
               guard: Callable[..., Any], check_name: Callable[[str], None]) -> None:
    """Add the V2 routes to ``app``, sharing the v1 routes' state and error mapping."""
    from fastapi.responses import JSONResponse

    from loopml import __version__

    def check_version(version: str | None) -> None:
        live = state.live.current.version
        if version is not None and version != str(live):
            raise NotFound(f"version {version!r} of {state.name!r} is not being served "
                           f"(live: {live})")

    def metadata() -> dict[str, Any]:
        served = state.live.current
        inputs = [{"name": c.name, "datatype": KIND_TYPES[c.kind], "shape": [-1, 1]}
                  for c in served.columns]
        if served.task == "regression":
            outputs = [{"name": "value", "datatype": "FP64", "shape": [-1]}]
        else:
            outputs = [{"name": "label", "datatype": _label_type(served.classes),
                        "shape": [-1]},
                       {"name": "probabilities", "datatype": "FP64",
                        "shape": [-1, len(served.classes)]}]
        return {"name": state.name, "versions": [str(served.version)],
                "platform": f"loopml-{served.flavour}", "inputs": inputs, "outputs": outputs}

    @app.get("/v2")
    async def server_metadata() -> Any:
        return {"name": "loopml", "version": __version__,
                "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/live")
    async def live() -> Any:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> Any:
        return {"ready": state.live.current is not None}

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def model_metadata(name: str, request: Request, version: str | None = None) -> Any:
        async def work() -> Any:
            await guard(request, "predict")
            check_name(name)
            check_version(version)
            return JSONResponse(metadata())
        return await answer("v2_metadata", request, work)

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_ready(name: str, request: Request, version: str | None = None) -> Any:
        async def work() -> Any:
            check_name(name)
            check_version(version)
            return JSONResponse({"name": name, "ready": True})
        return await answer("v2_ready", request, work)

    body_schema = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"}, "inputs": {"type": "array", "items": {
                "type": "object", "required": ["name", "shape", "datatype"], "properties": {
                    "name": {"type": "string"}, "shape": {"type": "array",
                                                          "items": {"type": "integer"}},
                    "datatype": {"type": "string"}, "data": {"type": "array"}}}},
            "outputs": {"type": "array", "items": {"type": "object"}}}}}}}}

    async def infer_tensors(name: str, request: Request, version: str | None) -> Any:
        async def work() -> Any:
            from loopml.serve.app import (
                PARSE_INLINE_BYTES,
                _body,
                _Busy,
                _log,
                _log_has_room,
                _plain,
                request_id_of,
            )
            from loopml.serve.inputs import parse_rows

            await guard(request, "predict")
            check_name(name)
            check_version(version)
            raw_body = await _body(request, state.settings.max_body_bytes)
            served_now = state.live.current
            header = request.headers.get(HEADER_LENGTH)

            def parse() -> tuple[dict[str, Any], Any, int, Any]:
                payload, tail = parse_infer(raw_body, header)
                columns, offset = {}, 0
                for tensor in payload["inputs"]:
                    values, _, offset = tensor_values(tensor, tail, offset)
                    if tensor["name"] in columns:
                        raise RequestError(f"input {tensor['name']!r} is given twice")
                    columns[tensor["name"]] = values
                return (payload, *parse_rows(columns, served_now.columns,
                                             max_rows=state.settings.max_rows))

            payload, arrays, rows, raw = parse() if len(raw_body) <= PARSE_INLINE_BYTES \
                else await asyncio.to_thread(parse)
            _log_has_room(state, rows)
            import time

            started = time.perf_counter()
            result, served = await state.batcher.submit(arrays, raw, rows, model=served_now)
            request_id = request_id_of(payload.get("id"))
            if served.task == "regression":
                outputs = [_output("value", _plain(result.predictions), "FP64", [rows])]
            else:
                outputs = [_output("label", _plain(result.predictions),
                                   _label_type(served.classes), [rows]),
                           _output("probabilities", result.probabilities.reshape(-1).tolist(),
                                   "FP64", [rows, len(served.classes)])]
            wanted = payload.get("outputs")
            if isinstance(wanted, list) and wanted:
                if not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                           for o in wanted):
                    raise RequestError("each requested output needs a name (text)")
                names = {o["name"] for o in wanted}
                unknown = names - {o["name"] for o in outputs}
                if unknown:
                    shown = ", ".join(repr(str(n)) for n in sorted(map(str, unknown)))
                    offered = ", ".join(o["name"] for o in outputs)
                    raise RequestError(f"unknown output(s) {shown}; this model answers "
                                       f"{offered}")
                outputs = [o for o in outputs if o["name"] in names]
            if not _log(state, request_id, served, raw, result,
                        (time.perf_counter() - started) * 1000):
                raise _Busy("the prediction log is full; retry shortly")
            return JSONResponse({"model_name": state.name, "model_version": str(served.version),
                                 "id": request_id, "outputs": outputs})
        return await answer("v2_infer", request, work)

    @app.post("/v2/models/{name}/infer", openapi_extra=body_schema)
    @app.post("/v2/models/{name}/versions/{version}/infer", openapi_extra=body_schema)
    async def infer(name: str, request: Request, version: str | None = None) -> Any:
        return await infer_tensors(name, request, version)

    state.fast["infer"] = infer_tensors
