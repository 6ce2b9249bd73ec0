"""Batch scoring (`loopml predict`, ``score_file``) against the model on the whole frame.

The reference is always the model itself: ``model.predict`` and ``model.predict_proba`` on
the whole file read by pandas. Models are built as loopml's search builds them (the
preprocessor + the trainer), small, on rows with odd column names, holes in every kind,
dates and odd class labels.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.errors import AlreadyExists, InvalidInput
from loopml.serve import batch
from loopml.serve.batch import output_names, score_file
from loopml_cli import run_loopml

FEATURES = {"numeric": ["Income, USD", "débt"], "categorical": ["naïve col", "city code"],
            "datetime": ["signup"]}
TARGETS = {"binary": "target", "multiclass": "grade", "regression": "amount"}
TRAINERS = {"binary": "logistic", "multiclass": "lightgbm", "regression": "linear"}
GRADES = np.array(["low risk", "mid/high", "ünï code"])
PAIRS = [("in.csv", "out.csv"), ("in.csv", "out.parquet"), ("in.parquet", "out.csv")]


def make_frame(n: int, *, seed: int) -> pd.DataFrame:
    """Return rows with numbers, categories, dates, holes in each, and three targets."""
    rng = np.random.default_rng(seed)

    def holes(values: object) -> pd.Series:
        return pd.Series(values).mask(rng.random(n) < 0.08)

    seconds = rng.integers(0, 40 * 365 * 86400, n)
    frame = pd.DataFrame({
        "id": np.arange(n),
        "Income, USD": holes(rng.lognormal(10, 0.5, n).round(2)),
        "débt": holes(rng.normal(size=n)),
        "naïve col": holes(rng.choice(["alpha", "beta", "gamma"], n)),
        "city code": holes(rng.integers(0, 9, n)),
        "signup": holes(pd.Timestamp("1980-01-01") + pd.to_timedelta(seconds, unit="s")),
    })
    signal_ = ((frame["Income, USD"].fillna(22000) - 25000) / 15000 + frame["débt"].fillna(0)
               + (frame["naïve col"] == "alpha") + (frame["city code"].fillna(0) % 3) * 0.5)
    frame["target"] = (rng.random(n) < 1 / (1 + np.exp(-signal_))).astype(int)
    frame["grade"] = GRADES[np.digitize(signal_ + rng.normal(size=n), [-0.3, 0.9])]
    frame["amount"] = signal_ * 100 + rng.normal(size=n)
    return frame


def make_model(task: str, frame: pd.DataFrame) -> object:
    """Return a TrainedModel fitted as loopml's search fits one (small, for speed)."""
    from sklearn.pipeline import Pipeline

    from loopml.train.features import FeatureSet, build_preprocessor
    from loopml.train.model import TrainedModel
    from loopml.train.trainers import get_trainer

    features = FeatureSet(**FEATURES)
    trainer = get_trainer(TRAINERS[task])
    X, y = frame[features.columns], frame[TARGETS[task]]
    classes = sorted(y.unique().tolist()) if task != "regression" else []
    encoded = y.map({c: i for i, c in enumerate(classes)}).to_numpy() if classes else \
        y.to_numpy()
    params = {**trainer.defaults(task), **({"n_estimators": 20} if task == "multiclass"
                                           else {})}
    pipeline = Pipeline([
        ("features", build_preprocessor(features, X, tree_based=trainer.tree_based,
                                        task=task)),
        ("model", trainer.build(params, task=task, seed=0)),
    ]).fit(X, encoded)
    return TrainedModel(pipeline=pipeline, task=task, target=TARGETS[task],
                        input_columns=features.columns, classes=classes,
                        threshold=0.4 if task == "binary" else 0.5)


