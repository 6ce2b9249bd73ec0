"""Logged inputs read back as typed columns, exactly as the server read the request."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pyarrow as pa
import pytest

from loopml.errors import InvalidInput
from loopml.monitor import logscan
from loopml.monitor.logscan import (
    InputParser,
    category_text,
    parse_inputs,
    parse_segment,
    prediction_values,
    window_keys,
)
from loopml.serve.inputs import InputColumn, RequestError, convert

_SERVE_KIND = {"numeric": "number", "categorical": "category", "datetime": "datetime"}
_ABSENT = object()


def _served(kind, value):
    """Return (value, invalid) as the server's own reading of one value gives it."""
    if value is _ABSENT or value is None:
        return None, False
    try:
        out = convert(InputColumn("c", _SERVE_KIND[kind]), [value])[0]
    except RequestError:
        return None, True
    if kind == "categorical":  # booleans as the dataset profile writes them
        return (out.lower() if isinstance(value, bool) else out), False
    return (None if math.isnan(out) else float(out)), False


def _texts(rows):
    return pa.array([json.dumps({k: v for k, v in row.items() if v is not _ABSENT},
                                ensure_ascii=False) for row in rows])


def _check(rows, columns):
    features, invalid = parse_inputs(_texts(rows), columns)
    assert features.column_names == list(columns)
    for name, kind in columns.items():
        expected = [_served(kind, row.get(name, _ABSENT)) for row in rows]
        got = features.column(name).to_pylist()
        for (value, bad), have, flag in zip(expected, got, invalid[name].to_pylist(),
                                            strict=True):
            assert flag == bad, (name, value, have)
            if isinstance(value, float):
                assert have == pytest.approx(value, abs=1e-6), name
            else:
                assert have == value, name


NUMBERS = [1, -2.5, 0, 1e300, True, False, None, _ABSENT, "n/a", "3", [1], {"a": 1}]
CATEGORIES = ["Lyon", "", "ü x", 7, 1.0, 2.5, -0.0, 12345678901234567890, True, False, None,
              _ABSENT, [1], {"a": "b"}]
TIMES = ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00+02:00", "2024-05-01 12:00:00",
         "2024-05-01", "2024-05-01T12:00:00.250", "May 1 2024", "junk", "", 1714564800,
         1714564800.5, 1e12, True, None, _ABSENT, [1]]


@pytest.mark.parametrize(("kind", "values"), [("numeric", NUMBERS),
                                              ("categorical", CATEGORIES),
                                              ("datetime", TIMES)])
def test_each_value_is_read_as_the_server_read_it(kind, values):
    rows = [{"x": v, "other": 1} for v in values]
    _check(rows, {"x": kind, "other": "numeric"})


@pytest.mark.parametrize(("kind", "values"), [
    ("numeric", [1, 2.5, -3, None, 1e-9]),
    ("categorical", ["a", "b", None, "ü"]),
    ("categorical", [1, 2, 3.0, 4.5, None]),          # categories sent as numbers
    ("categorical", [True, False, None]),
    ("datetime", ["2024-01-01T00:00:00Z", "2024-01-01 10:00:00", None]),
    ("datetime", [1.7e9, 0, -86400, None]),           # times sent as epoch seconds
])
def test_whole_columns_of_one_json_type_take_the_fast_path(kind, values, monkeypatch):
    def no_slow(texts, names):
        raise AssertionError(f"slow path used for {names}")

    monkeypatch.setattr(logscan, "_extract", no_slow)
    _check([{"x": v} for v in values], {"x": kind})


def test_keys_with_odd_characters_and_extra_keys():
    names = {"a/b": "numeric", "t~1": "categorical", "ü x": "numeric", 'q"u)ote': "categorical"}
    rows = [{"a/b": 1, "t~1": "x", "ü x": 2.5, 'q"u)ote': "y", "extra": [1, {"z": 2}]},
            {"a/b": "bad", "t~1": 3, "ü x": None, 'q"u)ote': "z"}]
    _check(rows, names)


