"""profile and choose_flavour on a real exported model (small sizes; no timing asserts)."""

from __future__ import annotations

import sys
from pathlib import Path

from loopml.optimize.export import to_onnx
from loopml.optimize.parity import Parity, check_parity
from loopml.optimize.profile import choose_flavour, profile
from loopml.optimize.runtime import OnnxModel

sys.path.insert(0, str(Path(__file__).parent))
from test_export import make_frame, make_model, scored_rows  # noqa: E402


def test_profile_reports_every_figure_for_both_flavours():
    native = make_model("lightgbm", "binary", make_frame(600, seed=0))
    blob = to_onnx(native)
    exported = OnnxModel.from_bytes(blob)
    rows = scored_rows(50)

    report = profile(native, exported, rows, onnx_bytes=blob, native_bytes=1234, calls=30,
                     batches=(100, 2000))

    assert report["rows"] == 50 and report["batches"] == [100, 2000]
    for flavour in ("native", "onnx"):
        entry = report[flavour]
        assert 0 < entry["single_row_p50_us"] <= entry["single_row_p99_us"]
        assert entry["single_row_calls"] >= 20
        assert entry["rows_per_s_100"] > 0 and entry["rows_per_s_2k"] > 0
        assert entry["peak_rss_mb"] is None or entry["peak_rss_mb"] > 0
    assert report["native"]["size_bytes"] == 1234 and report["onnx"]["size_bytes"] == len(blob)
    assert 0 < report["onnx"]["session_p50_us"] <= report["onnx"]["session_p99_us"]
    parity = check_parity(native, exported, rows)
    assert choose_flavour(parity, report) in ("onnx", "native")


def test_choose_flavour_wants_parity_first_then_the_faster_tail():
    passed = Parity(True, 10, 0.0, 1e-4, 0, "")
    failed = Parity(False, 10, 1.0, 1e-4, 3, "")
    faster = {"onnx": {"single_row_p99_us": 80.0}, "native": {"single_row_p99_us": 9000.0}}
    slower = {"onnx": {"single_row_p99_us": 900.0}, "native": {"single_row_p99_us": 800.0}}
    assert choose_flavour(passed, faster) == "onnx"
    assert choose_flavour({"passed": True}, faster) == "onnx"
    assert choose_flavour(failed, faster) == "native"
    assert choose_flavour(passed, slower) == "native"
    assert choose_flavour(passed, {}) == "native"


def test_profile_of_no_rows_is_empty():
    native = make_model("linear", "regression", make_frame(300, seed=0))
    exported = OnnxModel.from_bytes(to_onnx(native))
    assert profile(native, exported, scored_rows(5).head(0), onnx_bytes=1,
                   native_bytes=1) == {}
