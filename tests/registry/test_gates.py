"""Promotion gates: the spec in loopml.yaml, every gate on real scikit-learn models, the report."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score

from loopml.config import GatesSection, ProjectConfig
from loopml.data.contract import ColumnRule, Contract
from loopml.errors import GateFailed, InvalidInput
from loopml.registry.gate_html import gate_report_html
from loopml.registry.gates import GateReport, GateResult, check_gates, run_gates
from loopml.views.gates import gate_report_json, print_gate_report
from loopml.yamlfile import parse_yaml

INPUTS = ["a", "b"]
CLASSES = ["no", "yes"]


def parse(text: str) -> GatesSection:
    return parse_yaml(text, ProjectConfig, origin="loopml.yaml", shape="a mapping").gates


# -- the spec -----------------------------------------------------------------------------------

def test_a_full_spec_reads_as_written():
    gates = parse("""
gates:
  metrics: ["roc_auc >= 0.80", "brier<=0.2"]
  beats_champion: {metric: roc_auc, min_delta: 0.002, confidence: 0.9}
  fairness: {metric: equalized_odds_difference, max: 0.10, sensitive: [sex]}
  latency_p99_ms: 25
  max_size_mb: 50
  data_contract: false
""")
    assert [str(g) for g in gates.metrics] == ["roc_auc >= 0.8", "brier <= 0.2"]
    assert gates.beats_champion.metric == "roc_auc"
    assert gates.beats_champion.min_delta == 0.002 and gates.beats_champion.confidence == 0.9
    assert gates.fairness[0].max == 0.1 and gates.fairness[0].sensitive == ["sex"]
    assert (gates.latency_p99_ms, gates.max_size_mb, gates.data_contract) == (25, 50, False)
    assert GatesSection.model_validate(gates.model_dump()) == gates  # dumps round-trip


def test_other_spellings_mean_the_same():
    mapping = parse("gates:\n  metrics: {roc_auc: '>= 0.8', rmse: 12, r2: 0.5}")
    # a bare number means "at least this good", in the metric's own direction
    assert [str(g) for g in mapping.metrics] == ["roc_auc >= 0.8", "rmse <= 12", "r2 >= 0.5"]
    many = parse("gates:\n  fairness: ['demographic_parity_difference <= 0.2', "
                 "{max: 0.1, sensitive: sex}]")
    assert [(f.metric, f.max, f.sensitive) for f in many.fairness] == [
        ("demographic_parity_difference", 0.2, None), ("equalized_odds_difference", 0.1,
                                                       ["sex"])]
    assert parse("gates:\n  beats_champion: false").beats_champion is None
    assert parse("gates:\n  beats_champion: true").beats_champion.min_delta == 0


def test_no_gates_section_means_the_two_default_gates():
    for text in ("project: {name: p}", "gates:", "gates: {}"):
        gates = parse(text)
        assert gates.beats_champion is not None and gates.beats_champion.min_delta == 0
        assert gates.data_contract is True
        assert gates.metrics == [] and gates.fairness == []
        assert gates.latency_p99_ms is None and gates.max_size_mb is None


@pytest.mark.parametrize("text,key,words", [
    ("metrics: ['roc_acu >= 0.8']", "gates.metrics.0.metric", "choose from roc_auc, pr_auc"),
    ("metrics: {roc_acu: 0.8}", "gates.metrics.0.metric", "unknown metric 'roc_acu'"),
    ("metrics: ['roc_auc => 0.8']", "gates.metrics.0", "unknown operator '=>'"),
    ("metrics: ['roc_auc = 0.8']", "gates.metrics.0", "OP one of >=, <=, >, <"),
    ("metrics: ['roc_auc >= high']", "gates.metrics.0", "'high' in 'roc_auc >= high' is not"),
    ("metrics: ['roc_auc']", "gates.metrics.0", "expected 'METRIC OP NUMBER'"),
    ("metrics: ['equalized_odds_difference <= 0.1']", "gates.metrics.0.metric",
     "put it under gates.fairness"),
    ("fairness: {metric: equalised_odds, max: 0.1}", "gates.fairness.0.metric",
     "choose from equalized_odds_difference, demographic_parity_difference"),
    ("fairness: 'equalized_odds_difference >= 0.1'", "gates.fairness.0", "OP one of <="),
    ("fairness: {max: 2}", "gates.fairness.0.max", "from 0 to 1"),
    ("beats_champion: {metric: auc}", "gates.beats_champion.metric", "unknown metric 'auc'"),
    ("beats_champion: {confidence: 95}", "gates.beats_champion.confidence", "such as 0.95"),
    ("beats_champion: {resamples: 5}", "gates.beats_champion.resamples", "from 100"),
    ("beats_champion: {min_delta: .nan}", "gates.beats_champion.min_delta", "finite"),
    ("latency_p99_ms: 0", "gates.latency_p99_ms", "above 0"),
    ("latency_p99_ms: true", "gates.latency_p99_ms", "expected a number"),
    ("max_size_mb: -3", "gates.max_size_mb", "above 0"),
    ("max_size: 3", "gates.max_size", "Extra inputs are not permitted"),
])
def test_a_bad_spec_is_refused_naming_the_key(text, key, words):
    with pytest.raises(InvalidInput) as caught:
        parse("gates:\n  " + text)
    message = str(caught.value)
    assert message.startswith(f"loopml.yaml: {key}: ") and words in message


def test_gates_that_do_not_fit_the_task_are_refused_before_any_gate_runs():
    with pytest.raises(InvalidInput, match="gates.metrics: metric 'rmse' does not fit a binary"):
        check_gates(GatesSection(metrics=["rmse <= 3"]), task="binary")
    with pytest.raises(InvalidInput, match="gates.beats_champion.metric: metric 'roc_auc'"):
        check_gates(GatesSection(beats_champion={"metric": "roc_auc"}), task="regression")
    with pytest.raises(InvalidInput, match="gates.fairness: fairness gates need a binary task"):
        check_gates(GatesSection(fairness=[{"max": 0.1, "sensitive": ["s"]}]), task="multiclass")
    with pytest.raises(InvalidInput, match="names no column; set sensitive"):
        check_gates(GatesSection(fairness=[{"max": 0.1}]), task="binary")
    check_gates(GatesSection(fairness=[{"max": 0.1}]), task="binary", sensitive=["sex"])


# -- real models on generated data --------------------------------------------------------------

@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    rows = 1600
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows),
                          "sex": rng.choice(["f", "m"], rows)})
    # the label leans on a, and a little on sex, so a model using a can be unfair
    logit = 1.5 * frame.a + 0.7 * frame.b + 0.8 * (frame.sex == "m") - 0.4
    frame["target"] = np.where(logit + rng.logistic(size=rows) > 0, "yes", "no")
    return frame.iloc[:1000], frame.iloc[1000:].reset_index(drop=True)


@pytest.fixture(scope="module")
def models(data):
    train, _ = data
    good = LogisticRegression().fit(train[INPUTS], train.target)
    weak = LogisticRegression().fit(train[["b"]].assign(a=0.0)[INPUTS], train.target)
    return good, weak


def gates(**spec) -> GatesSection:
    spec.setdefault("data_contract", False)
    return GatesSection.model_validate(spec)


def run(spec, challenger, champion, rows, **kw) -> GateReport:
    kw = {"rows_note": "the challenger's test rows", "task": "binary", "target": "target",
          "classes": CLASSES, "sensitive": [], "size_bytes": None, "contract": None,
          "input_columns": INPUTS, "seed": 0, **kw}
    return run_gates(spec, challenger=challenger, champion=champion, rows=rows, **kw)


def gate(report: GateReport, prefix: str) -> GateResult:
    (found,) = [g for g in report.gates if g.name.startswith(prefix)]
    return found


def test_a_challenger_worse_than_the_champion_on_the_same_rows_is_refused(data, models):
    _, test = data
    good, weak = models
    report = run(gates(), weak, good, test)
    result = gate(report, "beats_champion")
    assert not report.passed and not result.passed and result.decided_by == "bootstrap"
    assert "worse than the champion, beyond noise" in result.detail
    truth = (test.target == "yes").astype(int)
    auc_weak = roc_auc_score(truth, weak.predict_proba(test[INPUTS])[:, 1])
    auc_good = roc_auc_score(truth, good.predict_proba(test[INPUTS])[:, 1])
    comparison = report.comparison
    assert comparison["metric"] == "roc_auc"  # the binary task's default metric
    assert comparison["challenger"] == pytest.approx(auc_weak)
    assert comparison["champion"] == pytest.approx(auc_good)
    assert comparison["delta"] == pytest.approx(auc_weak - auc_good) == result.observed
    assert comparison["ci"][1] < 0 and comparison["resamples"] == 1000
    with pytest.raises(GateFailed, match="beats_champion: roc_auc: challenger .* --force"):
        report.raise_for_failure()


def test_a_better_challenger_passes_and_min_delta_and_noise_decide(data, models):
    _, test = data
    good, weak = models
    report = run(gates(beats_champion={"min_delta": 0.01}), good, weak, test)
    assert report.passed and gate(report, "beats_champion").decided_by == "bootstrap"
    report.raise_for_failure()  # nothing to raise
    too_much = run(gates(beats_champion={"min_delta": 0.5}), good, weak, test)
    result = gate(too_much, "beats_champion")
    assert not result.passed and result.decided_by == "min_delta"
    assert "below min_delta 0.5" in result.detail
    # on 30 rows a real improvement (+0.1 ROC-AUC here) cannot be told from noise
    few = run(gates(beats_champion={"min_delta": 0.001}), good, weak, test.iloc[:30])
    result = gate(few, "beats_champion")
    assert few.comparison["delta"] > 0.05 and few.comparison["p_value"] > 0.05
    assert not result.passed and result.decided_by == "bootstrap"
    assert "within noise" in result.detail
    # and a worse challenger is refused on those 30 rows even where noise could explain it
    worse = run(gates(), weak, good, test.iloc[:30])
    result = gate(worse, "beats_champion")
    assert worse.comparison["delta"] < 0 and not result.passed
    assert "worse than the champion on these rows" in result.detail or "beyond noise" in \
        result.detail


def test_the_champion_itself_passes_and_no_champion_passes(data, models):
    _, test = data
    good, _ = models
    same = gate(run(gates(), good, good, test), "beats_champion")
    assert same.passed and same.observed == 0
    first = run(gates(), good, None, test)
    assert first.passed and first.comparison is None
    assert gate(first, "beats_champion").detail == "no champion yet"


def test_classes_are_aligned_to_each_models_own_order(data, models):
    _, test = data
    good, weak = models

    class Reversed:  # same model, classes and probability columns in the other order
        classes_ = np.array(["yes", "no"], dtype=object)

        def predict_proba(self, frame):
            return good.predict_proba(frame)[:, ::-1]

    report = run(gates(), Reversed(), weak, test)
    plain = run(gates(), good, weak, test)
    assert report.comparison == plain.comparison
    other = run(gates(), good, type("M", (), {"classes_": np.array(["no", "maybe"]),
                                              "predict_proba": weak.predict_proba})(), test)
    result = gate(other, "beats_champion")
    assert not result.passed and result.decided_by == "error"
    assert "champion's classes (no, maybe) differ" in result.detail


def test_multiclass_champion_comparison_uses_log_loss_by_default():
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=900), "b": rng.normal(size=900)})
    frame["target"] = np.select([frame.a < -0.5, frame.a > 0.5], ["low", "high"], "mid")
    train, test = frame.iloc[:600], frame.iloc[600:]
    good = LogisticRegression().fit(train[INPUTS], train.target)
    weak = LogisticRegression().fit(train[["b"]].assign(a=0.0)[INPUTS], train.target)
    classes = list(good.classes_)
    report = run(gates(), weak, good, test, task="multiclass", classes=classes)
    assert not report.passed and report.comparison["metric"] == "log_loss"
    assert report.comparison["challenger"] == pytest.approx(
        log_loss(test.target, weak.predict_proba(test[INPUTS]), labels=classes))
    assert run(gates(), good, weak, test, task="multiclass", classes=classes).passed


def test_threshold_gates_score_the_challenger_on_the_rows(data, models):
    _, test = data
    good, _ = models
    report = run(gates(metrics=["roc_auc >= 0.8", "accuracy > 0.99"]), good, None, test)
    auc = roc_auc_score(test.target == "yes", good.predict_proba(test[INPUTS])[:, 1])
    first, second = report.gates[:2]
    assert first.passed and first.observed == pytest.approx(auc) and first.limit == 0.8
    assert not second.passed and second.observed == pytest.approx(
        np.mean(good.predict(test[INPUTS]) == test.target))
    assert not report.passed and [g.name for g in report.failed] == ["metric accuracy > 0.99"]


def test_a_metric_undefined_on_one_class_rows_fails_with_the_reason(data, models):
    _, test = data
    good, weak = models
    one_class = test[test.target == "yes"]
    report = run(gates(metrics=["roc_auc >= 0.5"]), good, weak, one_class)
    for result in report.gates:
        assert not result.passed and result.decided_by == "error"
        assert "single class" in result.detail
    empty = run(gates(metrics=["accuracy >= 0.5"]), good, weak, test.iloc[:0])
    assert all("no rows" in g.detail for g in empty.gates)


def test_regression_gates(data):
    train, test = data
    model = LinearRegression().fit(train[INPUTS], train.a * 3 + train.b)
    rows = test.assign(target=test.a * 3 + test.b + 0.1)
    worse = LinearRegression().fit(train[["b"]].assign(a=0.0)[INPUTS], train.a * 3 + train.b)
    report = run(gates(metrics=["rmse <= 0.2"], beats_champion={"min_delta": 0.5}), model,
                 worse, rows, task="regression", classes=[])
    assert report.passed, report.gates
    assert report.gates[0].observed == pytest.approx(0.1)
    assert report.comparison["delta"] == pytest.approx(
        np.sqrt(np.mean((rows.target - worse.predict(rows[INPUTS])) ** 2)) - 0.1)
    refused = run(gates(), worse, model, rows, task="regression", classes=[])
    assert not refused.passed


def test_fairness_gate_measures_the_gap_between_groups(data, models):
    _, test = data
    good, _ = models
    predicted = good.predict(test[INPUTS]) == "yes"
    truth = test.target == "yes"
    rates = {}
    for group in ("f", "m"):
        mask = test.sex == group
        rates[group] = (predicted[mask & truth].mean(), predicted[mask & ~truth].mean())
    expected = max(abs(rates["f"][0] - rates["m"][0]), abs(rates["f"][1] - rates["m"][1]))
    loose = run(gates(fairness={"max": 1.0}), good, None, test, sensitive=["sex"])
    result = gate(loose, "fairness")
    assert result.passed and result.observed == pytest.approx(expected)
    assert result.name == "fairness equalized_odds_difference [sex]"
    strict = run(gates(fairness={"max": 0.0, "sensitive": ["sex"]}), good, None, test)
    assert not strict.passed and "above max 0" in gate(strict, "fairness").detail
    missing = run(gates(fairness={"max": 0.5, "sensitive": ["race"]}), good, None, test)
    assert "lack the sensitive column 'race'" in gate(missing, "fairness").detail


def test_latency_gate_fails_a_model_slower_than_the_budget(data, models):
    _, test = data
    good, _ = models

    class Slow:  # 5 ms a call
        classes_ = good.classes_

        def predict(self, frame):
            time.sleep(0.005)
            return good.predict(frame)

        def predict_proba(self, frame):
            return good.predict_proba(frame)

    report = run(gates(latency_p99_ms=1), Slow(), None, test, latency_calls=20)
    result = gate(report, "latency")
    assert not result.passed and result.observed >= 5 and result.decided_by == "measured"
    assert "over 20 single-row predict calls" in result.detail and "p50" in result.detail
    relaxed = run(gates(latency_p99_ms=60_000), good, None, test, latency_calls=20)
    assert gate(relaxed, "latency").passed


def test_size_gate(data, models):
    _, test = data
    good, _ = models
    small = gate(run(gates(max_size_mb=1), good, None, test, size_bytes=999_999), "max_size")
    big = gate(run(gates(max_size_mb=1), good, None, test, size_bytes=1_000_001), "max_size")
    unknown = gate(run(gates(max_size_mb=1), good, None, test), "max_size")
    assert small.passed and not big.passed and big.observed == pytest.approx(1.000001)
    assert not unknown.passed and "unknown" in unknown.detail


@pytest.fixture
def contract():
    return Contract(dataset="credit", target="target", columns={
        "a": ColumnRule(type="number", nullable=False),
        "b": ColumnRule(type="number"),
        "sex": ColumnRule(type="string", allowed=["f", "m"]),
        "target": ColumnRule(type="string", allowed=["no", "yes"]),
    })


def test_contract_gate_passes_rows_that_keep_the_contract(data, models, contract):
    _, test = data
    good, _ = models
    result = gate(run(gates(data_contract=True), good, None, test, contract=contract),
                  "data_contract")
    assert result.passed and result.decided_by == "validation"
    assert f"{len(test)} rows pass it" in result.detail


@pytest.mark.parametrize("change,words", [
    (lambda rows: rows.assign(a=rows.a.astype(str).where(rows.index > 3, "n/a")),
     "input column 'a' holds string values, the contract says number"),
    (lambda rows: rows.drop(columns=["b"]), "column 'b' is missing from the data"),
    (lambda rows: rows.assign(sex=rows.sex.where(rows.index > 0, "x")),
     "values outside the 2 allowed categories"),
    (lambda rows: rows.assign(a=rows.a.where(rows.index > 0, np.nan)),
     "missing values in a column the contract says is never missing"),
])
def test_contract_gate_fails_rows_that_break_it(data, models, contract, change, words):
    _, test = data
    good, _ = models

    class ByName:  # predicts whatever the rows hold: the gate is about the data
        classes_ = good.classes_

        def predict_proba(self, frame):
            return np.tile([0.5, 0.5], (len(frame), 1))

    report = run(gates(data_contract=True), ByName(), None, change(test), contract=contract)
    result = gate(report, "data_contract")
    assert not result.passed and words in result.detail, result.detail


def test_contract_gate_needs_the_input_columns_in_the_contract_and_a_contract(data, models,
                                                                             contract):
    _, test = data
    good, _ = models
    narrow = contract.model_copy(update={"columns": {
        k: v for k, v in contract.columns.items() if k != "b"}})
    result = gate(run(gates(data_contract=True), good, None, test, contract=narrow),
                  "data_contract")
    assert not result.passed and "input column 'b' is not in the contract" in result.detail
    none = gate(run(gates(data_contract=True), good, None, test), "data_contract")
    assert not none.passed and "no data contract" in none.detail


def test_a_model_that_fails_to_predict_fails_its_gates_without_its_message(data):
    _, test = data

    class Broken:
        classes_ = np.array(CLASSES, dtype=object)

        def predict_proba(self, frame):
            raise ValueError("could not convert 'ann@example.org'")

    report = run(gates(metrics=["roc_auc >= 0.5"]), Broken(), None, test)
    result = report.gates[0]
    assert not result.passed and "failed to predict on these rows (ValueError)" in result.detail
    assert "ann@" not in json.dumps(report.to_json())


# -- the report's views -------------------------------------------------------------------------

def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_json_is_strict_even_with_nan_and_infinity(data, models):
    _, test = data
    good, weak = models
    report = run(gates(metrics=["roc_auc >= 0.5"]), good, weak, test)
    loaded = _strict(gate_report_json(report))
    assert loaded["passed"] is True and loaded["rows"]["count"] == len(test)
    assert loaded["comparison"]["metric"] == "roc_auc" and len(loaded["gates"]) == 2
    odd = GateReport(passed=False, gates=[GateResult("x", False, float("nan"), float("inf"),
                                                     "d", "error")],
                     rows={"count": 0, "note": "n"})
    assert _strict(gate_report_json(odd))["gates"][0]["observed"] is None


HOSTILE = "<script>alert(1)</script>[bold]x[/]\x1b[2J"


def test_html_escapes_user_text(data, models):
    _, test = data
    good, _ = models
    rows = test.assign(**{HOSTILE: test.sex})
    report = run(gates(fairness={"max": 1.0, "sensitive": [HOSTILE]}), good, None, rows,
                 rows_note="<b>rows</b>")
    page = gate_report_html(report)
    assert "<script>" not in page and "<b>rows</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.startswith("<section") and page.endswith("</section>")


def test_terminal_report_prints_user_text_literally(data, models):
    from rich.console import Console

    _, test = data
    good, weak = models
    rows = test.assign(**{HOSTILE: test.sex})
    report = run(gates(fairness={"max": 1.0, "sensitive": [HOSTILE]}), weak, good, rows)
    out = io.StringIO()
    print_gate_report(Console(file=out, width=300, color_system=None), report)
    text = out.getvalue()
    assert "REFUSED" in text and "[bold]x[/]" in text and "\x1b" not in text
    assert "\\x1b[2J" in text and "champion comparison: roc_auc" in text