@pytest.fixture(scope="module")
def models() -> dict[tuple[str, str], object]:
    """Every task in both flavours: ``(task, "native" | "onnx") -> model``."""
    from loopml.optimize.export import to_onnx
    from loopml.optimize.runtime import OnnxModel

    train = make_frame(800, seed=0)
    out = {}
    for task in TARGETS:
        native = make_model(task, train)
        out[task, "native"] = native
        out[task, "onnx"] = OnnxModel.from_bytes(to_onnx(native))
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the same 300 new rows as in.csv and in.parquet."""
    folder = tmp_path_factory.mktemp("batch")
    rows = make_frame(300, seed=1)
    rows.loc[0:4, "naïve col"] = "never seen"
    rows.to_csv(folder / "in.csv", index=False)
    rows.to_parquet(folder / "in.parquet", index=False)
    return folder


def read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def assert_scored(out: pd.DataFrame, model: object, rows: pd.DataFrame) -> None:
    """The output is ``rows``' columns + what the model says about the whole frame."""
    probabilities = output_names(model.classes_) if model.task != "regression" else []
    assert list(out.columns) == [*rows.columns, "prediction", *probabilities]
    assert len(out) == len(rows)
    first = rows.columns[0]  # an id column: the rows kept their order
    pd.testing.assert_series_equal(out[first], rows[first])
    if model.task == "regression":
        np.testing.assert_allclose(out["prediction"], model.predict(rows), rtol=1e-12)
        return
    assert (out["prediction"].to_numpy() == model.predict(rows)).all()
    np.testing.assert_allclose(out[probabilities].to_numpy(), model.predict_proba(rows),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("source", "target"), PAIRS)
