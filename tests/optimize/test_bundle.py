"""Edge bundles: the zip's contents, and its predict.py scoring CSV files like loopml does.

The reference for every prediction is the same ONNX model run in this process on feeds made
by loopml's own (pandas) contract code. The slow tests run predict.py in a fresh virtual
environment that holds only numpy and onnxruntime from PyPI, which also proves the script
needs nothing else.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopml.errors import AlreadyExists, InvalidInput
from loopml.optimize import bundle_predict
from loopml.optimize.bundle import write_bundle
from loopml.optimize.contract import input_feeds, labels_from, make_signature, signature_of

AGE, COLOUR, SIGNED, CARD = "age (years)", "colour, main", "signup ✓ date", 'has "card"'
COLUMNS = [(AGE, "number"), (COLOUR, "category"), (SIGNED, "datetime"), (CARD, "number")]
CLASSES = {"binary": ["no", "yes"], "multiclass": [1, 2, 3], "regression": []}
TASKS = list(CLASSES)

# Rows as a person would save them: other column order, an extra column, missing values
# written several ways, an unseen category, true/false in a number column, a comma and a
# quote inside values.
CSV_ROWS = [
    ["id", CARD, SIGNED, "notes, free text", COLOUR, AGE],
    ["1", "True", "2024-03-01T10:00:00", "first, \"quoted\"", "red", "42"],
    ["2", "False", "", "", "green", "NA"],
    ["3", "", "2023-12-31T23:59:59", "x", "purple", "17.5"],
    ["4", "True", "2025-06-30T00:00:00", "", "", "nan"],
    ["5", "False", "2024-01-15T08:30:00", "y", "3", ""],
    ["6", "True", "2024-02-29T12:00:00", "", "3.0", "-3e1"],
]


def _contract_model(task: str) -> bytes:
    """Return a small ONNX model following the loopml contract (numbers, a category, a date)."""
    import onnx
    from onnx import TensorProto, helper

    def const(name: str, value: float, kind: int = TensorProto.DOUBLE) -> Any:
        return helper.make_tensor(name, kind, [], [value])

    nodes = [
        helper.make_node("IsNaN", ["x0"], ["age_na"]),
        helper.make_node("Where", ["age_na", "zero", "x0"], ["age"]),
        helper.make_node("Mul", ["age", "w_age"], ["s_age"]),
        # "3" and "3.0" are the same category, as the contract asks of a graph
        helper.make_node("LabelEncoder", ["x1"], ["colour_f"], domain="ai.onnx.ml",
                         keys_strings=["red", "green", "3", "3.0"],
                         values_floats=[1.0, -1.0, 0.5, 0.5], default_float=0.0),
        helper.make_node("Cast", ["colour_f"], ["s_colour"], to=TensorProto.DOUBLE),
        helper.make_node("IsNaN", ["x2"], ["date_na"]),
        helper.make_node("Where", ["date_na", "epoch0", "x2"], ["date"]),
        helper.make_node("Sub", ["date", "epoch0"], ["date_shift"]),
        helper.make_node("Mul", ["date_shift", "w_date"], ["s_date"]),
        helper.make_node("IsNaN", ["x3"], ["card_na"]),
        helper.make_node("Where", ["card_na", "zero", "x3"], ["card"]),
        helper.make_node("Mul", ["card", "w_card"], ["s_card"]),
        helper.make_node("Sum", ["s_age", "s_colour", "s_date", "s_card", "bias"], ["score64"]),
        helper.make_node("Cast", ["score64"], ["score"], to=TensorProto.FLOAT),
    ]
    initializers = [const("zero", 0.0), const("w_age", 0.04), const("epoch0", 1.7e9),
                    const("w_date", 3e-8), const("w_card", 0.8), const("bias", -1.0)]
    if task == "binary":
        initializers.append(const("one", 1.0, TensorProto.FLOAT))
        nodes += [helper.make_node("Sigmoid", ["score"], ["p"]),
                  helper.make_node("Sub", ["one", "p"], ["q"]),
                  helper.make_node("Concat", ["q", "p"], ["probabilities"], axis=1)]
        output = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])
    elif task == "multiclass":
        initializers += [helper.make_tensor("slopes", TensorProto.FLOAT, [1, 3], [1, -1, .3]),
                         helper.make_tensor("shifts", TensorProto.FLOAT, [1, 3], [0, .2, .1])]
        nodes += [helper.make_node("Mul", ["score", "slopes"], ["spread"]),
                  helper.make_node("Add", ["spread", "shifts"], ["logits"]),
                  helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
        output = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])
    else:
        nodes.append(helper.make_node("Identity", ["score"], ["value"]))
        output = helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N", 1])
    inputs = [helper.make_tensor_value_info(
        f"x{i}", TensorProto.STRING if kind == "category" else TensorProto.DOUBLE, ["N", 1])
        for i, (_, kind) in enumerate(COLUMNS)]
    graph = helper.make_graph(nodes, "contract", inputs, [output], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    signature = make_signature(task=task, columns=COLUMNS, classes=CLASSES[task],
                               threshold=0.45, target="outcome")
    from loopml.optimize.contract import with_signature

    with_signature(model, signature)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _session(blob: bytes) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(blob, providers=["CPUExecutionProvider"])


def _reference(blob: bytes, path: Path) -> tuple[list[str], np.ndarray]:
    """Return the labels (as text) and the scores loopml's runtime gives for ``path``."""
    import onnx
    import pandas as pd

    from loopml.optimize.runtime import OnnxModel

    signature = signature_of(onnx.load_from_string(blob))
    frame = pd.read_csv(path, dtype={COLOUR: str, SIGNED: str})
    model = OnnxModel.from_bytes(blob)
    if signature["task"] == "regression":
        return [], model.predict(frame).reshape(-1, 1)
    proba = model.predict_proba(frame)
    # the runtime's labels agree with the contract's rule on the raw output
    (answer,) = _session(blob).run(None, input_feeds(frame, signature))
    assert list(model.predict(frame)) == list(labels_from(answer, signature))
    return [str(label) for label in model.predict(frame)], proba


