"""The FastAPI app behind `loopml serve`: one registered model, validated, batched, logged.

Routes:

- ``POST /v1/models/{name}/predict`` (``?explain=true`` adds TreeSHAP contributions per input
  column) and ``POST /v1/models/{name}/feedback`` (ground truth by request id);
- the Open Inference Protocol V2: ``/v2/health/live|ready``, ``/v2/models/{name}[/ready]``,
  ``/v2/models/{name}[/versions/{v}]/infer`` (JSON tensors, and the binary tensor extension
  tritonclient uses by default);
- ``/healthz``, ``/readyz``, ``/metrics`` (Prometheus), ``POST /v1/admin/reload``, OpenAPI docs.

Every refusal is a 4xx with ``{"error": "…"}`` naming the field; the model's own failure is a
500 with no detail leaked. HTTP codes are chosen here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import numpy as np
from fastapi import Request  # at module level: FastAPI reads the string annotations here
from fastapi.responses import JSONResponse, Response

from loopml.errors import InvalidInput, LoopmlError, NotFound, StoreError
from loopml.serve.batching import QueueFull
from loopml.serve.inputs import RequestError, check_text, parse_rows
from loopml.serve.metrics import observe

# This module is imported only to serve, so what every request uses is imported once here.

if TYPE_CHECKING:
    from fastapi import FastAPI

    from loopml.serve.live import Answer, LiveModel, Served
    from loopml.workspace import Workspace

V1_BODY = {"oneOf": [
    {"type": "array", "items": {"type": "object"}, "description": "records: one object a row"},
    {"type": "object", "description": "columns: {column: [values]}, or {\"records\": [...]}"},
]}


@dataclass(frozen=True)
class ServeSettings:
    """How one server runs; built once by the CLI (or a test) and passed down."""

    ref: str
    max_batch_size: int = 256
    max_latency_ms: float = 0.0
    max_queue_rows: int = 20_000
    max_rows: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    poll_seconds: float = 2.0
    flavour: str | None = None
    auth: bool = False
    log_dir: str | None = None  # None: <workspace home>/predictions


def create_app(settings: ServeSettings, *, workspace: Workspace) -> FastPath:
    """Return the ASGI app serving ``settings.ref`` from ``workspace`` (loaded at start-up)."""
    from fastapi import FastAPI

    from loopml.serve.live import LiveModel
    from loopml.serve.metrics import ServerMetrics

    live = LiveModel(workspace, settings.ref, flavour=settings.flavour)
    metrics = ServerMetrics()
    state = _State(settings, workspace, live, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202 - FastAPI's own protocol
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(title="loopml serve", version="1",
                  description=f"Predictions of the registered model {settings.ref}.",
                  lifespan=lifespan)
    app.state.loopml = state
    _routes(app, state)
    return FastPath(app, state)


_LOG = logging.getLogger("loopml.serve")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_PREDICT = re.compile(r"/v1/models/([^/]+)/predict")


def request_id_of(given: Any) -> str:
    """Return the client's request id when it is a plain token (≤ 128 characters), else a new one.

    >>> request_id_of("order-17"), len(request_id_of("two words"))
    ('order-17', 32)
    """
    if isinstance(given, str) and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex
_INFER = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")


class FastPath:
    """The ASGI app: the two hot routes straight to their handlers, the rest to FastAPI.

    FastAPI's per-request machinery (dependency solving, exit stacks, query models) cost about
    half the CPU of a one-row prediction here; predict and infer skip it and keep the same
    handlers, errors and metrics. Their FastAPI routes stay for the OpenAPI docs (and answer
    the same way when reached).
    """

    def __init__(self, app: FastAPI, state: _State) -> None:
        self.app = app
        self.state = app.state
        self._handlers = state.fast

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            found = _PREDICT.fullmatch(path)
            if found is not None:
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                explain = query.get("explain", ["false"])[-1].lower() in ("true", "1", "yes")
                response = await self._handlers["predict"](
                    found.group(1), Request(scope, receive), explain)
                await response(scope, receive, send)
                return
            found = _INFER.fullmatch(path)
            if found is not None:
                response = await self._handlers["infer"](
                    found.group(1), Request(scope, receive), found.group(2))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _State:
    """What the routes share: the live model, the batcher, the log, auth and metrics."""

    def __init__(self, settings: ServeSettings, workspace: Workspace, live: LiveModel,
                 metrics: Any) -> None:
        self.settings = settings
        self.workspace = workspace
        self.live = live
        self.metrics = metrics
        self.batcher: Any = None
        self.log: Any = None
        self.feedback: Any = None
        self.auth: Any = None
        self.fast: dict[str, Any] = {}  # the hot routes' handlers, for FastPath
        self._poller: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.live.name

    async def start(self) -> None:
        from loopml.serve.batching import MicroBatcher

        await asyncio.to_thread(self.live.refresh)
        self.metrics.version.labels(self.name).set(self.live.current.version)
        self.log, self.feedback = _open_logs(self.settings, self.workspace)
        self.auth = _authenticator(self.settings, self.workspace)
        self.batcher = MicroBatcher(self.run_batch, max_batch_size=self.settings.max_batch_size,
                                    max_latency_ms=self.settings.max_latency_ms,
                                    max_queue_rows=self.settings.max_queue_rows,
                                    on_batch=self.metrics.on_batch)
        await self.batcher.start()
        if self.live.follows_alias and self.settings.poll_seconds > 0:
            self._poller = asyncio.create_task(self._poll(), name="loopml-alias-poll")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.batcher is not None:
            await self.batcher.stop()
        for log in (self.log, self.feedback):
            if log is not None:
                await asyncio.to_thread(log.close)

    async def _poll(self) -> None:
        """Follow the alias: load the version it points at when it moves (hot swap)."""
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            try:
                if await asyncio.to_thread(self.live.refresh):
                    self.metrics.version.labels(self.name).set(self.live.current.version)
            except Exception:  # keep serving the loaded one, and keep polling
                _LOG.exception("reloading %s failed", self.live.name)
                self.metrics.errors.labels("reload").inc()

    def run_batch(self, jobs: list[Any]) -> list[tuple[Answer, Served]]:
        """Run ``jobs`` (in a worker thread): one model call per version; each job's slice.

        A job runs on the version its rows were checked against, so a hot swap between
        checking and running never feeds a model rows of another signature.
        """
        groups: dict[int, list[int]] = {}
        for index, job in enumerate(jobs):
            groups.setdefault(id(job.model), []).append(index)
        out: list[Any] = [None] * len(jobs)
        for indices in groups.values():
            for index, result in zip(indices, self._run_one(
                    [jobs[i] for i in indices]), strict=True):
                out[index] = result
        return out

    def _run_one(self, jobs: list[Any]) -> list[tuple[Answer, Served]]:
        from loopml.serve.live import Answer

        served = jobs[0].model or self.live.current
        if len(jobs) == 1:
            arrays, raw = jobs[0].arrays, jobs[0].raw
        else:
            arrays = {name: np.concatenate([job.arrays[name] for job in jobs])
                      for name in jobs[0].arrays}
            raw = {name: [v for job in jobs for v in job.raw[name]] for name in jobs[0].raw}
        answer = served.predict(arrays, raw)
        out, start = [], 0
        for job in jobs:
            stop = start + job.rows
            proba = None if answer.probabilities is None else answer.probabilities[start:stop]
            out.append((Answer(answer.predictions[start:stop], proba), served))
            start = stop
        return out


def _open_logs(settings: ServeSettings, workspace: Workspace) -> tuple[Any, Any]:
    from pathlib import Path

    try:
        from loopml.serve.predlog import PredictionLog
    except ImportError:  # pragma: no cover - the log module ships with loopml
        return None, None
    folder = Path(settings.log_dir) if settings.log_dir else workspace.home / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    return (PredictionLog(folder, kind="predictions").start(),
            PredictionLog(folder, kind="feedback").start())


def _authenticator(settings: ServeSettings, workspace: Workspace) -> Any:
    if not settings.auth:
        return None
    from loopml.serve.auth import Authenticator

    store, _ = workspace.open(create=False)
    return Authenticator(store, enabled=True)


# --- routes ------------------------------------------------------------------------------


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _body(request: Request, limit: int) -> Any:
    """Return the request's JSON, refusing a body over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"the body is {int(declared):,} bytes; at most {limit:,}", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"the body is over {limit:,} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise RequestError("the body is not valid JSON", status=400) from None


