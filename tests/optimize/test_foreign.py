"""Foreign ONNX models (torch.onnx, hand-made graphs) wrapped into the loopml contract.

The torch cases train a small network here, export it with ``torch.onnx.export`` and check
that the wrapped model answers as torch itself does. torch is skipped where absent unless
LOOPML_REQUIRE_TORCH=1 (CI), which turns a missing torch into a failure.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopml.errors import InvalidInput
from loopml.optimize.contract import labels_from, signature_of
from loopml.optimize.foreign import (
    ImportSignature,
    adapt_foreign,
    load_import_signature,
    signature_from_contract,
)

FEATURES = 4


def _torch() -> Any:
    if os.environ.get("LOOPML_REQUIRE_TORCH") != "1":
        return pytest.importorskip("torch", reason="torch is not installed (make test adds it)")
    import torch

    return torch


def _session(blob: bytes) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(blob, providers=["CPUExecutionProvider"])


def _runtime(blob: bytes) -> Any:
    from loopml.optimize.runtime import OnnxModel

    return OnnxModel.from_bytes(blob)


def _frame(X: np.ndarray, columns: list[str]) -> Any:
    import pandas as pd

    # other column order and an extra column: the runtime picks by name
    frame = pd.DataFrame(X, columns=columns)
    return frame[columns[::-1]].assign(extra="ignored")


def _columns_feed(X: np.ndarray) -> dict[str, np.ndarray]:
    return {f"x{i}": X[:, [i]].astype(np.float64) for i in range(X.shape[1])}


def _data(task: str, rows: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, FEATURES))
    score = X @ np.array([1.5, -2.0, 0.7, 0.0]) + 0.3 * X[:, 0] * X[:, 1]
    if task == "regression":
        return X, score + rng.normal(scale=0.1, size=rows)
    if task == "binary":
        return X, (score > 0).astype(np.int64)
    return X, np.digitize(score, [-1.0, 1.0]).astype(np.int64)


def _trained(task: str, width: int, *, softmax: bool = False) -> tuple[Any, np.ndarray, bytes]:
    """Return a torch network trained on generated data, its test rows and its ONNX export."""
    torch = _torch()
    torch.manual_seed(0)
    X, y = _data(task)
    layers = [torch.nn.Linear(FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, width)]
    if softmax:
        layers.append(torch.nn.Softmax(dim=1))
    net = torch.nn.Sequential(*layers)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    inputs = torch.tensor(X[:250], dtype=torch.float32)
    if task == "regression":
        target = torch.tensor(y[:250], dtype=torch.float32).reshape(-1, 1)
        loss_fn = torch.nn.MSELoss()
    elif width == 1:
        target = torch.tensor(y[:250], dtype=torch.float32).reshape(-1, 1)
        loss_fn = torch.nn.BCEWithLogitsLoss()
    else:
        target = torch.tensor(y[:250], dtype=torch.int64)
        loss_fn = torch.nn.NLLLoss() if softmax else torch.nn.CrossEntropyLoss()
    for _ in range(60):
        optimizer.zero_grad()
        out = net(inputs)
        loss = loss_fn(torch.log(out + 1e-9) if softmax else out, target)
        loss.backward()
        optimizer.step()
    net.eval()
    return net, X[250:], _export(net)


def _export(net: Any, *, dynamic: bool = True) -> bytes:
    torch = _torch()
    buffer = io.BytesIO()
    axes = {"features": {0: "batch"}, "scores": {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        # torch 2.9+ names the TorchScript exporter legacy; the dynamo one needs onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (torch.zeros(2, FEATURES),), buffer, dynamo=False,
                          input_names=["features"], output_names=["scores"],
                          dynamic_axes=axes, opset_version=17)
    return buffer.getvalue()


def _torch_answer(net: Any, X: np.ndarray) -> np.ndarray:
    torch = _torch()
    with torch.no_grad():
        return net(torch.tensor(X, dtype=torch.float32)).numpy()


def _sig(task: str, *, kind: str | None = None, classes: list[Any] | None = None,
         count: int = FEATURES, **extra: Any) -> ImportSignature:
    return ImportSignature.model_validate({
        "task": task, "classes": classes or [], "output_kind": kind,
        "columns": {f"feature {i}, raw": "number" for i in range(count)}, **extra})


def sig_names(sig: ImportSignature) -> list[str]:
    return [c.name for c in sig.columns]


def test_binary_single_logit_gets_a_sigmoid_and_matches_torch():
    torch = _torch()
    net, X, blob = _trained("binary", 1)
    sig = _sig("binary", kind="logits", classes=["stay", "churn"], threshold=0.4)
    wrapped = adapt_foreign(blob, sig)
    (proba,) = _session(wrapped).run(["probabilities"], _columns_feed(X))
    expected = torch.sigmoid(torch.tensor(_torch_answer(net, X))).numpy().ravel()
    assert proba.dtype == np.float32 and proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba[:, 1], expected, atol=1e-5)
    np.testing.assert_allclose(proba[:, 0], 1 - expected, atol=1e-5)
    signature = signature_of(_onnx(wrapped))
    assert signature["source"] == "imported" and signature["threshold"] == 0.4
    assert [c["name"] for c in signature["columns"]] == list(sig_names(sig))
    labels = labels_from(proba, signature)
    assert list(labels) == ["churn" if p >= 0.4 else "stay" for p in expected]
    assert {"churn", "stay"} == set(labels)  # the network learned something of both


def test_multiclass_logits_get_a_softmax_and_match_torch():
    torch = _torch()
    net, X, blob = _trained("multiclass", 3)
    wrapped = adapt_foreign(blob, _sig("multiclass", kind="logits", classes=[10, 20, 30]))
    (proba,) = _session(wrapped).run(["probabilities"], _columns_feed(X))
    expected = torch.softmax(torch.tensor(_torch_answer(net, X)), dim=1).numpy()
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    labels = labels_from(proba, signature_of(_onnx(wrapped)))
    assert list(labels) == list(np.array([10, 20, 30])[expected.argmax(axis=1)])
    # loopml's runtime takes the imported model like its own, by column names
    runtime = _runtime(wrapped)
    frame = _frame(X, runtime.input_columns)
    np.testing.assert_allclose(runtime.predict_proba(frame), expected, atol=1e-5)
    assert list(runtime.predict(frame)) == list(labels)


def test_probabilities_pass_through_and_two_logits_work_for_binary():
    torch = _torch()
    net, X, blob = _trained("multiclass", 3, softmax=True)
    wrapped = adapt_foreign(blob, _sig("multiclass", kind="probabilities",
                                       classes=["a", "b", "c"]))
    (proba,) = _session(wrapped).run(["probabilities"], _columns_feed(X))
    np.testing.assert_allclose(proba, _torch_answer(net, X), atol=1e-5)

    net, X, blob = _trained("binary", 2)
    wrapped = adapt_foreign(blob, _sig("binary", kind="logits", classes=[False, True]))
    (proba,) = _session(wrapped).run(["probabilities"], _columns_feed(X))
    expected = torch.softmax(torch.tensor(_torch_answer(net, X)), dim=1).numpy()
    np.testing.assert_allclose(proba, expected, atol=1e-5)


def test_regression_value_matches_torch():
    net, X, blob = _trained("regression", 1)
    wrapped = adapt_foreign(blob, _sig("regression", target="price"))
    session = _session(wrapped)
    assert [i.name for i in session.get_inputs()] == [f"x{i}" for i in range(FEATURES)]
    assert {i.type for i in session.get_inputs()} == {"tensor(double)"}
    (value,) = session.run(["value"], _columns_feed(X))
    assert value.dtype == np.float32 and value.shape == (len(X), 1)
    np.testing.assert_allclose(value, _torch_answer(net, X), atol=1e-5)
    runtime = _runtime(wrapped)
    np.testing.assert_allclose(runtime.predict(_frame(X, runtime.input_columns)),
                               _torch_answer(net, X).ravel(), atol=1e-5)
    signature = signature_of(_onnx(wrapped))
    assert signature["outputs"] == {"value": "value"} and signature["target"] == "price"


def test_wrong_width_and_unknown_names_are_refused():
    torch = _torch()
    blob = _export(torch.nn.Sequential(torch.nn.Linear(FEATURES, 1)))
    with pytest.raises(InvalidInput, match=r"'features' takes 4 features.*3 column"):
        adapt_foreign(blob, _sig("binary", kind="logits", classes=[0, 1], count=3))
    with pytest.raises(InvalidInput, match=r"no output 'proba' \(its outputs: 'scores'\)"):
        adapt_foreign(blob, _sig("binary", kind="logits", classes=[0, 1], output="proba"))
    with pytest.raises(InvalidInput, match=r"no input 'x' \(its inputs: 'features'\)"):
        adapt_foreign(blob, _sig("binary", kind="logits", classes=[0, 1], input="x"))
    with pytest.raises(InvalidInput, match=r"'scores' has one column; a multiclass model needs"):
        adapt_foreign(blob, _sig("multiclass", kind="logits", classes=[0, 1, 2]))


def test_fixed_batch_size_is_refused_with_the_fix():
    torch = _torch()
    net = torch.nn.Sequential(torch.nn.Linear(FEATURES, 1))
    blob = _export(net, dynamic=False)
    with pytest.raises(InvalidInput, match=r"fixed batch size of 2 rows.*dynamic_axes"):
        adapt_foreign(blob, _sig("regression"))


# Hand-made graphs: no torch needed.


def _onnx(blob: bytes) -> Any:
    import onnx

    return onnx.load_from_string(blob)


def _matrix_graph(width: int | None = 3, *, out_width: int | None = 2, opset: int = 17,
                  rows: int | str = "N", element: int | None = None) -> bytes:
    """Return a graph ``scores = features @ W`` with the given declared shapes."""
    from onnx import TensorProto, helper, numpy_helper

    element = TensorProto.FLOAT if element is None else element
    weights = np.arange(1, 3 * 2 + 1, dtype=np.float32).reshape(3, 2) / 10
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "W"], ["scores"])], "matrix",
        [helper.make_tensor_value_info("features", element, [rows, width])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [rows, out_width])],
        initializer=[numpy_helper.from_array(weights, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def test_hand_made_graph_with_float_matrix_matches_numpy():
    blob = _matrix_graph()
    wrapped = adapt_foreign(blob, _sig("multiclass", kind="logits", classes=["x", "y"], count=3))
    X = np.array([[1.0, 2.0, 3.0], [0.5, np.nan, -1.0]])
    (proba,) = _session(wrapped).run(["probabilities"], _columns_feed(X))
    scores = X @ (np.arange(1, 7).reshape(3, 2) / 10)
    expected = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba[0], expected[0], atol=1e-6)
    assert np.isnan(proba[1]).all()  # missing values reach the foreign graph as NaN


def test_graph_with_one_input_per_column_takes_categories_and_datetimes():
    import onnx
    from onnx import TensorProto, helper

    # colour (string [N, 1]) through a LabelEncoder, when (double [N], seconds) scaled,
    # joined into two logits.
    nodes = [
        helper.make_node("LabelEncoder", ["colour"], ["code"], domain="ai.onnx.ml",
                         keys_strings=["red", "green"], values_floats=[1.0, 2.0],
                         default_float=0.0),
        helper.make_node("Cast", ["when"], ["when_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["when_f", "axis1"], ["when_col"]),
        helper.make_node("Mul", ["when_col", "scale"], ["when_scaled"]),
        helper.make_node("Concat", ["code", "when_scaled"], ["logits"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "per-column",
        [helper.make_tensor_value_info("colour", TensorProto.STRING, ["N", 1]),
         helper.make_tensor_value_info("when", TensorProto.DOUBLE, ["N"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        initializer=[helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
                     helper.make_tensor("scale", TensorProto.FLOAT, [], [1e-9])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    sig = ImportSignature(task="binary", classes=["a", "b"], output_kind="logits",
                          columns=[{"name": "when", "type": "datetime"},
                                   {"name": "colour", "type": "category"}])
    wrapped = adapt_foreign(model.SerializeToString(), sig)
    session = _session(wrapped)
    assert [i.type for i in session.get_inputs()] == ["tensor(double)", "tensor(string)"]
    when = np.array([[1.7e9], [0.0], [2e9]])
    colour = np.array([["green"], ["blue"], [""]], dtype=object)
    (proba,) = session.run(["probabilities"], {"x0": when, "x1": colour})
    logits = np.column_stack([[2.0, 0.0, 0.0], when.ravel() * 1e-9])
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    assert onnx.load_from_string(wrapped).graph.input[1].name == "x1"


def test_a_label_output_first_points_to_the_scores():
    from onnx import TensorProto, helper, numpy_helper

    # skl2onnx's layout: an int64 label first, the scores second
    weights = numpy_helper.from_array(np.eye(3, 2, dtype=np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "W"], ["scores"]),
         helper.make_node("ArgMax", ["scores"], ["label"], axis=1, keepdims=0)], "labelled",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2])],
        initializer=[weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    blob = model.SerializeToString()
    sig = _sig("binary", kind="probabilities", classes=[0, 1], count=3)
    with pytest.raises(InvalidInput, match=r"output 'label' is tensor\(int64\).*\('scores'\) "
                                           r"with `output:`"):
        adapt_foreign(blob, sig)
    chosen = adapt_foreign(blob, sig.model_copy(update={"output": "scores"}))
    X = np.array([[0.2, 0.7, 5.0]])
    (proba,) = _session(chosen).run(["probabilities"], _columns_feed(X))
    np.testing.assert_allclose(proba, [[0.2, 0.7]], atol=1e-7)


def test_text_columns_cannot_enter_a_numeric_matrix():
    sig = ImportSignature(task="multiclass", classes=[0, 1], output_kind="logits",
                          columns={"a": "number", "city": "category", "c": "number"})
    with pytest.raises(InvalidInput, match=r"column 'city' is a category.*one input per column"):
        adapt_foreign(_matrix_graph(), sig)


@pytest.mark.parametrize(("blob", "pattern"), [
    (b"", r"empty"),
    (b"\x08\x07garbage that is no protobuf\xff\xff", r"not an ONNX model"),
    (_matrix_graph(opset=5), r"opset 5; loopml runs opset 7 or newer"),
    (_matrix_graph(element=7), r"input 'features' is tensor\(int64\)"),
    (_matrix_graph(rows=8), r"fixed batch size of 8 rows"),
    (_matrix_graph(out_width=5), r"'scores' has 5 columns, but the signature lists 2 classes"),
])
def test_unusable_models_are_refused_with_the_reason(blob, pattern):
    with pytest.raises(InvalidInput, match=pattern):
        adapt_foreign(blob, _sig("binary", kind="logits", classes=[0, 1], count=3))


def test_shape_the_graph_does_not_declare_is_caught_by_a_test_run():
    # Declared width unknown, real width 2: a 3-class signature fails on the test rows.
    blob = _matrix_graph(out_width=None)
    with pytest.raises(InvalidInput, match=r"two test rows with shape \[2, 2\], expected \[2, 3\]"):
        adapt_foreign(blob, _sig("multiclass", kind="logits", classes=[0, 1, 2], count=3))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sig.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_signature_file_reads_both_column_forms(tmp_path):
    sig = load_import_signature(_write(tmp_path, """