def _read_output(path_or_text: Path | str) -> tuple[list[str], list[dict[str, str]]]:
    text = path_or_text.read_text(encoding="utf-8") if isinstance(path_or_text, Path) \
        else path_or_text
    reader = csv.DictReader(text.splitlines())
    return list(reader.fieldnames or []), list(reader)


def _assert_same(blob: bytes, source: Path, header: list[str], rows: list[dict[str, str]],
                 task: str) -> None:
    labels, answer = _reference(blob, source)
    assert len(rows) == len(labels or answer)
    if task == "regression":
        assert header == ["prediction"]
        got = np.array([float(r["prediction"]) for r in rows])
        np.testing.assert_allclose(got, answer.ravel(), rtol=0, atol=1e-6)
        return
    names = [f"probability_{c}" for c in CLASSES[task]]
    assert header == ["prediction", *names]
    assert [r["prediction"] for r in rows] == labels
    got = np.array([[float(r[n]) for n in names] for r in rows])
    np.testing.assert_allclose(got, answer, rtol=0, atol=1e-6)


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Any:
    """Return a function: write the bundle of ``task``, unzip it, return (blob, folder)."""

    def make(task: str) -> tuple[bytes, Path]:
        blob = _contract_model(task)
        path = write_bundle(blob, tmp_path / f"{task}.zip", name="credit risk", version="3")
        folder = tmp_path / task
        with zipfile.ZipFile(path) as archive:
            archive.extractall(folder)
        return blob, folder

    return make


ODD = {"age": "age (years)", "income": "income, €", "employment": 'employment "type"',
       "city": "city ✓"}


