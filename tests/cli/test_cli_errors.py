"""How the `loopml` command fails: one line and exit 2 for bad input, one line and exit 1 for a
bug (traceback only with LOOPML_DEBUG=1), one line and exit 130 for Ctrl-C — never a traceback.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from loopml.tracking import TrackingClient
from loopml.workspace import Workspace

UNREACHABLE_PG = "postgresql+psycopg://nobody:secret@127.0.0.1:1/x"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> tuple[Path, str, Path]:
    """A workspace with one run, a file that is not a database, a CSV."""
    root = tmp_path_factory.mktemp("errors")
    client = TrackingClient.from_workspace(Workspace.from_env(root / "ws", env={}))
    with client.start_run("only", project="p") as run:
        run.log_metric("auc", 0.5)
    client.close()
    (root / "not-a-db.txt").write_text("hello\n")
    (root / "a.csv").write_text("x,y\n1,0\n2,1\n")
    return root / "ws", run.id, root


# (case, arguments, extra environment, text the one line must contain). "{run}" is the run's
# id, "{root}" the folder of the fixture files. Each row failed before with a traceback, a
# multi-line usage message, or a message that did not name the allowed range.
BAD_INPUT = [
    ("limit-float", ["runs", "list", "--limit", "1e30"], {}, "'--limit': '1e30' is not allowed: "
     "expected a whole number from 1 to 1,000,000"),
    ("limit-negative", ["runs", "list", "--limit", "-1"], {}, "from 1 to 1,000,000"),
    ("limit-zero", ["runs", "list", "--limit", "0"], {}, "'--limit': '0'"),
    ("limit-beyond-int64", ["runs", "list", "--limit", "99999999999999999999"], {},
     "from 1 to 1,000,000"),
    ("limit-text", ["runs", "list", "--limit=2x"], {}, "'--limit': '2x'"),
    ("unknown-option", ["runs", "list", "--bogus"], {}, "No such option: --bogus (see `loopml "
     "runs list --help`)"),
    ("unknown-command", ["nope"], {}, "No such command 'nope'"),
    ("missing-argument", ["runs", "show"], {}, "Missing argument"),
    ("unknown-run", ["runs", "show", "ffffff"], {}, "no run with id 'ffffff'"),
    ("bad-status", ["runs", "list", "--status", "DONE"], {}, "status 'DONE'"),
    ("compare-one", ["runs", "compare", "{run}"], {}, "at least two"),
    ("unknown-metric", ["runs", "metric", "{run}", "nope"], {}, "has no metric 'nope'"),
    ("delete-unknown", ["runs", "delete", "ffffff", "--yes"], {}, "no run with id"),
    ("db-current-unreachable", ["db", "current"], {"LOOPML_STORE_URI": UNREACHABLE_PG},
     "cannot open store postgresql+psycopg://nobody:***@127.0.0.1:1/x: connection failed"),
    ("db-upgrade-unreachable", ["db", "upgrade"], {"LOOPML_STORE_URI": UNREACHABLE_PG},
     "cannot upgrade store postgresql+psycopg://nobody:***@127.0.0.1:1/x"),
    ("db-current-missing-folder", ["db", "current"],
     {"LOOPML_STORE_URI": "sqlite:////no/such/dir/x.db"}, "/no/such/dir/x.db"),
    ("db-upgrade-missing-folder", ["db", "upgrade"],
     {"LOOPML_STORE_URI": "sqlite:////no/such/dir/x.db"}, "folder /no/such/dir does not exist"),
    ("db-current-not-a-database", ["db", "current"],
     {"LOOPML_STORE_URI": "sqlite:///{root}/not-a-db.txt"}, "file is not a database"),
    ("db-upgrade-not-a-database", ["db", "upgrade"],
     {"LOOPML_STORE_URI": "sqlite:///{root}/not-a-db.txt"}, "file is not a database"),
    ("db-upgrade-home-is-a-file", ["db", "upgrade", "--home", "{root}/not-a-db.txt"], {},
     "cannot create workspace folder"),
    ("db-unsupported-scheme", ["db", "current"], {"LOOPML_STORE_URI": "mysql://x@y/z"},
     "not supported"),
    ("data-add-missing-file", ["data", "add", "{root}/missing.csv", "--name", "x"], {},
     "no such file"),
    ("data-add-no-name", ["data", "add", "{root}/a.csv"], {}, "--name NAME"),
    ("data-add-bad-pii", ["data", "add", "{root}/a.csv", "--name", "x", "--pii", "col"], {},
     "--pii 'col'"),
    ("data-show-unknown", ["data", "show", "nosuch"], {}, "no dataset named 'nosuch'"),
    ("data-contract-unknown", ["data", "contract", "nosuch"], {}, "no dataset named"),
    ("data-validate-missing", ["data", "validate", "{root}/missing.csv", "--against", "x"], {},
     "no such file"),
    ("data-split-fractions", ["data", "split", "x", "--fractions", "a,b"], {}, "--fractions"),
    ("init-missing-file", ["init", "{root}/missing.csv", "--target", "y"], {}, "no such file"),
    ("train-missing-config", ["train", "--config", "{root}/missing.yaml"], {},
     "no such project file"),
    ("gc-bad-age", ["gc", "--older-than", "soon"], {}, "--older-than 'soon'"),
    ("gc-missing-home", ["gc", "--home", "{root}/nowhere"], {}, "no workspace at"),
    ("demo-dir-is-a-file", ["demo", "--dir", "{root}/not-a-db.txt"], {},
     "cannot create workspace folder"),
    ("version-unknown-option", ["version", "--bogus"], {}, "No such option: --bogus"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "env", "expected"), [row[1:] for row in BAD_INPUT],
                         ids=[row[0] for row in BAD_INPUT])
def test_bad_input_is_one_line_exit_2(cli, one_line, workspace, args, env, expected):
    home, run_id, root = workspace

    def fill(text: str) -> str:
        return text.replace("{run}", run_id).replace("{root}", str(root))

    result = cli(*(fill(a) for a in args), home=home, env={k: fill(v) for k, v in env.items()})
    one_line(result, code=2, prefix="loopml: error: ", contains=fill(expected))
    assert "secret" not in result.stderr


def test_limit_in_range_still_lists(cli, workspace):
    home, run_id, _ = workspace
    for limit in ("1", "1000000"):
        result = cli("runs", "list", "--limit", limit, "--json", home=home)
        assert result.returncode == 0, result.stderr
        assert [r["id"] for r in json.loads(result.stdout)] == [run_id]


# -- errors loopml did not expect, and Ctrl-C -------------------------------------------------
# A tiny script adds commands to the real `loopml` app and runs its real entry point, so the
# handlers in loopml.cli.main meet a genuine exception, a genuine DuckDB query and SIGINT.
SCRIPT = textwrap.dedent('''
    import sys, time
    from loopml.cli import app, main

    @app.command("boom")
    def boom():
        raise RuntimeError("disk on fire\\nsecond \\x1b[31mline")

    @app.command("query")
    def query():
        # DuckDB's own interrupt, as its SIGINT check raises it mid-query ("Query interrupted").
        import threading
        import duckdb
        con = duckdb.connect()
        threading.Timer(0.5, con.interrupt).start()
        con.execute("SELECT count(*) FROM range(100000000000000)").fetchall()

    @app.command("wait")
    def wait():
        print("ready", flush=True)
        time.sleep(120)

    sys.argv = ["loopml", *sys.argv[1:]]
    main()
''')


def run_script(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
               interrupt: bool = False) -> subprocess.CompletedProcess:
    script = tmp_path / "cli_script.py"
    script.write_text(SCRIPT)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    full_env.update(env or {})
    proc = subprocess.Popen([sys.executable, str(script), *args], env=full_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if interrupt:
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.5)
        # On a loaded machine the first SIGINT can land before DuckDB starts checking for
        # it; a user presses Ctrl-C again, and so does the test (at most a few times).
        for _ in range(10):
            proc.send_signal(signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            proc.kill()
            out, err = proc.communicate()
    else:
        out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


INTERNAL = ("loopml: internal error: RuntimeError: disk on fire second \\x1b[31mline — "
            "please report; details: LOOPML_DEBUG=1")


def test_unexpected_exception_is_one_line_exit_1(tmp_path, one_line):
    result = run_script(tmp_path, "boom")
    assert one_line(result, code=1, prefix="loopml: internal error: ") == INTERNAL


def test_loopml_debug_shows_the_traceback(tmp_path):
    result = run_script(tmp_path, "boom", env={"LOOPML_DEBUG": "1"})
    assert result.returncode == 1
    assert "Traceback" in result.stderr and 'raise RuntimeError("disk on fire' in result.stderr
    assert result.stderr.strip().splitlines()[-1] == INTERNAL


@pytest.mark.slow
@pytest.mark.parametrize("command", ["query", "wait"])
def test_sigint_exits_130_with_one_line(tmp_path, one_line, command):
    # "query": DuckDB's interrupt error ("Query interrupted"), what its SIGINT check raises;
    # "wait": a real SIGINT, Python's KeyboardInterrupt. The user pressed Ctrl-C either way.
    # (The real Ctrl-C inside DuckDB is test_sigint_while_profiling_a_real_ingest below.)
    result = run_script(tmp_path, command, interrupt=command == "wait")
    assert one_line(result, code=130, prefix="loopml: interrupted") == "loopml: interrupted"


@pytest.mark.slow
def test_sigint_while_profiling_a_real_ingest(tmp_path, cli, one_line):
    """Ctrl-C in `loopml data add` once the snapshot is written (profiling runs in DuckDB)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(10_000, 150)).round(4),
                         columns=[f"c{i}" for i in range(150)])
    csv = tmp_path / "wide.csv"
    frame.to_csv(csv, index=False)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(TMPDIR=str(scratch), LOOPML_HOME=str(tmp_path / "ws"))
    proc = subprocess.Popen([sys.executable, "-m", "loopml", "data", "add", str(csv),
                             "--name", "wide"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if any(_parquet_complete(Path(p))
               for p in glob.glob(str(scratch / "loopml-ingest-*" / "*.parquet"))):
            break  # the snapshot is closed: profiling has begun
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert one_line(result, code=130, prefix="loopml: interrupted") == "loopml: interrupted"
    listed = cli("data", "list", "--json", home=tmp_path / "ws")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []  # nothing half-recorded


def _parquet_complete(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            handle.seek(-4, os.SEEK_END)
            return handle.read() == b"PAR1"
    except OSError:
        return False
