"""The server in process: predictions equal the model's, every bad request a named 4xx, V2, auth."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loopml.config import ProjectConfig
from loopml.registry.export import export_onnx
from loopml.registry.registry import Registry
from loopml.serve.app import ServeSettings, create_app
from loopml.workspace import Workspace

NAME = "credit"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[Workspace, pd.DataFrame, list[str]]:
    """A workspace whose credit@1 is a LightGBM model exported to ONNX; rows; input columns."""
    from loopml.demo_data import make_credit
    from loopml.train.runner import train_project

    root = tmp_path_factory.mktemp("serve")
    frame = make_credit(800, seed=4)
    frame.to_csv(root / "credit.csv", index=False)
    workspace = Workspace.from_env(root / "ws", env={})
    config = ProjectConfig.model_validate({
        "project": {"name": NAME},
        "data": {"dataset": "credit", "source": str(root / "credit.csv"), "target": "default",
                 "pii": {"email": "hash"}},
        # one booster (not an ensemble of two): its TreeSHAP contributions are checked
        "train": {"candidates": ["lightgbm"], "trials": 2, "n_jobs": 1, "cv_folds": 3,
                  "ensemble": False}})
    outcome = train_project(config, workspace=workspace, project_dir=root)
    with Registry.open(workspace) as registry:
        export_onnx(registry, registry.get(outcome.version.ref))
        record = registry.get(f"{NAME}@1")
    columns = [c["name"] for c in record.signature["inputs"]]
    return workspace, frame, columns


def _client(workspace: Workspace, tmp_path: Path, **settings) -> TestClient:
    app = create_app(ServeSettings(ref=f"{NAME}@1", log_dir=str(tmp_path / "log"), **settings),
                     workspace=workspace)
    return TestClient(app)


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    return json.loads(frame[columns].to_json(orient="records"))


def test_predictions_equal_the_models_in_both_flavours_and_both_body_shapes(served, tmp_path):
    import loopml

    workspace, frame, columns = served
    rows = frame.head(40)
    native = loopml.load_model(f"{NAME}@1", workspace=workspace)
    want = native.predict_proba(rows[columns])
    for flavour in ("onnx", "native"):
        with _client(workspace, tmp_path, flavour=flavour) as client:
            by_records = client.post(f"/v1/models/{NAME}/predict",
                                     json=_records(rows, columns))
            by_columns = client.post(f"/v1/models/{NAME}/predict",
                                     json={c: json.loads(rows[c].to_json(orient="values"))
                                           for c in columns})
        for response in (by_records, by_columns):
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["flavour"] == flavour and body["version"] == 1
            np.testing.assert_allclose(body["probabilities"], want, atol=1e-4)
            assert body["predictions"] == list(native.predict(rows[columns]))
            assert response.headers["x-request-id"] == body["request_id"]


def test_explain_gives_contributions_that_add_up_to_the_raw_output(served, tmp_path):
    import loopml

    workspace, frame, columns = served
    rows = frame.head(3)
    with _client(workspace, tmp_path) as client:
        body = client.post(f"/v1/models/{NAME}/predict?explain=true",
                           json=_records(rows, columns)).json()
    native = loopml.load_model(f"{NAME}@1", workspace=workspace)
    contributions, expected, _ = native.feature_contributions(rows[columns])
    raw = native.raw_output(rows[columns])
    assert set(body["contributions"][0]) == set(columns)
    for i, row in enumerate(body["contributions"]):
        total = sum(row.values()) + float(np.ravel(expected)[0])
        assert total == pytest.approx(float(np.ravel(raw)[i]), abs=1e-6)


BAD = [
    ("a missing column", lambda r, c: [{k: v for k, v in r[0].items() if k != c[0]}], 422,
     "missing column"),
    ("an extra column", lambda r, c: [dict(r[0], surprise=1)], 422, "unknown column"),
    ("text in a number", lambda r, c: [dict(r[0], age="forty")], 422, "'age' row 0"),
    ("an unknown category", lambda r, c: [dict(r[0], city="Atlantis")], 422, "unknown category"),
    ("a null where not nullable", lambda r, c: [dict(r[0], age=None)], 422, "required"),
    ("a list as a value", lambda r, c: [dict(r[0], city=["x"])], 422, "expected text"),
    ("not an object row", lambda r, c: [1, 2], 422, "row 0"),
    ("no rows", lambda r, c: [], 422, "no rows"),
    ("a number body", lambda r, c: 3, 422, "list of records"),
    ("ragged columns", lambda r, c: {k: [1, 2] if k == c[0] else [1] for k in c}, 422,
     "different lengths"),
    ("too many rows", lambda r, c: r * 6, 413, "at most"),
]


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_every_bad_request_is_a_4xx_naming_what_was_expected(served, tmp_path, case):
    workspace, frame, columns = served
    _, make, status, words = case
    records = _records(frame.head(2), columns)
    with _client(workspace, tmp_path, max_rows=10) as client:
        response = client.post(f"/v1/models/{NAME}/predict", json=make(records, columns))
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert "Atlantis" not in response.json()["error"] and "forty" not in response.text


def test_bodies_that_are_not_json_too_big_or_for_another_model(served, tmp_path):
    workspace, frame, columns = served
    with _client(workspace, tmp_path, max_body_bytes=2000) as client:
        assert client.post(f"/v1/models/{NAME}/predict", content=b"{nope").status_code == 400
        big = _records(frame.head(50), columns)
        assert client.post(f"/v1/models/{NAME}/predict", json=big).status_code == 413
        assert client.post("/v1/models/other/predict",
                           json=_records(frame.head(1), columns)).status_code == 404
        assert client.get("/healthz").json() == {"live": True}
        assert client.get("/readyz").json()["version"] == 1


def test_v2_infer_equals_v1_and_metadata_names_the_inputs(served, tmp_path):
    workspace, frame, columns = served
    rows = frame.head(5)
    with _client(workspace, tmp_path) as client:
        meta = client.get(f"/v2/models/{NAME}").json()
        kinds = {i["name"]: i["datatype"] for i in meta["inputs"]}
        inputs = [{"name": c, "shape": [5, 1], "datatype": kinds[c],
                   "data": json.loads(rows[c].to_json(orient="values"))} for c in columns]
        v2 = client.post(f"/v2/models/{NAME}/infer", json={"inputs": inputs}).json()
        v1 = client.post(f"/v1/models/{NAME}/predict", json=_records(rows, columns)).json()
        assert client.get(f"/v2/models/{NAME}/versions/9/ready").status_code == 404
        assert client.post(f"/v2/models/{NAME}/infer", json={"inputs": "x"}).status_code == 422
    out = {o["name"]: o for o in v2["outputs"]}
    assert out["label"]["data"] == v1["predictions"]
    np.testing.assert_allclose(np.reshape(out["probabilities"]["data"], (5, -1)),
                               v1["probabilities"], atol=1e-8)
    assert meta["versions"] == ["1"] and set(kinds) == set(columns)


def test_tritonclient_infer_against_a_real_server_equals_v1(served, tmp_path):
    import socket

    import tritonclient.http as triton
    import uvicorn

    workspace, frame, columns = served
    rows = frame.head(6)
    app = create_app(ServeSettings(ref=f"{NAME}@1", log_dir=str(tmp_path / "log")),
                     workspace=workspace)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 30
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        assert client.is_server_live() and client.is_model_ready(NAME)
        kinds = {i["name"]: i["datatype"] for i in client.get_model_metadata(NAME)["inputs"]}
        inputs = []
        for column in columns:  # tritonclient's defaults: binary tensor data
            tensor = triton.InferInput(column, [6, 1], kinds[column])
            values = rows[column].to_numpy(dtype=object if kinds[column] == "BYTES"
                                           else np.float64)
            tensor.set_data_from_numpy(values.reshape(-1, 1))
            inputs.append(tensor)
        result = client.infer(NAME, inputs)
        import httpx

        v1 = httpx.post(f"http://127.0.0.1:{port}/v1/models/{NAME}/predict",
                        json=_records(rows, columns)).json()
    finally:
        server.should_exit = True
        thread.join(30)
    np.testing.assert_allclose(result.as_numpy("probabilities"), v1["probabilities"],
                               atol=1e-8)
    assert result.as_numpy("label").tolist() == v1["predictions"]


def test_auth_on_no_token_401_predict_token_cannot_reach_admin_routes(served, tmp_path):
    workspace, frame, columns = served
    store, _ = workspace.open()
    _, predict_token = store.tokens.create("app", role="predict", created_by="test")
    _, admin_token = store.tokens.create("ops", role="admin", created_by="test")
    rows = _records(frame.head(1), columns)
    with _client(workspace, tmp_path, auth=True) as client:
        url = f"/v1/models/{NAME}/predict"
        missing = client.post(url, json=rows)
        assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
        assert client.post(url, json=rows, headers={"Authorization": "Bearer lml_x_y"}
                           ).status_code == 401
        ok = client.post(url, json=rows, headers={"Authorization": f"Bearer {predict_token}"})
        assert ok.status_code == 200
        for route in ("/v1/admin/reload", "/metrics"):
            method = client.post if route.endswith("reload") else client.get
            assert method(route, headers={"Authorization": f"Bearer {predict_token}"}
                          ).status_code == 403
            assert method(route, headers={"Authorization": f"Bearer {admin_token}"}
                          ).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes need no token
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {admin_token}"})
    assert 'loopml_requests_total{route="predict",status="401"}' in metrics.text
    logged = b"".join(p.read_bytes() for p in (tmp_path / "log").rglob("*") if p.is_file())
    assert predict_token.encode() not in logged and admin_token.encode() not in logged
    assert predict_token not in metrics.text


def test_feedback_is_logged_by_request_id(served, tmp_path):
    from loopml.serve.predlog import read_log

    workspace, frame, columns = served
    with _client(workspace, tmp_path) as client:
        answer = client.post(f"/v1/models/{NAME}/predict",
                             json=_records(frame.head(2), columns)).json()
        given = client.post(f"/v1/models/{NAME}/feedback",
                            json={"request_id": answer["request_id"], "labels": [1, 0]})
        assert given.status_code == 202 and given.json() == {"accepted": 2}
        assert client.post(f"/v1/models/{NAME}/feedback", json={"labels": [1]}
                           ).status_code == 422
    feedback = read_log(tmp_path / "log", kind="feedback").to_pylist()
    assert [(f["request_id"], f["row"], json.loads(f["label"])) for f in feedback] == [
        (answer["request_id"], 0, 1), (answer["request_id"], 1, 0)]
    logged = read_log(tmp_path / "log").to_pylist()
    assert {r["request_id"] for r in logged} == {answer["request_id"]}
    assert [json.loads(r["prediction"]) for r in logged] == answer["predictions"]


def test_an_answer_the_log_cannot_take_is_a_503_not_an_unlogged_200(served, tmp_path):
    from loopml.serve.predlog import read_log

    workspace, frame, columns = served
    with _client(workspace, tmp_path) as client:
        ok = client.post(f"/v1/models/{NAME}/predict", json=_records(frame.head(1), columns))
        client.app.state.loopml.log.close()  # a log that takes nothing more
        refused = client.post(f"/v1/models/{NAME}/predict",
                              json=_records(frame.head(1), columns))
    assert ok.status_code == 200
    assert refused.status_code == 503 and refused.headers["retry-after"]
    assert {r["request_id"] for r in read_log(tmp_path / "log").to_pylist()} == \
        {ok.json()["request_id"]}


def test_malformed_v2_tensors_and_oversized_feedback_are_4xx(served, tmp_path):
    workspace, frame, columns = served
    first = columns[0]
    with _client(workspace, tmp_path, max_rows=10) as client:
        url = f"/v2/models/{NAME}/infer"
        cases = [
            ({"inputs": [{"name": first, "shape": [1], "datatype": [], "data": [1]}]}, {}),
            ({"inputs": [{"name": first, "shape": [1], "datatype": "FP64", "data": [1],
                          "parameters": "x"}]}, {}),
            ({"inputs": []}, {"Inference-Header-Content-Length": "²".encode("latin-1")}),
        ]
        for body, headers in cases:
            answer = client.post(url, content=json.dumps(body).encode(), headers=headers)
            assert 400 <= answer.status_code < 500, (body, answer.text)
        feedback = client.post(f"/v1/models/{NAME}/feedback",
                               json={"request_id": "r1", "labels": [0] * 11})
        assert feedback.status_code == 413
