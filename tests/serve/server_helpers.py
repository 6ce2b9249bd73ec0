"""Helpers for tests of the real server: a workspace to serve, `loopml serve` as a subprocess,
and a small asyncio load generator.

A plain module (not conftest.py): test files import it by name (``from server_helpers import
…``), which a conftest cannot be reliably.

The load generator speaks HTTP/1.1 over raw ``asyncio.open_connection`` sockets with
keep-alive, one connection per concurrent client, and runs its event loop in a thread of the
test process: the server is another process, so the two share the machine's cores but not a
GIL, and the client does little more than write a prepared request and read the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from loopml.workspace import Workspace

# ----------------------------------------------------------------------------- workspace


def credit_workspace(root: Path, *, versions: int = 2, rows: int = 600) -> Path:
    """Return the home of a workspace in ``root`` holding ``versions`` versions of ``credit``.

    Each version is a small logistic regression on the same generated credit data and the
    same input columns (trained with a different seed), so a request valid for one is valid
    for all; ``credit@champion`` points at version 1.
    """
    from loopml.config import ProjectConfig
    from loopml.demo_data import make_credit
    from loopml.train.runner import train_project

    root.mkdir(parents=True, exist_ok=True)
    source = root / "credit.csv"
    make_credit(rows, seed=3).to_csv(source, index=False)
    workspace = Workspace.from_env(root / "home", env={})
    for version in range(versions):
        config = ProjectConfig.model_validate({
            "project": {"name": "credit"},
            "data": {"dataset": "credit", "source": str(source), "target": "default",
                     "sensitive": ["gender"], "pii": {"email": "hash"}},
            "train": {"candidates": ["logistic"], "trials": 1, "n_jobs": 1,
                      "seed": 5 + version, "cv_folds": 3},
        })
        train_project(config, workspace=workspace, project_dir=root)
    move_champion(workspace.home, 1, expected=None)
    return workspace.home


def move_champion(home: Path, version: int, *, expected: int | None) -> None:
    """Point ``credit@champion`` at ``version`` (forced when it already points elsewhere)."""
    from loopml.registry.registry import Registry

    workspace = Workspace.from_env(home, env={})
    with Registry.open(workspace) as registry:
        registry.models.move_alias("credit", "champion", version, expected=expected,
                                   actor="tests", reason="server load test",
                                   outcome="moved" if expected is None else "forced")


def input_columns(home: Path, ref: str = "credit@1") -> list[dict[str, Any]]:
    """Return the input columns of ``ref``'s signature (name, kind, min/max, allowed)."""
    from loopml.registry.registry import Registry

    with Registry.open(Workspace.from_env(home, env={})) as registry:
        return list(registry.get(ref).signature["inputs"])


def valid_records(columns: list[dict[str, Any]], count: int, *, seed: int = 0
                  ) -> list[dict[str, Any]]:
    """Return ``count`` records every column of which is within its signature's range.

    >>> valid_records([{"name": "age", "kind": "number", "type": "integer", "min": 18,
    ...                 "max": 18}], 1)
    [{'age': 18}]
    """
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        record: dict[str, Any] = {}
        for column in columns:
            if column.get("allowed"):
                record[column["name"]] = rng.choice(column["allowed"])
            elif column.get("type") == "integer":
                record[column["name"]] = rng.randint(int(column.get("min", 0)),
                                                     int(column.get("max", 100)))
            else:
                low, high = float(column.get("min", 0.0)), float(column.get("max", 1.0))
                record[column["name"]] = round(rng.uniform(low, high), 2)
        out.append(record)
    return out


# ----------------------------------------------------------------------------- the server


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running ``python -m loopml serve`` process and where it answers."""

    process: subprocess.Popen[bytes]
    port: int
    output: Path  # its stdout and stderr
    _file: IO[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, *, timeout: float = 30.0) -> int:
        """Send ``sig`` and return the exit code once the process has ended."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()  # a server that ignores SIGTERM must not outlive the test
            self.process.wait(10)
            raise AssertionError(f"the server did not stop within {timeout} s of signal "
                                 f"{sig}:\n{self.log()}") from None
        finally:
            self._file.close()

    def log(self) -> str:
        """Return what the server wrote to stdout and stderr so far (its tail)."""
        return self.output.read_text(errors="replace")[-4000:]