def test_rows_that_are_not_objects_are_all_missing():
    texts = pa.array(['{"x": 1, "c": "a"}', "[1, 2]", "7", "garbage", "", None, "null",
                      '{"x":\n 2,\r\n "c": "b"}'])
    features, invalid = parse_inputs(texts, {"x": "numeric", "c": "categorical"})
    assert features.column("x").to_pylist() == [1.0, None, None, None, None, None, None, 2.0]
    assert features.column("c").to_pylist() == ["a", None, None, None, None, None, None, "b"]
    assert not any(invalid["x"].to_pylist()) and not any(invalid["c"].to_pylist())


def test_chunks_learn_a_columns_type_and_one_bad_value_stays_in_its_chunk(monkeypatch):
    monkeypatch.setattr(logscan, "CHUNK_ROWS", 100)
    calls = []
    extract = logscan._extract
    monkeypatch.setattr(logscan, "_extract",
                        lambda texts, names: calls.append(list(names)) or extract(texts, names))
    rng = np.random.default_rng(0)
    rows = [{"x": float(v), "zip": int(z)} for v, z in zip(rng.normal(size=1000),
                                                           rng.integers(1000, 1010, 1000),
                                                           strict=True)]
    rows[250]["x"] = "n/a"
    parser = InputParser({"x": "numeric", "zip": "categorical"})
    features, invalid = parser.parse(pa.chunked_array([_texts(rows[:600]), _texts(rows[600:])]))
    assert calls == [["x"]]  # only the chunk holding "n/a", only its column
    assert invalid["x"].to_pylist() == [i == 250 for i in range(1000)]
    assert features.column("zip").to_pylist() == [str(r["zip"]) for r in rows]
    expected = [None if i == 250 else r["x"] for i, r in enumerate(rows)]
    assert features.column("x").to_pylist() == expected


def test_a_mixed_column_keeps_row_order_in_the_slow_path():
    n = 50_000
    rows = [{"c": (i if i % 3 else f"s{i}"), "x": i} for i in range(n)]
    features, invalid = parse_inputs(_texts(rows), {"c": "categorical", "x": "numeric"})
    assert features.column("c").to_pylist() == [str(i) if i % 3 else f"s{i}" for i in range(n)]
    assert features.column("x").to_numpy().tolist() == list(map(float, range(n)))
    assert not any(invalid["c"].to_pylist())


def test_empty_input_and_unknown_kind():
    features, invalid = parse_inputs(pa.array([], pa.string()), {"x": "numeric",
                                                                "c": "categorical"})
    assert features.num_rows == 0 and features.schema.types == [pa.float64(), pa.string()]
    assert len(invalid["x"]) == 0
    with pytest.raises(InvalidInput, match="'x'.*kind 'text'"):
        parse_inputs(pa.array(["{}"]), {"x": "text"})


def test_category_text_matches_the_server_and_the_profile():
    for value in ["a", 1, 1.0, 2.5, 10**20, -0.0]:
        assert category_text(value) == convert(InputColumn("c", "category"), [value])[0]
    # Booleans as the profile's DuckDB text of them: the reference's categories.
    import duckdb

    assert (category_text(True), category_text(False)) == \
        duckdb.sql("SELECT true::VARCHAR, false::VARCHAR").fetchall()[0]


def _log_table(predictions, probabilities, model="m"):
    n = len(predictions)
    return pa.table({
        "request_id": [f"r{i}" for i in range(n)], "row": [0] * n,
        "ts": pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * n,
                       pa.timestamp("us", tz="UTC")),
        "model": [model] * n, "version": [1] * n,
        "prediction": [json.dumps(p) for p in predictions],
        "probabilities": pa.array(probabilities, pa.list_(pa.float64())),
        "inputs": [json.dumps({"x": i}) for i in range(n)]})