def _routes(app: FastAPI, state: _State) -> None:
    settings = state.settings

    def check_name(name: str) -> None:
        if name != state.name:
            raise NotFound(f"no model {name!r} here; this server serves {state.name!r}")

    async def guard(request: Request, need: str) -> None:
        if state.auth is not None:  # a cache miss reads the store: off the event loop
            await asyncio.to_thread(state.auth.check, request.headers.get("authorization"),
                                    need=need)

    async def answer(route: str, request: Request, work: Any) -> Any:
        """Run ``work``; map loopml's errors to status codes; count and time every answer."""
        started = time.perf_counter()
        status, kind = 200, None
        try:
            response = await work()
            status = getattr(response, "status_code", 200)
            return response
        except RequestError as exc:
            status, kind = exc.status, "invalid"
            return _error(exc.status, str(exc))
        except QueueFull as exc:
            status, kind = 503, "queue_full"
            return _error(503, str(exc), {"Retry-After": "1"})
        except NotFound as exc:
            status, kind = 404, "not_found"
            return _error(404, str(exc))
        except InvalidInput as exc:
            status, kind = 422, "invalid"
            return _error(422, str(exc))
        except LoopmlError as exc:
            mapped = getattr(exc, "status", None)
            if mapped in (401, 403, 503):
                status, kind = mapped, "auth" if mapped != 503 else "busy"
                headers = getattr(exc, "headers", None) or \
                    ({"Retry-After": "1"} if mapped == 503 else None)
                return _error(mapped, str(exc), headers)
            if isinstance(exc, StoreError):  # the metadata store is down: try again later
                status, kind = 503, "store"
                return _error(503, "the metadata store is unavailable; retry shortly",
                              {"Retry-After": "5"})
            status, kind = 500, "model"
            _LOG.error("%s: the model failed: %s", route, type(exc).__name__)
            return _error(500, "the model failed to answer; see the server log")
        except Exception:  # a bug: answer 500 without leaking anything of the request
            status, kind = 500, "internal"
            _LOG.exception("%s failed", route)  # the traceback, never the request's values
            return _error(500, "internal error; see the server log")
        finally:
            observe(state.metrics, route, status, time.perf_counter() - started, kind)

    # -- v1 ---------------------------------------------------------------------------------

    async def predict_rows(name: str, request: Request, explain: bool) -> Any:
        async def work() -> Any:
            await guard(request, "predict")
            check_name(name)
            started = time.perf_counter()
            data = await _body(request, settings.max_body_bytes)
            served_now = state.live.current
            arrays, rows, raw = await _parsed(data, served_now, settings.max_rows)
            _log_has_room(state, rows)
            result, served = await state.batcher.submit(arrays, raw, rows, model=served_now)
            request_id = request_id_of(request.headers.get("x-request-id"))
            out: dict[str, Any] = {"request_id": request_id, "model": state.name,
                                   "version": served.version, "flavour": served.flavour,
                                   "predictions": _plain(result.predictions)}
            if result.probabilities is not None:
                out["classes"] = _plain(served.classes)
                out["probabilities"] = result.probabilities.round(9).tolist()
            if explain:
                native = await asyncio.to_thread(state.live.native, served)
                contributions = None if native is None else await asyncio.to_thread(
                    served.contributions, raw, arrays, native)
                out["contributions"] = contributions
            latency_ms = (time.perf_counter() - started) * 1000
            if not _log(state, request_id, served, raw, result, latency_ms):
                raise _Busy("the prediction log is full; retry shortly")
            return JSONResponse(out, headers={"X-Request-ID": request_id})
        return await answer("predict", request, work)

    @app.post("/v1/models/{name}/predict", openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": V1_BODY}}}})
    async def predict(name: str, request: Request, explain: bool = False) -> Any:
        """Predict rows given as records or columns; ``?explain=true`` adds contributions."""
        return await predict_rows(name, request, explain)

    state.fast["predict"] = predict_rows

    @app.post("/v1/models/{name}/feedback", status_code=202, openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["request_id"],
            "properties": {"request_id": {"type": "string"}, "labels": {"type": "array"},
                           "label": {}}}}}}})
    async def feedback(name: str, request: Request) -> Any:
        """Take ground-truth labels for an earlier request (one per row, in its row order)."""
        async def work() -> Any:
            await guard(request, "predict")
            check_name(name)
            body = _json(await _body(request, settings.max_body_bytes))
            records = _feedback_records(body, max_rows=settings.max_rows)
            if state.feedback is not None and not state.feedback.write(records):
                state.metrics.log_dropped.inc(len(records))
                raise _Busy("the feedback log is full; retry shortly")
            return JSONResponse({"accepted": len(records)}, status_code=202)
        return await answer("feedback", request, work)

    @app.post("/v1/admin/reload")
    async def reload(request: Request) -> Any:
        """Load the version the alias points at now (the server also polls for it)."""
        async def work() -> Any:
            await guard(request, "admin")
            changed = await asyncio.to_thread(state.live.refresh)
            state.metrics.version.labels(state.name).set(state.live.current.version)
            return JSONResponse({"version": state.live.current.version, "changed": changed})
        return await answer("reload", request, work)

    # -- health and metrics -----------------------------------------------------------------

    @app.get("/healthz")
    async def healthz() -> Any:
        return {"live": True}

    @app.get("/readyz")
    async def readyz() -> Any:
        served = state.live.current
        if served is None:
            return _error(503, "the model is loading")
        return {"ready": True, "model": state.name, "version": served.version}

    @app.get("/metrics")
    async def metrics(request: Request) -> Any:
        async def work() -> Any:
            await guard(request, "admin")
            text, content_type = state.metrics.render()
            return Response(text, media_type=content_type)
        return await answer("metrics", request, work)

    # -- Open Inference Protocol V2 ---------------------------------------------------------

    from loopml.serve import v2

    v2.add_routes(app, state, answer=answer, guard=guard, check_name=check_name)


