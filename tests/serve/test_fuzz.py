"""Fuzzing the real server: no input makes it answer 5xx or break its own OpenAPI schema.

Two fuzzers against one ``python -m loopml serve`` subprocess:

- schemathesis reads the server's /openapi.json and generates requests for every operation
  (checks ``not_a_server_error`` and ``response_schema_conformance``), once with the path
  parameters pinned to the served model so requests reach the model, once with any names;
- hypothesis sends rows that are almost valid for the model's signature (a value of the wrong
  type, NaN, a huge number, a missing or extra column, odd unicode), which a generic
  ``{"type": "object"}`` body schema hardly ever produces, to /v1 and /v2.

Requests found by hand that once answered 500 are in EDGE_REQUESTS: each must now be a 4xx.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from server_helpers import (
    credit_workspace,
    http_request,
    input_columns,
    start_server,
    valid_records,
)

pytestmark = pytest.mark.slow

CHECKS = "not_a_server_error,response_schema_conformance"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A server of credit@champion (one version) and the model's input columns."""
    root = tmp_path_factory.mktemp("fuzz")
    home = credit_workspace(root, versions=1)
    server = start_server(home, "credit@champion", log_dir=root / "log")
    try:
        yield server, input_columns(home)
    finally:
        server.stop()


def _schemathesis(url: str, folder: Path, *, config: str, examples: int, seed: int,
                  phases: str = "examples,coverage,fuzzing,stateful"
                  ) -> subprocess.CompletedProcess:
    """Return the finished `st run` against ``url``'s spec, with ``config`` as its toml."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "schemathesis.toml").write_text(config)
    st = Path(sys.executable).with_name("st")
    return subprocess.run(
        [str(st), "--config-file", str(folder / "schemathesis.toml"), "run",
         f"{url}/openapi.json", "--checks", CHECKS, "--max-examples", str(examples),
         "--seed", str(seed), "--generation-database", "none", "--no-color",
         "--request-timeout", "20", "--max-failures", "20", "--workers", "1",
         "--phases", phases],
        cwd=folder, capture_output=True, text=True, timeout=240)


def test_schemathesis_finds_no_server_error_on_the_served_model(served, tmp_path):
    server, _ = served
    # Pinned to the served model and its version, so the body checks are what gets tested.
    config = '[parameters]\n"path.name" = "credit"\n"path.version" = "1"\n"query.version" = "1"\n'
    done = _schemathesis(server.url, tmp_path, config=config, examples=25, seed=7)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Tested: 15" in done.stdout, done.stdout[-3000:]
    # Every operation reached its handler (no "repeatedly returned 404" warning).
    assert "Missing test data" not in done.stdout, done.stdout[-3000:]


def test_schemathesis_finds_no_server_error_for_any_name(served, tmp_path):
    server, _ = served
    done = _schemathesis(server.url, tmp_path, config="", examples=10, seed=8,
                         phases="coverage,fuzzing")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


# ----------------------------------------------------------------------------- hypothesis


def _valid(column: dict[str, Any]):
    """Return a strategy of values ``column``'s signature accepts."""
    from hypothesis import strategies as st

    if column.get("allowed"):
        return st.sampled_from(column["allowed"])
    if column.get("type") == "integer":
        return st.integers(int(column["min"]), int(column["max"]))
    return st.floats(float(column["min"]), float(column["max"]))


def _odd():
    """Return a strategy of values a column may well refuse (or take, as 1e400 or True)."""
    from hypothesis import strategies as st

    return st.one_of(
        st.none(), st.booleans(), st.text(max_size=8), st.sampled_from(["", "NaN", "1e400"]),
        st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**30), 10**30),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=1))


def _rows(columns: list[dict[str, Any]]):
    """Return a strategy of record lists: 1-3 rows, mostly valid, each value sometimes odd,
    a column sometimes dropped or one added."""
    from hypothesis import strategies as st

    # Hypothesis leans to the low end of a range: "== top" keeps the odd cases rare enough
    # that about half the requests are valid and reach the model.
    def rarely(draw, top: int = 11) -> bool:
        return draw(st.integers(0, top)) == top

    @st.composite
    def mutated(draw):
        row = {c["name"]: draw(_odd() if rarely(draw) else _valid(c)) for c in columns}
        if rarely(draw):
            row.pop(draw(st.sampled_from(sorted(row))), None)
        if rarely(draw):
            row[draw(st.text(max_size=6))] = draw(st.integers())
        return row

    return st.lists(mutated(), min_size=1, max_size=3)