def start_server(home: Path, ref: str, *, log_dir: Path, args: tuple[str, ...] = (),
                 ready_timeout: float = 90.0) -> Server:
    """Return a server for ``ref`` started from ``home`` on a free port, once /readyz says so.

    The process gets no LOOPML_* setting from the test's environment, the way a user's shell
    would start it. A server that exits or is not ready in time fails the test with its output.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["PYTHONUNBUFFERED"] = "1"
    output = log_dir.parent / f"server-{log_dir.name}.out"
    output.parent.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for _ in range(3):  # another process may take the free port before the server binds it
        port = free_port()
        file = output.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "loopml", "serve", ref, "--home", str(home),
             "--port", str(port), "--log-dir", str(log_dir), *args],
            env=env, stdout=file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = Server(process, port, output, file)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline and process.poll() is None:
            if _ready(port):
                return server
            time.sleep(0.1)
        last_error = server.log()
        if process.poll() is None:
            server.stop(signal.SIGKILL)
            raise AssertionError(f"the server was not ready within {ready_timeout} s:\n"
                                 f"{last_error}")
        file.close()
        if "address already in use" not in last_error.lower():
            break
    raise AssertionError(f"the server exited before it was ready:\n{last_error}")


def _ready(port: int) -> bool:
    try:
        status, body = http_request("GET", port, "/readyz", timeout=2.0)
    except OSError:
        return False
    return status == 200 and bool(json.loads(body).get("ready"))


def http_request(method: str, port: int, path: str, body: bytes | None = None, *,
                 headers: dict[str, str] | None = None, timeout: float = 10.0
                 ) -> tuple[int, bytes]:
    """Return ``(status, body)`` of one plain HTTP/1.1 request to loopback (no redirects)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body,
                     headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ----------------------------------------------------------------------------- load


@dataclass(frozen=True)
class Reply:
    """One answered request: its status, and the id and version the server answered with."""

    status: int
    request_id: str | None
    version: int | None
    rows: int
    error: str | None = None  # the body's "error" of a refusal


@dataclass
class LoadResult:
    """What the clients saw: every reply, the requests cut off, the connections refused."""

    replies: list[Reply] = field(default_factory=list)
    # Requests fully written to an open connection whose answer never came (a server killed
    # mid-request): the server may have logged them. Keyed by the X-Request-ID they carried.
    in_flight: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # why connections or requests failed
    seconds: float = 0.0


class LoadGenerator:
    """``connections`` keep-alive clients POSTing ``bodies`` in turn until stopped or timed out.

    >>> load = LoadGenerator(port, "/v1/models/credit/predict", bodies).start()  # doctest: +SKIP
    >>> result = load.join()                                                    # doctest: +SKIP
    """

    def __init__(self, port: int, path: str, bodies: list[bytes], *, connections: int = 64,
                 seconds: float = 60.0, request_timeout: float = 30.0) -> None:
        self.port = port
        self.path = path
        self.bodies = bodies
        self.connections = connections
        self.seconds = seconds
        self.request_timeout = request_timeout
        self.result = LoadResult()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counter = 0

    def start(self) -> LoadGenerator:
        """Start the clients in a background thread; return self."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()),
                                        name="load-generator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask every client to stop after its current request."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> LoadResult:
        """Return the result once every client has stopped (at most ``timeout`` seconds)."""
        assert self._thread is not None, "start() first"
        limit = self.seconds + self.request_timeout + 30 if timeout is None else timeout
        self._thread.join(limit)
        if self._thread.is_alive():
            self.stop()
            raise AssertionError(f"the load generator did not stop within {limit} s")
        return self.result

    def replies_so_far(self) -> int:
        return len(self.result.replies)

    async def _main(self) -> None:
        started = time.monotonic()
        deadline = started + self.seconds
        await asyncio.gather(*(self._client(i, deadline) for i in range(self.connections)))
        self.result.seconds = time.monotonic() - started

    def _request(self, index: int) -> tuple[bytes, str]:
        self._counter += 1
        client_id = f"load-{self._counter:08d}"
        body = self.bodies[index % len(self.bodies)]
        head = (f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"X-Request-ID: {client_id}\r\n\r\n")
        return head.encode("ascii") + body, client_id

    async def _client(self, number: int, deadline: float) -> None:
        writer: asyncio.StreamWriter | None = None
        reader: asyncio.StreamReader | None = None
        index = number
        try:
            while time.monotonic() < deadline and not self._stop.is_set():
                if writer is None:
                    try:
                        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    except OSError as exc:
                        self.result.failures.append(f"connect: {exc!r}")
                        await asyncio.sleep(0.05)
                        continue
                assert reader is not None
                request, client_id = self._request(index)
                index += self.connections
                sent = False
                try:
                    writer.write(request)
                    await writer.drain()
                    sent = True
                    reply = await asyncio.wait_for(_read_reply(reader), self.request_timeout)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    if sent:
                        self.result.in_flight.append(client_id)
                    self.result.failures.append(f"request: {exc!r}")
                    writer.close()
                    writer = None
                    continue
                self.result.replies.append(reply)
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                    await writer.wait_closed()


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    """Return the next HTTP/1.1 response on ``reader`` (Content-Length bodies only)."""
    status_line = await reader.readline()
    if not status_line:
        raise asyncio.IncompleteReadError(b"", None)
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length)
    data = json.loads(body) if body else {}
    if status != 200:
        return Reply(status, None, None, 0, str(data.get("error")))
    return Reply(status, data.get("request_id"), data.get("version"),
                 len(data.get("predictions", [])))