task: binary
target: churned
classes: [no, "yes"]
threshold: 0.3
output_kind: logits
columns:
  age (years): number
  "colour, main": category
  signed up: datetime
"""))
    assert [(c.name, c.type) for c in sig.columns] == [
        ("age (years)", "number"), ("colour, main", "category"), ("signed up", "datetime")]
    assert sig.classes == [False, "yes"]  # YAML 1.1: a bare no is false; quote to keep text
    listed = load_import_signature(_write(tmp_path, """
task: regression
columns:
  - {name: x, type: number}
"""))
    assert listed.answer == "value" and listed.columns[0].name == "x"


@pytest.mark.parametrize(("text", "pattern"), [
    ("task: regression\ncolums: {a: number}\n", r"sig\.yaml: .*colums: Extra inputs"),
    ("task: regression\ncolumns: [{name: a, type: number, unit: cm}]\n",
     r"sig\.yaml: columns\.0\.unit: Extra inputs"),
    ("task: regression\ncolumns: {a: text}\n", r"sig\.yaml: columns\.0\.type: Input should be"),
    ("task: binary\nclasses: [0, 1]\ncolumns: {a: number}\n", r"sig\.yaml: output_kind: required"),
    ("task: binary\nclasses: [0]\noutput_kind: logits\ncolumns: {a: number}\n",
     r"classes: a binary model needs exactly 2"),
    ("task: regression\ncolumns: {yes: number}\n", r"the column name True is not text"),
    ("task: regression\ntarget: a\ncolumns: {a: number}\n", r"target 'a' cannot be an input"),
    ("- just a list\n", r"sig\.yaml: expected a mapping"),
    ("task: [unclosed\n", r"sig\.yaml: not valid YAML"),
])
def test_bad_signature_files_name_the_file_and_key(tmp_path, text, pattern):
    with pytest.raises(InvalidInput, match=pattern) as caught:
        load_import_signature(_write(tmp_path, text))
    assert "\n" not in str(caught.value)


def test_missing_signature_file_is_named(tmp_path):
    with pytest.raises(InvalidInput, match=r"nope\.yaml: no such signature file"):
        load_import_signature(tmp_path / "nope.yaml")


def test_signature_from_a_data_contract_maps_types_and_drops_the_target():
    from loopml.data.contract import ColumnRule, Contract

    contract = Contract(dataset="credit", target="default", columns={
        "age": ColumnRule(type="integer"), "income": ColumnRule(type="number"),
        "default": ColumnRule(type="boolean"), "owner": ColumnRule(type="boolean"),
        "city": ColumnRule(type="string"), "opened": ColumnRule(type="datetime")})
    sig = signature_from_contract(contract, task="binary", classes=[False, True],
                                  output_kind="probabilities")
    assert sig.target == "default"
    assert [(c.name, c.type) for c in sig.columns] == [
        ("age", "number"), ("income", "number"), ("owner", "number"), ("city", "category"),
        ("opened", "datetime")]
    with pytest.raises(InvalidInput, match=r"import signature from dataset 'credit': "
                                           r"output_kind: required"):
        signature_from_contract(contract, task="binary", classes=[False, True])
    odd = Contract(dataset="d", columns={"blob": ColumnRule(type="other")})
    with pytest.raises(InvalidInput, match=r"column 'blob' of dataset 'd' has type 'other'"):
        signature_from_contract(odd, task="regression")


def test_skl2onnx_classifier_imports_once_its_zipmap_is_off():
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = _data("multiclass", rows=200, seed=4)
    fitted = LogisticRegression(max_iter=500).fit(X, y)
    sig = _sig("multiclass", kind="probabilities", classes=[0, 1, 2],
               output="output_probability")
    zipped = to_onnx(fitted, X[:1].astype(np.float32)).SerializeToString()
    with pytest.raises(InvalidInput, match=r"'output_probability' is a sequence, not a tensor"
                                           r".*zipmap': False"):
        adapt_foreign(zipped, sig)
    plain = to_onnx(fitted, X[:1].astype(np.float32), options={"zipmap": False})
    # its scores are then named "probabilities", like the contract's own output
    wrapped = adapt_foreign(plain.SerializeToString(),
                            sig.model_copy(update={"output": "probabilities"}))
    (proba,) = _session(wrapped).run(["probabilities"], _columns_feed(X[:50]))
    np.testing.assert_allclose(proba, fitted.predict_proba(X[:50]), atol=1e-5)


def test_a_category_column_needs_a_string_input():
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Concat", ["a", "b"], ["value"], axis=1)], "two",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 1]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N", 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    sig = ImportSignature(task="regression", columns={"a": "number", "b": "category"})
    with pytest.raises(InvalidInput, match=r"input 'b' \(column 'b', a category\) takes "
                                           r"tensor\(float\); a category column needs a string"):
        adapt_foreign(model.SerializeToString(), sig)
    sig = ImportSignature(task="regression", columns={"a": "number", "c": "number"})
    with pytest.raises(InvalidInput, match=r"has 2 inputs \('a', 'b'\); set `input:`"):
        adapt_foreign(model.SerializeToString(), sig)
