"""Serving benchmark (issue 9): loopml serve against the servers users would pick instead.

One model, one machine, one server process each, a real load generator on loopback:

- ``bare``: a Starlette endpoint that reads the body and returns a constant, on uvicorn (the
  HTTP floor: what Python, the event loop and the parser cost with no model at all);
- ``loopml``: ``loopml serve credit@1`` (ONNX flavour, micro-batching with the default
  ``--max-batch-size 256``), and ``loopml-mbs1``: the same with ``--max-batch-size 1``
  (one model call a request); ``loopml-native`` and ``loopml-native-mbs1``: the same pair with
  ``--flavour native`` (the sklearn pipeline, whose single-row call costs milliseconds, so
  micro-batching shows when the model, not HTTP, is the limit);
- ``mlflow``: ``mlflow models serve`` (``--env-manager local``, one worker) on the same fitted
  sklearn pipeline, saved with ``mlflow.sklearn.save_model(pyfunc_predict_fn="predict_proba")``;
- ``bentoml`` and ``bentoml-batch``: a BentoML 1.4 service (``bench/serve_peers/
  bento_service.py``, one worker) without and with ``@bentoml.api(batchable=True)``.

The model: a LightGBM pipeline with one-hot categoricals, trained by loopml (``train_project``,
candidates ``[lightgbm]``, ``features.categorical_encoding: onehot``) on the bundled credit data
(``loopml.demo_data.make_credit``, 20,000 rows, seed 7), registered as ``credit@1`` and exported
to ONNX. MLflow and BentoML get the same fitted sklearn pipeline
(``loopml.load_model(ref).pipeline``) as a joblib file and answer ``predict_proba``.

Load: ``wrk -t2 -cC -dD --latency`` (``-t1`` at C = 1) with a Lua script that POSTs one JSON row
(each server's own body shape) and reports requests/s, p50, p99 and non-2xx counts; each cell
runs after a warm-up of 2 s at the same concurrency. By default each server is pinned to CPU 0
and wrk to CPU 1 (``taskset``), so the load generator does not steal the server's core.

Targets (issue 9): at c=64 loopml ≥ 50 % of the floor's req/s with p99 ≤ 60 ms and no errors;
p50 ≤ 1 ms at c=1; micro-batching ≥ 10× the unbatched throughput at c=64.

Run: ``.venv/bin/python bench/serve.py`` (needs ``wrk``: ``apt-get install wrk``; MLflow from
``.venv-bench``; BentoML from its own venv, ``bench/out/venv-bentoml``). Results printed and
written to bench/out/serve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import machine, versions, write_report  # bench/common.py, beside this script

# bench/onnx.py sits beside this script: with this folder first on sys.path, "import onnx"
# (loopml's ONNX export) would find it.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
ROOT = HERE.parent
OUT = HERE / "out"
WORK = OUT / "serve"
OUT_FILE = OUT / "serve.json"
PEERS = HERE / "serve_peers"
ROWS, SEED, TARGET, NAME = 20_000, 7, "default", "credit"
SERVERS = ["bare", "loopml", "loopml-mbs1", "mlflow", "bentoml", "bentoml-batch",
           "loopml-native", "loopml-native-mbs1"]
# Diagnostics, run only when named: loopml's app without its prediction log.
EXTRA = ["loopml-nolog"]
DEFAULT_VENVS = {"loopml": ROOT / ".venv", "mlflow": ROOT / ".venv-bench",
                 "bentoml": OUT / "venv-bentoml"}


# --- the model ---------------------------------------------------------------------------

def prepare(home: Path) -> dict[str, Any]:
    """Train, register and export the model once; return its columns, one row and the paths."""
    meta_file = WORK / "model.json"
    if meta_file.exists():
        return json.loads(meta_file.read_text())
    import joblib

    from loopml.config import ProjectConfig
    from loopml.demo_data import make_credit
    from loopml.registry import load_model
    from loopml.registry.export import export_onnx
    from loopml.registry.registry import Registry
    from loopml.train.runner import train_project
    from loopml.workspace import Workspace

    shutil.rmtree(home, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    source = WORK / "credit.csv"
    make_credit(ROWS, seed=SEED).to_csv(source, index=False)
    workspace = Workspace.from_env(home, env={})
    config = ProjectConfig.model_validate({
        "project": {"name": NAME},
        "data": {"dataset": NAME, "source": str(source), "target": TARGET,
                 "pii": {"email": "drop"}},
        "features": {"categorical_encoding": "onehot"},
        "train": {"candidates": ["lightgbm"], "trials": 4, "n_jobs": 1, "seed": SEED},
        "models": {"name": NAME},
    })
    outcome = train_project(config, workspace=workspace, project_dir=ROOT)
    with Registry.open(workspace) as registry:
        export = export_onnx(registry, outcome.version)
        record = registry.get(outcome.version.ref)
    model = load_model(record.ref, workspace=workspace)
    columns = list(model.input_columns)
    # One LightGBM thread: each peer server gets one core, and a single row gains nothing
    # from a second thread (the ONNX flavour runs one intra-op thread too).
    joblib.dump(model.pipeline.set_params(model__n_jobs=1), WORK / "pipeline.joblib")
    row = make_credit(1, seed=SEED + 1)[columns].iloc[0].to_dict()
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    meta = {"ref": record.ref, "flavour": record.flavour, "columns": columns, "row": row,
            "home": str(home), "pipeline": str(WORK / "pipeline.joblib"),
            "export": str(getattr(export, "export", export))[:400]}
    meta_file.write_text(json.dumps(meta, indent=2, default=str))
    return meta


def peer_files(meta: dict[str, Any], venvs: dict[str, Path]) -> None:
    """Write the MLflow model folder from the pipeline file (in MLflow's own venv)."""
    target = WORK / "mlflow-model"
    if target.exists():
        return
    subprocess.run([str(venvs["mlflow"] / "bin" / "python"), str(PEERS / "mlflow_save.py"),
                    meta["pipeline"], str(target)], check=True, stderr=subprocess.DEVNULL)


# --- the servers -------------------------------------------------------------------------

@dataclass
class Server:
    """How to start one server and what to POST to it."""

    name: str
    command: list[str]
    path: str
    body: Any
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""  # set once the port is chosen


def servers(meta: dict[str, Any], venvs: dict[str, Path], port: int) -> dict[str, Server]:
    """Return every server of the benchmark, bound to ``port`` on loopback."""
    row = meta["row"]
    name = meta["ref"].split("@")[0]
    loopml = [str(venvs["loopml"] / "bin" / "loopml"), "serve", meta["ref"], "--port",
              str(port), "--home", meta["home"]]
    native = [*loopml, "--flavour", "native"]  # the sklearn pipeline the peers serve
    loopml = [*loopml, "--flavour", "onnx"]
    bento = [str(venvs["bentoml"] / "bin" / "bentoml"), "serve", "bento_service:Credit",
             "--working-dir", str(PEERS), "--port", str(port), "--host", "127.0.0.1"]
    bento_env = {"BENCH_PIPELINE": meta["pipeline"], "BENTOML_DO_NOT_TRACK": "True"}
    return {
        "bare": Server("bare", [str(venvs["loopml"] / "bin" / "python"), "-m", "uvicorn",
                                "bare:app", "--app-dir", str(PEERS), "--port", str(port),
                                "--log-level", "warning", "--no-access-log"],
                       "/predict", [row]),
        "loopml": Server("loopml", [*loopml, "--log-dir", str(WORK / "log-loopml")],
                         f"/v1/models/{name}/predict", [row]),
        "loopml-mbs1": Server("loopml-mbs1", [*loopml, "--log-dir", str(WORK / "log-mbs1"),
                                              "--max-batch-size", "1"],
                              f"/v1/models/{name}/predict", [row]),
        "loopml-native": Server("loopml-native",
                                [*native, "--log-dir", str(WORK / "log-native")],
                                f"/v1/models/{name}/predict", [row]),
        "loopml-native-mbs1": Server("loopml-native-mbs1",
                                     [*native, "--log-dir", str(WORK / "log-native-mbs1"),
                                      "--max-batch-size", "1"],
                                     f"/v1/models/{name}/predict", [row]),
        "loopml-nolog": Server("loopml-nolog", [
            str(venvs["loopml"] / "bin" / "python"), "-m", "uvicorn", "loopml_nolog:app",
            "--factory", "--app-dir", str(PEERS), "--port", str(port), "--log-level", "warning",
            "--no-access-log"], f"/v1/models/{name}/predict", [row],
            {"LOOPML_SERVE_SETTINGS": json.dumps({"ref": meta["ref"], "flavour": "onnx",
                                                  "home": meta["home"]})}),
        "mlflow": Server("mlflow", [str(venvs["mlflow"] / "bin" / "mlflow"), "models",
                                    "serve", "-m", str(WORK / "mlflow-model"), "--port",
                                    str(port), "--env-manager", "local", "-w", "1"],
                         "/invocations", {"dataframe_records": [row]},
                         # MLflow starts `uvicorn` by name: its venv's bin must come first
                         {"PATH": f"{venvs['mlflow'] / 'bin'}:{os.environ.get('PATH', '')}"}),
        "bentoml": Server("bentoml", bento, "/predict", {"rows": [row]},
                          {**bento_env, "BENCH_BENTO_BATCH": "0"}),
        "bentoml-batch": Server("bentoml-batch", bento, "/predict", {"rows": [row]},
                                {**bento_env, "BENCH_BENTO_BATCH": "1"}),
    }


def free_port() -> int:
    """Return a loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(server: Server, *, cpus: str | None, timeout_s: float = 180.0) -> tuple[Any, str]:
    """Start ``server`` in its own process group; return it and its first answer once ready."""
    command = ["taskset", "-c", cpus, *server.command] if cpus else server.command
    log = open(WORK / f"{server.name}.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(command, env={**os.environ, **server.env}, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    process.log = log
    url = server.url
    data = json.dumps(server.body).encode()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {process.returncode}; "
                               f"see {WORK / (server.name + '.log')}")
        try:
            request = urllib.request.Request(url, data=data,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as answer:
                return process, answer.read().decode()[:300]
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    stop(process)
    raise RuntimeError(f"{server.name} did not answer within {timeout_s:.0f} s")


def stop(process: Any) -> None:
    """Stop the server's whole process group (SIGINT, then SIGKILL after 20 s)."""
    with _suppress():
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with _suppress():
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with _suppress():  # workers a server forked into its group and left behind
        os.killpg(process.pid, signal.SIGKILL)
    process.log.close()


def _suppress() -> Any:
    import contextlib

    return contextlib.suppress(ProcessLookupError, PermissionError)


# --- the load ----------------------------------------------------------------------------

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, "
    .. "\\"non2xx\\": %%d, \\"connect\\": %%d, \\"read\\": %%d, \\"write\\": %%d, "
    .. "\\"timeout\\": %%d, \\"p50_us\\": %%d, \\"p90_us\\": %%d, \\"p99_us\\": %%d, "
    .. "\\"max_us\\": %%d}\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def load(server: Server, *, connections: int, seconds: float, cpus: str | None) -> dict[str, Any]:
    """Run wrk against ``server`` and return its figures (req/s, latency in ms, errors)."""
    script = WORK / f"{server.name}.lua"
    script.write_text(LUA % json.dumps(server.body))
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
               "-s", str(script), server.url]
    if cpus:
        command = ["taskset", "-c", cpus, *command]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    raw = json.loads(line[len("RESULT "):])
    return {"connections": connections, "threads": threads,
            "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
            "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
            "requests": raw["requests"], "non2xx": raw["non2xx"],
            "socket_errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]}


def bench_server(server: Server, *, concurrencies: list[int], seconds: float, warmup: float,
                 pin: bool) -> dict[str, Any]:
    """Start one server, load it at each concurrency, stop it; return its cells."""
    server_cpus, wrk_cpus = ("0", "1") if pin else (None, None)
    for folder in ("log-loopml", "log-mbs1", "log-native", "log-native-mbs1"):
        shutil.rmtree(WORK / folder, ignore_errors=True)
    started = time.perf_counter()
    process, first = start(server, cpus=server_cpus)
    ready_s = time.perf_counter() - started
    cells = []
    try:
        for connections in concurrencies:
            if warmup > 0:
                load(server, connections=connections, seconds=warmup, cpus=wrk_cpus)
            cell = load(server, connections=connections, seconds=seconds, cpus=wrk_cpus)
            cells.append(cell)
            print(f"  {server.name:>14} c={connections:<3} {cell['requests_per_s']:>9,.0f} req/s"
                  f"  p50 {cell['p50_ms']:7.2f} ms  p99 {cell['p99_ms']:8.2f} ms"
                  f"  non-2xx {cell['non2xx']}  socket errors {cell['socket_errors']}",
                  flush=True)
    finally:
        stop(process)
    return {"command": server.command, "url": server.url,
            "body": server.body, "first_answer": first, "ready_s": round(ready_s, 2),
            "cells": cells}


# --- the report --------------------------------------------------------------------------

def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Return one result per server whose cells hold each figure's median over the rounds.

    Errors are summed, not averaged; ``requests_per_s_range`` keeps the lowest and highest.
    """
    from statistics import median

    out: dict[str, Any] = {}
    for name in rounds[0]:
        done = [r[name] for r in rounds if "cells" in r.get(name, {})]
        if not done:
            out[name] = rounds[0][name]
            continue
        cells = []
        for index, first in enumerate(done[0]["cells"]):
            same = [d["cells"][index] for d in done if len(d["cells"]) > index]
            cell = {key: round(median(c[key] for c in same), 3)
                    for key in ("requests_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms")}
            cell.update(connections=first["connections"], rounds=len(same),
                        requests_per_s_range=[min(c["requests_per_s"] for c in same),
                                              max(c["requests_per_s"] for c in same)],
                        non2xx=sum(c["non2xx"] for c in same),
                        socket_errors=sum(c["socket_errors"] for c in same))
            cells.append(cell)
        out[name] = {**{k: v for k, v in done[0].items() if k != "cells"}, "cells": cells}
    return out


def table(results: dict[str, Any]) -> str:
    """Return the results as a Markdown table with each cell's req/s as a share of the floor."""
    floor = {c["connections"]: c["requests_per_s"]
             for c in results.get("bare", {}).get("cells", [])}
    lines = ["| server | c | req/s | p50 ms | p99 ms | non-2xx | socket errors | of floor |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, result in results.items():
        if "error" in result:
            lines.append(f"| {name} | — | failed: {result['error'][:60]} | | | | | |")
            continue
        for cell in result["cells"]:
            c = cell["connections"]
            share = (f"{cell['requests_per_s'] / floor[c]:.0%}" if floor.get(c) else "—")
            spread = cell.get("requests_per_s_range")
            rate = f"{cell['requests_per_s']:,.0f}" + (
                f" ({spread[0]:,.0f}–{spread[1]:,.0f})" if spread and cell["rounds"] > 1 else "")
            lines.append(f"| {name} | {c} | {rate} | "
                         f"{cell['p50_ms']:.2f} | {cell['p99_ms']:.2f} | {cell['non2xx']} | "
                         f"{cell['socket_errors']} | {share} |")
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> list[str]:
    """Return one line per issue-9 target: the figure and met / missed."""
    def cell(name: str, c: int) -> dict[str, Any] | None:
        found = [x for x in results.get(name, {}).get("cells", []) if x["connections"] == c]
        return found[0] if found else None

    out = []
    loop64, bare64, mbs64 = cell("loopml", 64), cell("bare", 64), cell("loopml-mbs1", 64)
    if loop64 and bare64:
        share = loop64["requests_per_s"] / bare64["requests_per_s"]
        clean = loop64["non2xx"] == 0 and loop64["socket_errors"] == 0
        met = share >= 0.5 and loop64["p99_ms"] <= 60 and clean
        out.append(f"c=64: {share:.0%} of the floor (≥ 50 %), p99 {loop64['p99_ms']:.1f} ms "
                   f"(≤ 60), errors {loop64['non2xx'] + loop64['socket_errors']} (0): "
                   f"{'met' if met else 'MISSED'}")
    loop1 = cell("loopml", 1)
    if loop1:
        out.append(f"c=1: p50 {loop1['p50_ms']:.2f} ms (≤ 1 ms): "
                   f"{'met' if loop1['p50_ms'] <= 1 else 'MISSED'}")
    if loop64 and mbs64:
        gain = loop64["requests_per_s"] / mbs64["requests_per_s"]
        out.append(f"micro-batching at c=64: {gain:.1f}× --max-batch-size 1 (≥ 10×): "
                   f"{'met' if gain >= 10 else 'MISSED'}")
    native64, native_mbs64 = cell("loopml-native", 64), cell("loopml-native-mbs1", 64)
    if native64 and native_mbs64:
        gain = native64["requests_per_s"] / native_mbs64["requests_per_s"]
        out.append(f"micro-batching at c=64, native flavour: {gain:.1f}× --max-batch-size 1 "
                   f"(≥ 10×): {'met' if gain >= 10 else 'MISSED'}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", nargs="+", choices=SERVERS + EXTRA,
                        default=SERVERS)
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 16, 64])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each cell")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds over every server (interleaved, so a burst of load from "
                             "elsewhere hits every server alike); the table shows medians")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the server and wrk share every core (default: server on "
                             "CPU 0, wrk on CPU 1)")
    for key, path in DEFAULT_VENVS.items():
        parser.add_argument(f"--{key}-venv", type=Path, default=path)
    parser.add_argument("--out", type=Path, default=OUT_FILE)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    venvs = {key: getattr(args, f"{key}_venv") for key in DEFAULT_VENVS}
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    WORK.mkdir(parents=True, exist_ok=True)
    meta = prepare(WORK / "home")
    missing = {name: venvs[_venv_of(name)] for name in args.servers
               if not (venvs[_venv_of(name)] / "bin" / "python").exists()}
    for name, path in missing.items():
        print(f"{name}: skipped, no venv at {path} (`make bench-serve` makes them)")
    args.servers = [name for name in args.servers if name not in missing]
    if "mlflow" in args.servers:
        peer_files(meta, venvs)
    at_start = machine()
    print(f"model {meta['ref']} ({meta['flavour']}); one row: {json.dumps(meta['row'])}")
    rounds: list[dict[str, Any]] = []
    began = time.perf_counter()
    for number in range(args.repeat):
        if args.repeat > 1:
            print(f"round {number + 1} of {args.repeat}", flush=True)
        rounds.append({})
        for name in args.servers:
            port = free_port()
            server = servers(meta, venvs, port)[name]
            server.url = f"http://127.0.0.1:{port}{server.path}"
            print(f"{name}: {' '.join(server.command)}", flush=True)
            try:
                rounds[-1][name] = bench_server(server, concurrencies=args.concurrency,
                                                seconds=args.duration, warmup=args.warmup,
                                                pin=pin)
            except (RuntimeError, subprocess.CalledProcessError, StopIteration) as error:
                print(f"  {name} failed: {error}", flush=True)
                rounds[-1][name] = {"error": str(error)}
    results = medians(rounds)
    print()
    print(table(results))
    print()
    for line in targets(results):
        print(line)
    write_report(args.out, {
        "benchmark": "serve", "args": {k: str(v) for k, v in vars(args).items()},
        "pinned": pin, "model": meta, "machine_at_start": at_start, "code": _code(),
        "load_average_at_end": machine()["load_average_1_5_15"],
        "wall_s": round(time.perf_counter() - began, 1),
        "versions": versions("loopml", "fastapi", "starlette", "uvicorn", "onnxruntime",
                             "lightgbm", "scikit-learn", "pandas"),
        "peer_versions": _peer_versions(venvs),
        "results": results, "rounds": rounds, "targets": targets(results)})


def _venv_of(server: str) -> str:
    """Return which venv runs ``server``: ``mlflow``, ``bentoml`` or ``loopml``.

    >>> _venv_of("bentoml-batch"), _venv_of("loopml-mbs1"), _venv_of("bare")
    ('bentoml', 'loopml', 'loopml')
    """
    return next((key for key in ("mlflow", "bentoml") if server.startswith(key)), "loopml")


def _code() -> dict[str, Any]:
    """Return the commit measured and the serving files changed on top of it (a dirty tree)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "changed": git("status", "--porcelain", "src/loopml/serve",
                           "src/loopml/cli/serve.py").splitlines()}


def _peer_versions(venvs: dict[str, Path]) -> dict[str, str]:
    out = {}
    for key, package in (("mlflow", "mlflow"), ("bentoml", "bentoml")):
        python = venvs[key] / "bin" / "python"
        if not python.exists():
            out[package] = "no venv"
            continue
        done = subprocess.run([str(python), "-c", f"import importlib.metadata as m; "
                               f"print(m.version('{package}'))"], capture_output=True, text=True)
        out[package] = done.stdout.strip() or "not installed"
    return out


if __name__ == "__main__":
    main()