def test_prediction_values_per_task():
    binary = _log_table([1, 0, 1], [[0.3, 0.7], [0.9, 0.1], [0.4, 0.6]])
    assert prediction_values(binary, task="binary", labels=[0, 1]).to_pylist() == \
        [0.7, 0.1, 0.6]
    assert prediction_values(binary, task="binary", labels=[0, 1],
                             kind="categorical").to_pylist() == ["1", "0", "1"]
    no_proba = _log_table([True, False], [None, None])
    assert prediction_values(no_proba, task="binary", labels=[False, True]).to_pylist() == \
        ["true", "false"]
    multi = _log_table(["b", "c", 2.0], [[0.1, 0.8, 0.1]] * 3)
    assert prediction_values(multi, task="multiclass", labels=["a", "b", "c"]).to_pylist() == \
        ["b", "c", "2"]
    regression = _log_table([3.25, -1, 1e3], [None] * 3)
    values = prediction_values(regression, task="regression")
    assert values.type == pa.float64() and values.to_pylist() == [3.25, -1.0, 1000.0]
    odd = _log_table([3.25, "x"], [None] * 2)
    assert prediction_values(odd, task="regression").to_pylist() == [3.25, None]


def test_parse_segment_keeps_one_model():
    table = pa.concat_tables([_log_table([1, 0], [[0.3, 0.7], [0.9, 0.1]], model="a"),
                              _log_table([1], [[0.2, 0.8]], model="b")])
    parsed = parse_segment(table, model="a", columns={"x": "numeric"})
    assert parsed.table.num_rows == 2 and "inputs" not in parsed.table.column_names
    assert parsed.features.column("x").to_pylist() == [0.0, 1.0]
    assert parsed.invalid["x"].to_pylist() == [False, False]


def test_window_keys_are_utc_floors():
    stamps = [dt.datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=dt.UTC),
              dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC),
              dt.datetime(1969, 12, 31, 12, 0, tzinfo=dt.UTC)]
    ts = pa.array(stamps, pa.timestamp("us", tz="UTC"))
    keys = window_keys(pa.chunked_array([ts]), seconds=86400)
    expected = [int(dt.datetime(s.year, s.month, s.day, tzinfo=dt.UTC).timestamp() * 1000)
                for s in stamps]
    assert keys.tolist() == expected
    assert window_keys(ts, seconds=1800).tolist()[0] == int(
        dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC).timestamp() * 1000)
    with pytest.raises(InvalidInput):
        window_keys(ts, seconds=0)


def test_wide_rows_take_smaller_chunks(monkeypatch):
    monkeypatch.setattr(logscan, "CHUNK_BYTES", 2000)
    rows = [{"x": i, "pad": "p" * 300} for i in range(40)]
    features, invalid = parse_inputs(_texts(rows), {"x": "numeric"})
    assert features.column("x").num_chunks > 1
    assert features.column("x").to_pylist() == [float(i) for i in range(40)]
    assert len(invalid["x"]) == 40


def test_round_trip_through_the_prediction_log(tmp_path):
    from loopml.serve.predlog import PredictionLog, read_log

    when = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
    raw = [{"age": 41, "income": float("nan"), "city": "Lyon", "since": "2024-05-01T12:00:00Z"},
           {"age": np.float64(37.5), "income": 1e5, "city": 7, "since": 1714564800},
           {"age": None, "income": np.int64(3), "city": True, "since": None}]
    log = PredictionLog(tmp_path).start()
    assert log.write([{"request_id": "r1", "row": i, "ts": when, "model": "m", "version": 1,
                       "flavour": "native", "latency_ms": 1.0, "prediction": 1,
                       "probabilities": [0.4, 0.6], "inputs": inputs}
                      for i, inputs in enumerate(raw)])
    assert log.close()
    table = read_log(tmp_path)
    columns = {"age": "numeric", "income": "numeric", "city": "categorical",
               "since": "datetime"}
    features, invalid = parse_inputs(table.column("inputs"), columns)
    assert features.column("age").to_pylist() == [41.0, 37.5, None]
    assert features.column("income").to_pylist() == [None, 1e5, 3.0]  # NaN is logged as null
    assert features.column("city").to_pylist() == ["Lyon", "7", "true"]
    assert features.column("since").to_pylist() == [1714564800.0, 1714564800.0, None]
    assert not any(any(mask.to_pylist()) for mask in invalid.values())
    assert prediction_values(table, task="binary", labels=[0, 1]).to_pylist() == [0.6] * 3