def _credit(rows: int, seed: int) -> Any:
    import pandas as pd

    from loopml.demo_data import make_credit

    frame = make_credit(rows, seed=seed).rename(columns=ODD)
    days = np.random.default_rng(seed).integers(0, 1500, rows)
    frame["opened on"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D")
    return frame


@pytest.fixture(scope="module")
def trained() -> tuple[Any, bytes]:
    """Return a loopml model (LightGBM, numbers, categories, a date; odd names) and its ONNX."""
    from sklearn.pipeline import Pipeline

    from loopml.optimize.export import to_onnx
    from loopml.train.features import FeatureSet, build_preprocessor
    from loopml.train.model import TrainedModel
    from loopml.train.trainers import get_trainer

    frame = _credit(600, 3)
    features = FeatureSet(numeric=[ODD["age"], ODD["income"], "debt"],
                          categorical=[ODD["employment"], ODD["city"]], datetime=["opened on"])
    trainer = get_trainer("lightgbm")
    params = {**trainer.defaults("binary"), "n_estimators": 20}
    pipeline = Pipeline([
        ("features", build_preprocessor(features, frame, tree_based=True)),
        ("model", trainer.build(params, task="binary", seed=0)),
    ]).fit(frame[features.columns], frame["default"])
    model = TrainedModel(pipeline, "binary", "default", features.columns, [0, 1], 0.3,
                         "lightgbm")
    return model, to_onnx(model)


def _trained_csv(tmp_path: Path) -> Path:
    """Write rows the model has not seen, with gaps and an unseen city, as a user's CSV."""
    frame = _credit(80, 9)
    frame.loc[3, ODD["income"]] = np.nan
    frame.loc[5, ODD["city"]] = "Bordeaux"
    frame.loc[7, ODD["employment"]] = np.nan
    frame.loc[9, "opened on"] = None
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    return path


def _assert_like_loopml(model: Any, blob: bytes, source: Path, output: str | Path) -> None:
    """The output equals the native model's labels and the runtime's probabilities."""
    import pandas as pd

    from loopml.optimize.runtime import OnnxModel

    frame = pd.read_csv(source, parse_dates=["opened on"])
    header, rows = _read_output(output)
    assert header == ["prediction", "probability_0", "probability_1"]
    assert [r["prediction"] for r in rows] == [str(v) for v in model.predict(frame)]
    got = np.array([[float(r["probability_0"]), float(r["probability_1"])] for r in rows])
    np.testing.assert_allclose(got, OnnxModel.from_bytes(blob).predict_proba(frame),
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(got, model.predict_proba(frame), rtol=0, atol=1e-4)


# In this process: contents, refusals, predict.py's logic.


def test_bundle_holds_the_model_signature_readme_and_script(tmp_path):
    import onnx

    blob = _contract_model("binary")
    card = {"run_id": "abc123", "data": {"ref": "credit@2"},
            "evaluation": {"rows": 120, "metrics": {"roc_auc": 0.91234, "f1": None}}}
    path = write_bundle(blob, tmp_path / "b.zip", name="credit\x1b[31m risk", version="7",
                        card=card)
    assert path == tmp_path / "b.zip"
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["README.md", "model.onnx", "predict.py",
                                              "signature.json"]
        assert archive.read("model.onnx") == blob
        signature = json.loads(archive.read("signature.json"))
        script = archive.read("predict.py").decode()
        readme = archive.read("README.md").decode()
    assert signature == signature_of(onnx.load_from_string(blob))
    assert script == Path(bundle_predict.__file__).read_text(encoding="utf-8")
    assert "\x1b" not in readme and "credit\\x1b[31m risk — version 7" in readme
    for text in ("| 2 | colour, main | category | `x1` |", "| 3 | signup ✓ date | datetime |",
                 'has "card"', "pip install numpy onnxruntime",
                 "python predict.py in.csv out.csv", "Decision threshold: **0.45**",
                 "| roc_auc | 0.9123 |", "| f1 | undefined |", "`credit@2`", "`abc123`",
                 "probability_<class>", "1. `no`", "2. `yes`"):
        assert text in readme, text
    # the same model gives the same bytes: a bundle can be checked by its hash
    again = write_bundle(blob, tmp_path / "again.zip", name="credit\x1b[31m risk", version="7",
                         card=card)
    assert again.read_bytes() == path.read_bytes()


def test_readme_keeps_a_pipe_in_a_column_name_inside_its_cell():
    from loopml.optimize.bundle import readme

    signature = make_signature(task="regression", columns=[("a|b\nc", "number")], classes=[])
    text = readme(signature, name="m", version="1")
    # renders as a|b\nc: the pipe stays in the cell, the newline is shown, not made
    assert "| 1 | a\\|b\\\\nc | number | `x0` |" in text
    assert "Test metrics" not in text and "threshold" not in text.lower().split("## outputs")[1]


def test_bundle_is_not_overwritten_unless_asked(tmp_path):
    blob = _contract_model("regression")
    target = tmp_path / "m.zip"
    target.write_bytes(b"someone's file")
    with pytest.raises(AlreadyExists, match=r"m\.zip' already exists.*overwrite=True"):
        write_bundle(blob, target, name="m", version="1")
    assert target.read_bytes() == b"someone's file"
    write_bundle(blob, target, name="m", version="1", overwrite=True)
    assert zipfile.is_zipfile(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zip"]  # no temp file left


def test_bundle_refuses_models_it_cannot_ship(tmp_path):
    import onnx

    model = onnx.load_from_string(_contract_model("binary"))
    del model.metadata_props[:]
    with pytest.raises(InvalidInput, match=r"no loopml signature"):
        write_bundle(model.SerializeToString(), tmp_path / "a.zip", name="m", version="1")
    with pytest.raises(InvalidInput, match=r"not an ONNX model"):
        write_bundle(b"\x08\x07not onnx\xff", tmp_path / "a.zip", name="m", version="1")
    with pytest.raises(InvalidInput, match=r"folder .*missing' does not exist"):
        write_bundle(_contract_model("binary"), tmp_path / "missing" / "a.zip", name="m",
                     version="1")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("task", TASKS)
def test_predict_script_matches_loopml_in_process(bundle_dir, tmp_path, task, capsys):
    blob, folder = bundle_dir(task)
    source = _write_csv(tmp_path / "in.csv", CSV_ROWS)
    assert bundle_predict.main([str(source), str(tmp_path / "out.csv"),
                                "--model", str(folder / "model.onnx")]) == 0
    _assert_same(blob, source, *_read_output(tmp_path / "out.csv"), task)
    assert bundle_predict.main([str(source), "--model", str(folder / "model.onnx")]) == 0
    _assert_same(blob, source, *_read_output(capsys.readouterr().out), task)


def test_bundle_of_a_loopml_model_answers_like_the_model(trained, tmp_path, capsys):
    model, blob = trained
    path = write_bundle(blob, tmp_path / "credit.zip", name="credit", version="1")
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "bundle")
    source = _trained_csv(tmp_path)
    assert bundle_predict.main([str(source), "--model",
                                str(tmp_path / "bundle" / "model.onnx")]) == 0
    _assert_like_loopml(model, blob, source, capsys.readouterr().out)


def test_predict_rows_takes_mappings_and_numbers():
    session = _session(_contract_model("binary"))
    rows = [{AGE: 42, COLOUR: "red", SIGNED: "2024-03-01T10:00:00", CARD: True},
            {AGE: None, COLOUR: None, SIGNED: None, CARD: float("nan")}]
    out = bundle_predict.predict_rows(session, rows)
    assert [sorted(r) for r in out] == [["prediction", "probability_no", "probability_yes"]] * 2
    first = out[0]
    assert first["prediction"] == ("yes" if first["probability_yes"] >= 0.45 else "no")
    assert bundle_predict.predict_rows(session, []) == []


def _drop_column(name: str) -> list[list[str]]:
    index = CSV_ROWS[0].index(name)
    return [[v for i, v in enumerate(row) if i != index] for row in CSV_ROWS]


def _set(row: int, name: str, value: str) -> list[list[str]]:
    rows = [list(r) for r in CSV_ROWS]
    rows[row][CSV_ROWS[0].index(name)] = value
    return rows


BAD_CSV = [
    (_drop_column(COLOUR), r"input is missing column\(s\) 'colour, main'"),
    (_set(3, AGE, "seventeen"), r"column 'age \(years\)', row 3: expected a number"),
    (_set(2, SIGNED, "31/01/2024"), r"column 'signup ✓ date', row 2: expected an ISO 8601"),
    (_set(1, CARD, "1_000"), r"column 'has \"card\"', row 1: expected a number"),
    ([CSV_ROWS[0] + [AGE], *(r + ["1"] for r in CSV_ROWS[1:])],
     r"column 'age \(years\)' appears twice"),
    ([*CSV_ROWS, ["7", "True"]], r"row 7: 2 fields, the header has 6"),
    ([], r"the file is empty"),
]


@pytest.mark.parametrize(("rows", "pattern"), BAD_CSV)
def test_bad_csv_is_one_line_and_exit_code_2(bundle_dir, tmp_path, rows, pattern, capsys):
    _, folder = bundle_dir("binary")
    source = _write_csv(tmp_path / "bad.csv", rows)
    target = tmp_path / "out.csv"
    code = bundle_predict.main([str(source), str(target), "--model",
                                str(folder / "model.onnx")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert re.search(pattern, err), err
    # nothing half-written: no output file, no temp file
    assert not target.exists() and not list(tmp_path.glob(".out.csv.*"))


def test_a_missing_column_writes_nothing_to_standard_output(bundle_dir, tmp_path, capsys):
    _, folder = bundle_dir("regression")
    source = _write_csv(tmp_path / "bad.csv", _drop_column(SIGNED))
    assert bundle_predict.main([str(source), "--model", str(folder / "model.onnx")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "'signup ✓ date'" in captured.err


def test_output_into_a_folder_is_one_line(bundle_dir, tmp_path, capsys):
    _, folder = bundle_dir("regression")
    source = _write_csv(tmp_path / "in.csv", CSV_ROWS)
    assert bundle_predict.main([str(source), str(tmp_path), "--model",
                                str(folder / "model.onnx")]) == 2
    assert "cannot write there" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*.tmp"))


def test_missing_input_file_and_model_are_named(bundle_dir, tmp_path, capsys):
    _, folder = bundle_dir("binary")
    assert bundle_predict.main([str(tmp_path / "none.csv"), "--model",
                                str(folder / "model.onnx")]) == 2
    assert "none.csv: cannot read it" in capsys.readouterr().err
    source = _write_csv(tmp_path / "in.csv", CSV_ROWS)
    assert bundle_predict.main([str(source), "--model", str(tmp_path / "no.onnx")]) == 2
    assert "no.onnx: no such model file" in capsys.readouterr().err


@pytest.mark.parametrize("text", [
    "2024-01-02", "2024-01-02T03:04:05", "2024-01-02 03:04:05", "2024-01-02T03:04:05.250",
    "2024-01-02T03:04:05Z", "2024-01-02T03:04:05+02:00", "2024-01-02T03:04:05-0130",
    "1969-07-20T20:17:40",
])
def test_datetimes_are_read_as_pandas_reads_iso_8601(text):
    import pandas as pd

    expected = (pd.Timestamp(text) if pd.Timestamp(text).tzinfo else
                pd.Timestamp(text, tz="UTC")) - pd.Timestamp(0, tz="UTC")
    got = bundle_predict._datetime(text, "when", 1)
    assert got == pytest.approx(expected.total_seconds(), abs=1e-6)


def test_number_cells():
    read = bundle_predict._number
    assert [read(t, "c", 1) for t in ["1.5", " -2 ", "1e3", "TRUE", "false", "inf"]] == \
        [1.5, -2.0, 1000.0, 1.0, 0.0, float("inf")]
    assert all(np.isnan(read(t, "c", 1)) for t in ["", "NA", "nan", "NaN", "null", "None", "N/A"])


def test_predict_script_imports_only_the_standard_library_numpy_and_onnxruntime():
    tree = ast.parse(Path(bundle_predict.__file__).read_text(encoding="utf-8"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    assert modules - set(sys.stdlib_module_names) == {"numpy", "onnxruntime"}


# In a fresh virtual environment with numpy and onnxruntime only (slow: installs from PyPI).


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the python of a new venv holding only numpy and onnxruntime (from PyPI)."""
    folder = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, env=_clean_env())
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "numpy", "onnxruntime"], capture_output=True, text=True, env=_clean_env(),
        timeout=900)
    if install.returncode != 0:
        tail = " | ".join((install.stderr or install.stdout).strip().splitlines()[-3:])
        pytest.fail(f"pip install numpy onnxruntime into a fresh venv failed: {tail}")
    return python


def _clean_env() -> dict[str, str]:
    """Return this environment without what would let a child see this venv's packages."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONUSERBASE"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *args], cwd=cwd, capture_output=True, text=True,
                          env=_clean_env(), timeout=300)


@pytest.mark.slow
def test_bare_venv_has_no_loopml_pandas_or_sklearn(bare_python, tmp_path):
    for module in ("loopml", "pandas", "sklearn"):
        result = _run(bare_python, "-c", f"import {module}", cwd=tmp_path)
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, module
    assert _run(bare_python, "-c", "import numpy, onnxruntime", cwd=tmp_path).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_unzipped_bundle_scores_a_csv_in_a_bare_venv(bare_python, bundle_dir, tmp_path, task):
    blob, folder = bundle_dir(task)
    source = _write_csv(tmp_path / "in.csv", CSV_ROWS)
    result = _run(bare_python, "predict.py", str(source), str(tmp_path / "out.csv"),
                  cwd=folder)
    assert result.returncode == 0, result.stderr
    _assert_same(blob, source, *_read_output(tmp_path / "out.csv"), task)
    to_stdout = _run(bare_python, str(folder / "predict.py"), str(source), cwd=tmp_path)
    assert to_stdout.returncode == 0, to_stdout.stderr
    _assert_same(blob, source, *_read_output(to_stdout.stdout), task)


@pytest.mark.slow
def test_bundle_of_a_loopml_model_in_a_bare_venv(bare_python, trained, tmp_path):
    model, blob = trained
    path = write_bundle(blob, tmp_path / "credit.zip", name="credit", version="1")
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "bundle")
    source = _trained_csv(tmp_path)
    result = _run(bare_python, "predict.py", str(source), str(tmp_path / "out.csv"),
                  cwd=tmp_path / "bundle")
    assert result.returncode == 0, result.stderr
    _assert_like_loopml(model, blob, source, tmp_path / "out.csv")


@pytest.mark.slow
@pytest.mark.parametrize(("rows", "pattern"), BAD_CSV[:2])
def test_bad_csv_in_a_bare_venv_exits_2_naming_the_column(bare_python, bundle_dir, tmp_path,
                                                          rows, pattern):
    _, folder = bundle_dir("multiclass")
    source = _write_csv(tmp_path / "bad.csv", rows)
    result = _run(bare_python, "predict.py", str(source), cwd=folder)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and re.search(pattern, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