class _Busy(LoopmlError):
    status = 503


def _plain(values: list[Any]) -> list[Any]:
    """Return JSON-ready values (numpy scalars become Python numbers)."""
    return [v.item() if hasattr(v, "item") else v for v in values]


def _feedback_records(body: Any, *, max_rows: int) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("request_id"), str) \
            or not _REQUEST_ID.fullmatch(body["request_id"]):
        raise RequestError("feedback needs {\"request_id\": \"…\", \"labels\": [one per row]} "
                           "or {\"request_id\": \"…\", \"label\": value}")
    if "labels" in body:
        labels = body["labels"]
        if not isinstance(labels, list) or not labels:
            raise RequestError("labels: expected a non-empty list, one label per row")
        if len(labels) > max_rows:
            raise RequestError(f"{len(labels)} labels; at most {max_rows} (one per row of a "
                               "request)", status=413)
        rows: list[int | None] = list(range(len(labels)))
    elif "label" in body:
        labels, rows = [body["label"]], [None]
    else:
        raise RequestError("feedback needs labels (one per row) or label")
    for label in labels:
        if isinstance(label, dict | list):
            raise RequestError("a label must be a number, text or true/false")
        if isinstance(label, str):
            check_text(label, "label")
        if isinstance(label, float) and (label != label or label in (math.inf, -math.inf)):
            raise RequestError("a label must be a finite number, text or true/false")
    now = datetime.now(UTC)
    return [{"request_id": body["request_id"], "row": row, "ts": now, "label": label}
            for row, label in zip(rows, labels, strict=True)]