@pytest.mark.parametrize("flavour", ["native", "onnx"])
@pytest.mark.parametrize("task", list(TARGETS))
def test_scores_every_row_like_the_model_on_the_whole_frame(models, files, tmp_path, task,
                                                            flavour, source, target):
    model = models[task, flavour]
    seen: list[tuple[int, int | None]] = []
    summary = score_file(model, files / source, tmp_path / target, chunk_rows=37,
                         on_progress=lambda done, total: seen.append((done, total)))

    assert summary.rows == 300 and summary.output == tmp_path / target
    assert_scored(read(tmp_path / target), model, read(files / source))
    # 37 does not divide 300: eight full chunks and a short one, in order
    total = 300 if source.endswith(".parquet") else None
    assert seen == [(min(300, 37 * i), total) for i in range(1, 10)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [target]  # no temp file left


def test_odd_class_labels_give_plain_unique_column_names(models):
    assert output_names(models["multiclass", "native"].classes_) == [
        "probability_low_risk", "probability_mid_high", "probability_ünï_code"]
    assert output_names(["a b", "a/b", "", "x\ny"]) == [
        "probability_a_b", "probability_a_b_1", "probability_2", "probability_x_y"]


def test_a_chosen_subset_of_columns_is_kept(models, files, tmp_path):
    model = models["binary", "onnx"]
    score_file(model, files / "in.csv", tmp_path / "out.csv", columns=["id"])
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["id", "prediction", "probability_0", "probability_1"]
    assert (out["prediction"] == model.predict(pd.read_csv(files / "in.csv"))).all()


def test_csv_columns_that_change_type_after_the_first_block_are_read_again(
        models, tmp_path, monkeypatch):
    # pyarrow types CSV columns from the first block; later values of another type are
    # read again as pandas reads them: whole numbers then decimals, empty then text
    monkeypatch.setattr(batch, "BLOCK_BYTES", 4096)
    rows = make_frame(2000, seed=2)
    rows["Income, USD"] = rows["Income, USD"].round().astype("Int64").astype(object)
    rows.loc[1900, "Income, USD"] = 1234.5
    rows["note"] = None
    rows.loc[1950, "note"] = "late text"
    rows.to_csv(tmp_path / "in.csv", index=False)
    model = models["binary", "onnx"]

    score_file(model, tmp_path / "in.csv", tmp_path / "out.parquet", chunk_rows=500)

    out, expected = pd.read_parquet(tmp_path / "out.parquet"), pd.read_csv(tmp_path / "in.csv")
    assert_scored(out, model, expected)
    assert out["Income, USD"].iloc[1900] == 1234.5 and out["note"].iloc[1950] == "late text"


@pytest.mark.parametrize("block_bytes", [4096, batch.BLOCK_BYTES])
@pytest.mark.parametrize("flavour", ["native", "onnx"])
def test_text_in_a_number_column_is_one_error_naming_file_column_and_row(
        models, tmp_path, monkeypatch, flavour, block_bytes):
    monkeypatch.setattr(batch, "BLOCK_BYTES", block_bytes)
    rows = make_frame(1000, seed=3)
    rows["débt"] = rows["débt"].astype(object)
    rows.loc[876, "débt"] = "n/a yet"
    rows.to_csv(tmp_path / "in.csv", index=False)

    with pytest.raises(InvalidInput) as error:
        score_file(models["binary", flavour], tmp_path / "in.csv", tmp_path / "out.csv",
                   chunk_rows=100)

    message = str(error.value)
    assert "in.csv" in message and "'débt'" in message and "data row 877" in message
    assert "n/a yet" not in message  # a value may be personal data: never shown
    assert list(tmp_path.iterdir()) == [tmp_path / "in.csv"]  # nothing half-written


def test_a_missing_model_column_is_named_before_anything_is_written(models, files, tmp_path):
    read(files / "in.csv").drop(columns=["naïve col"]).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(InvalidInput, match=r"in\.csv: missing column\(s\) 'naïve col'"):
        score_file(models["regression", "native"], tmp_path / "in.csv", tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("bad.parquet", b"not parquet at all", r"bad\.parquet cannot be read as Parquet"),
    ("bad.csv", b"", r"bad\.csv cannot be read as CSV"),
    ("ragged.csv", b"a,b\n1,2\n3,4,5\n", r"ragged\.csv cannot be read as CSV"),
])
def test_an_unreadable_file_is_one_clear_error(models, tmp_path, name, content, expected):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InvalidInput, match=expected):
        score_file(models["binary", "native"], tmp_path / name, tmp_path / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_paths_are_checked_first(models, files, tmp_path):
    model = models["binary", "native"]
    with pytest.raises(InvalidInput, match="does not exist"):
        score_file(model, tmp_path / "nope.csv", tmp_path / "out.csv")
    with pytest.raises(InvalidInput, match=r"expected a \.csv, \.csv\.gz, \.parquet or \.pq"):
        score_file(model, files / "in.csv", tmp_path / "out.json")
    with pytest.raises(InvalidInput, match="folder"):
        score_file(model, files / "in.csv", tmp_path / "no" / "out.csv")
    (tmp_path / "out.csv").write_text("keep me")
    with pytest.raises(AlreadyExists, match="already exists"):
        score_file(model, files / "in.csv", tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == "keep me"
    score_file(model, files / "in.csv", tmp_path / "out.csv", overwrite=True)
    assert len(pd.read_csv(tmp_path / "out.csv")) == 300


def test_gzip_csv_in_and_out(models, files, tmp_path):
    model = models["multiclass", "onnx"]
    read(files / "in.csv").to_csv(tmp_path / "in.csv.gz", index=False)
    score_file(model, tmp_path / "in.csv.gz", tmp_path / "out.csv.gz", chunk_rows=100)
    assert_scored(pd.read_csv(tmp_path / "out.csv.gz"), model, read(files / "in.csv"))


def test_a_scored_file_cannot_be_scored_again_silently(models, files, tmp_path):
    model = models["binary", "native"]
    score_file(model, files / "in.csv", tmp_path / "once.csv")
    with pytest.raises(InvalidInput, match="'prediction' is also an output column"):
        score_file(model, tmp_path / "once.csv", tmp_path / "twice.csv")


class Flags:
    """Any model with the loopml surface but no threshold: its own predict gives labels."""

    task = "binary"
    input_columns = ["x"]
    classes_ = np.array([False, True], dtype=object)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-frame["x"].to_numpy(dtype=float)))
        return np.column_stack([1 - p, p])

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.classes_[(frame["x"].to_numpy(dtype=float) > 1).astype(int)]