def _tensors(records: list[dict[str, Any]], columns: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the records as a V2 infer body of one BYTES/FP64 tensor a column."""
    inputs = []
    for column in columns:
        data = [r.get(column["name"]) for r in records]
        datatype = "BYTES" if column.get("allowed") else "FP64"
        inputs.append({"name": column["name"], "shape": [len(data), 1], "datatype": datatype,
                       "data": data})
    return {"inputs": inputs}


def test_near_valid_rows_get_an_answer_or_a_4xx_never_a_5xx(served):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    server, columns = served
    seen: dict[int, int] = {}

    @settings(max_examples=300, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(records=_rows(columns), shape=st.sampled_from(["records", "columns", "v2"]))
    def check(records: list[dict[str, Any]], shape: str) -> None:
        if shape == "records":
            path, body = "/v1/models/credit/predict", records
        elif shape == "columns":
            names = {k for r in records for k in r}
            path, body = "/v1/models/credit/predict", {n: [r.get(n) for r in records]
                                                       for n in names}
        else:
            path, body = "/v2/models/credit/infer", _tensors(records, columns)
        # NaN and infinities go as the JSON extensions Python writes (NaN, Infinity).
        status, answer = http_request("POST", server.port, path, json.dumps(body).encode())
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (status, answer[:300], path, json.dumps(body)[:600])
        data = json.loads(answer)
        if status != 200:
            assert isinstance(data.get("error"), str) and data["error"], data
            return
        if shape == "v2":
            label = next(o for o in data["outputs"] if o["name"] == "label")
            assert label["shape"] == [len(records)]
        else:
            assert len(data["predictions"]) == len(records)
            assert all(math.isclose(sum(p), 1.0, abs_tol=1e-6) for p in data["probabilities"])

    check()
    assert seen.get(200, 0) > 0 and len(seen) > 1, seen  # both valid and refused rows were sent


# ----------------------------------------------------------------------------- found by hand


def _v2(record: dict[str, Any], **extra: Any) -> str:
    inputs = [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64",
               "data": [v]} for k, v in record.items()]
    return json.dumps({"inputs": inputs, **extra})


def _with(record: dict[str, Any], kind: str, value: Any) -> str:
    """Return ``[record]`` as JSON with its first column of ``kind`` set to ``value``."""
    name = next(k for k, v in record.items() if isinstance(v, float if kind == "float" else int)
                and not isinstance(v, bool))
    return json.dumps([{**record, name: value}])


PREDICT, INFER = "/v1/models/credit/predict", "/v2/models/credit/infer"
# (name, path, the body as sent, made from one valid record)
EDGE_REQUESTS = [
    pytest.param("nan", PREDICT, lambda r: _with(r, "float", float("nan"))),
    pytest.param("deep-nesting", PREDICT, lambda r: "[" * 100_000 + "]" * 100_000),
    pytest.param("v2-huge-shape", INFER, lambda r: json.dumps({"inputs": [{
        "name": next(iter(r)), "shape": [10**30], "datatype": "FP64", "data": [1]}]})),
    pytest.param("1e400", PREDICT,  # plain JSON, which Python reads as inf
                 lambda r: _with(r, "float", 1.5).replace("1.5", "1e400")),
    pytest.param("infinity", PREDICT, lambda r: _with(r, "float", float("inf"))),
    pytest.param("int-over-float", PREDICT, lambda r: _with(r, "int", 10**400)),
    pytest.param("v2-output-name-list", INFER, lambda r: _v2(r, outputs=[{"name": [1]}])),
    pytest.param("v2-id-lone-surrogate", INFER, lambda r: _v2(r, id="\ud800")),
]


@pytest.mark.parametrize(("case", "path", "make_body"),
                         [pytest.param(*p.values, marks=p.marks, id=p.values[0])
                          for p in EDGE_REQUESTS])
def test_edge_requests_are_refused_with_a_4xx(served, case, path, make_body):
    server, columns = served
    record = valid_records(columns, 1, seed=3)[0]
    body = make_body(record).encode("utf-8", "surrogatepass")
    status, answer = http_request("POST", server.port, path, body)
    if case == "v2-id-lone-surrogate":  # an id that cannot be answered is replaced by a new one
        assert status == 200 and json.loads(answer)["id"] != "\ud800", (status, answer[:300])
        return
    assert 400 <= status < 500, (case, status, answer[:300])
    assert json.loads(answer)["error"]