PARSE_INLINE_BYTES = 64 * 1024  # larger bodies are parsed in a thread: the loop keeps serving


async def _parsed(data: bytes, served: Served, max_rows: int) -> tuple[Any, int, Any]:
    """Return the checked rows of a request body (parsed off the event loop when large)."""
    def parse() -> tuple[Any, int, Any]:
        return parse_rows(_json(data), served.columns, max_rows=max_rows)

    return parse() if len(data) <= PARSE_INLINE_BYTES else await asyncio.to_thread(parse)


def _log_has_room(state: _State, rows: int) -> None:
    """Refuse (503) before predicting when the log could not take the answer."""
    log = state.log
    if log is not None and getattr(log, "queued", 0) + rows > getattr(log, "queue_rows", 1 << 62):
        raise _Busy("the prediction log is behind; retry shortly")


def _log(state: _State, request_id: str, served: Served, raw: dict[str, list[Any]],
         result: Answer, latency_ms: float) -> bool:
    """Hand the request's rows to the prediction log (a queue: never waits); False if full."""
    if state.log is None:
        return True
    now = datetime.now(UTC)
    names = list(raw)
    probabilities = result.probabilities
    # Plain values only: the log's writer thread turns them into JSON, off the request path.
    records = [{"request_id": request_id, "row": row, "ts": now, "model": state.name,
                "version": served.version, "flavour": served.flavour, "latency_ms": latency_ms,
                "prediction": prediction,
                "probabilities": None if probabilities is None else probabilities[row],
                "inputs": {name: raw[name][row] for name in names}}
               for row, prediction in enumerate(result.predictions)]
    if not state.log.write(records):
        state.metrics.log_dropped.inc(len(records))
        return False
    return True


SETTINGS_ENV = "LOOPML_SERVE_SETTINGS"


def app_from_env() -> FastPath:
    """Return the app described by ``LOOPML_SERVE_SETTINGS`` (JSON): each uvicorn worker's."""
    import os
    from dataclasses import fields

    from loopml.workspace import Workspace

    data = json.loads(os.environ[SETTINGS_ENV])
    known = {f.name for f in fields(ServeSettings)}
    settings = ServeSettings(**{k: v for k, v in data.items() if k in known})
    return create_app(settings, workspace=Workspace.from_env(data.get("home")))