def test_any_model_with_boolean_labels(tmp_path):
    pd.DataFrame({"x": np.linspace(-3, 3, 50)}).to_csv(tmp_path / "in.csv", index=False)
    score_file(Flags(), tmp_path / "in.csv", tmp_path / "out.parquet", chunk_rows=7)
    out, rows = pd.read_parquet(tmp_path / "out.parquet"), pd.read_csv(tmp_path / "in.csv")
    assert out["prediction"].tolist() == Flags().predict(rows).tolist()
    assert list(out.columns) == ["x", "prediction", "probability_False", "probability_True"]


def test_a_file_with_a_header_only_gives_a_header_only(models, tmp_path):
    read_columns = ["id", *FEATURES["numeric"], *FEATURES["categorical"], "signup"]
    (tmp_path / "in.csv").write_text(",".join(f'"{c}"' for c in read_columns) + "\n")
    summary = score_file(models["multiclass", "onnx"], tmp_path / "in.csv",
                         tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv")
    assert summary.rows == 0 and len(out) == 0
    assert list(out.columns) == [*read_columns, "prediction",
                                 *output_names(models["multiclass", "onnx"].classes_)]


def test_an_interrupted_run_leaves_no_file(models, files, tmp_path):
    def stop(done: int, total: int | None) -> None:
        if done >= 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_file(models["binary", "onnx"], files / "in.csv", tmp_path / "out.parquet",
                   chunk_rows=50, on_progress=stop)
    assert list(tmp_path.iterdir()) == []


MEMORY_PROBE = textwrap.dedent("""
    import json, sys, tracemalloc
    import pyarrow as pa
    import pandas as pd
    from loopml.optimize.runtime import OnnxModel
    from loopml.serve import batch

    # pyarrow keeps ~32 blocks read ahead: small blocks, so that both files stream
    batch.BLOCK_BYTES = 1 << 15
    model = OnnxModel.from_bytes(open(sys.argv[1], "rb").read())
    tracemalloc.start()
    batch.score_file(model, sys.argv[2], sys.argv[3], chunk_rows=2000)
    print(json.dumps({"python": tracemalloc.get_traced_memory()[1],
                      "arrow": pa.default_memory_pool().max_memory()}))
""")


@pytest.mark.slow
def test_memory_follows_the_chunk_not_the_file(models, tmp_path):
    model = models["binary", "onnx"]
    (tmp_path / "m.onnx").write_bytes(model.session._model_bytes)
    rows = make_frame(10_000, seed=4)
    peaks = {}
    for copies in (1, 10):
        source = tmp_path / f"in{copies}.csv"
        pd.concat([rows] * copies).to_csv(source, index=False)
        done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tmp_path / "m.onnx"),
                               str(source), str(tmp_path / f"out{copies}.parquet")],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        peaks[copies] = json.loads(done.stdout)
    # ten times the rows (about 9 MB of CSV more), the same peaks within a block's slack
    for kind in ("python", "arrow"):
        assert peaks[10][kind] < peaks[1][kind] * 1.5 + 2_000_000, peaks


@pytest.mark.slow
def test_ray_backend_writes_the_same_file_as_local(models, files, tmp_path):
    if os.environ.get("LOOPML_REQUIRE_RAY") != "1":
        pytest.importorskip("ray")
    import ray

    model = models["multiclass", "onnx"]
    bad = read(files / "in.csv")
    bad["débt"] = bad["débt"].astype(object)
    bad.loc[100, "débt"] = "n/a yet"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    started = not ray.is_initialized()  # one Ray for both jobs: it takes seconds to start
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        local = score_file(model, files / "in.csv", tmp_path / "local.csv", chunk_rows=37)
        on_ray = score_file(model, files / "in.csv", tmp_path / "ray.csv", chunk_rows=37,
                            backend="ray")
        # a worker's error comes back as loopml's own, one line
        with pytest.raises(InvalidInput, match=r"bad\.csv: column 'débt': expected a number"):
            score_file(model, tmp_path / "bad.csv", tmp_path / "bad-out.csv", backend="ray")
    finally:
        if started:
            ray.shutdown()
    assert on_ray.rows == local.rows == 300
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert not (tmp_path / "bad-out.csv").exists()


# --- the command ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A workspace with credit@1 (logistic, exported to ONNX) and its CSV."""
    from loopml.config import ProjectConfig
    from loopml.demo_data import make_credit
    from loopml.registry.export import export_onnx
    from loopml.registry.registry import Registry
    from loopml.train.runner import train_project
    from loopml.workspace import Workspace

    root = tmp_path_factory.mktemp("predict-cli")
    source = root / "credit.csv"
    make_credit(600, seed=3).to_csv(source, index=False)
    config = ProjectConfig.model_validate({
        "project": {"name": "credit"},
        "data": {"dataset": "credit", "source": str(source), "target": "default",
                 "sensitive": ["gender"], "pii": {"email": "hash"}},
        "train": {"candidates": ["logistic"], "trials": 1, "n_jobs": 1, "seed": 5,
                  "cv_folds": 2},
    })
    workspace = Workspace.from_env(root / "ws", env={})
    train_project(config, workspace=workspace, project_dir=root)
    with Registry.open(workspace) as registry:
        export_onnx(registry, registry.get("credit@1"), profile_rows=False)
    return root / "ws", source


def _load(home: Path, flavour: str) -> object:
    import loopml
    from loopml.workspace import Workspace

    return loopml.load_model("credit@1", workspace=Workspace.from_env(home, env={}),
                             flavour=flavour)


@pytest.mark.slow
@pytest.mark.parametrize("flavour", ["native", "onnx"])
def test_predict_command_scores_the_file_and_says_where(workspace, tmp_path, flavour):
    home, source = workspace
    target = tmp_path / "scored.parquet"
    result = run_loopml("predict", "credit@1", str(source), str(target), "--flavour",
                        flavour, "--chunk-rows", "250", home=home)
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout and "600 rows" in result.stdout
    assert "rows/s" in result.stdout
    assert_scored(pd.read_parquet(target), _load(home, flavour), pd.read_csv(source))


@pytest.mark.slow
def test_predict_command_errors_are_one_line_with_exit_code_2(workspace, tmp_path):
    home, source = workspace
    (tmp_path / "taken.csv").write_text("x\n")
    cases = {
        "missing file": (["credit@1", str(tmp_path / "nope.csv"), str(tmp_path / "o.csv")],
                         "does not exist"),
        "bad ref": (["credit@7", str(source), str(tmp_path / "o.csv")], "no version 7"),
        "existing output": (["credit@1", str(source), str(tmp_path / "taken.csv")],
                            "already exists"),
        "bad backend": (["credit@1", str(source), str(tmp_path / "o.csv"), "--backend",
                         "spark"], "not one of local, ray"),
    }
    for case, (args, expected) in cases.items():
        result = run_loopml("predict", *args, home=home)
        assert result.returncode == 2, (case, result.stderr)
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, \
            (case, result.stderr)
    assert (tmp_path / "taken.csv").read_text() == "x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.csv"]


@pytest.mark.slow
def test_ctrl_c_exits_130_and_leaves_no_output(workspace, tmp_path):
    from loopml.demo_data import make_credit

    home, _ = workspace
    source = tmp_path / "big.csv"
    make_credit(200_000, seed=4).to_csv(source, index=False)
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(home)
    # small chunks: the run lasts long enough to be interrupted while it writes
    process = subprocess.Popen([sys.executable, "-m", "loopml", "predict", "credit@1",
                                str(source), str(out / "scored.csv"), "--chunk-rows", "100"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 60
    while not any(out.iterdir()) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip() == "loopml: interrupted"
    assert list(out.iterdir()) == []
