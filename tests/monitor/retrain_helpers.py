"""Helpers for retrain tests: a workspace with a champion, a shifted prediction log, alerts.

A plain module (not conftest.py), imported by name like tests/registry/registry_helpers.py.

The world changes between the champion's data and production: customers are older and
poorer (``make_credit(shift=1)``), and default now follows how long they have lived at their
address and their city, not their debt ratio (a concept shift the champion cannot follow).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from loopml.config import ProjectConfig
from loopml.workspace import Workspace

MODEL = "credit"
T0 = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
# Gates a retrain can pass on production rows: the contract names columns the log lacks.
GATES = {"beats_champion": {"metric": "roc_auc", "min_delta": 0.0}, "data_contract": False}


def project(source: Path | None, *, gates: dict | None = None, retrain: dict | None = None,
            seed: int = 5) -> ProjectConfig:
    """Return a small, fast project: logistic regression, two trials."""
    settings: dict[str, Any] = {
        "project": {"name": MODEL},
        "data": {"dataset": "credit", "source": str(source) if source else None,
                 "target": "default", "sensitive": ["gender"], "pii": {"email": "hash"}},
        "train": {"candidates": ["logistic"], "trials": 2, "n_jobs": 1, "seed": seed,
                  "cv_folds": 3},
        "gates": GATES if gates is None else gates,
        "retrain": {"min_new_labeled_rows": 300, "holdout": 0.3, **(retrain or {})},
    }
    return ProjectConfig.model_validate(settings)


def champion_workspace(root: Path) -> Path:
    """Return the home of a workspace whose ``credit@champion`` is version 1."""
    from loopml.demo_data import make_credit
    from loopml.registry.registry import Registry
    from loopml.train.runner import train_project

    root.mkdir(parents=True, exist_ok=True)
    source = root / "credit.csv"
    make_credit(600, seed=3).to_csv(source, index=False)
    workspace = Workspace.from_env(root / "home", env={})
    train_project(project(source), workspace=workspace, project_dir=root)
    with Registry.open(workspace) as registry:
        registry.models.move_alias(MODEL, "champion", 1, expected=None, actor="tests",
                                   reason="first model", outcome="moved")
    return workspace.home


def copy_home(home: Path, dest: Path) -> Workspace:
    """Return a workspace on a copy of ``home`` (one trained champion serves many tests)."""
    shutil.copytree(home, dest)
    return Workspace.from_env(dest, env={})


def shifted(n: int, *, seed: int = 11) -> Any:
    """Return ``n`` production customers with labels from the changed relationship."""
    import numpy as np

    from loopml.demo_data import make_credit

    frame = make_credit(n, seed=seed, shift=1.0)
    rng = np.random.default_rng(seed + 1)
    logit = -0.3 + 0.25 * (frame["years_at_address"] - 15) + \
        1.5 * (frame["city"] == "Lille") - 1.5 * (frame["city"] == "Paris")
    frame["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def write_log(workspace: Workspace, frame: Any, *, inputs: list[str], start: int = 0,
              labelled: int | None = None, label_at: dt.datetime | None = None,
              version: int = 1) -> None:
    """Log ``frame``'s rows as served by ``credit@version``, with labels for the first
    ``labelled`` of them (all by default), as the server and its feedback endpoint do."""
    from loopml.serve.predlog import PredictionLog

    folder = workspace.home / "predictions"
    records, labels = [], []
    for i, row in enumerate(frame.to_dict(orient="records")):
        request = f"req-{start + i:06d}"
        records.append({
            "request_id": request, "row": 0, "ts": T0 + dt.timedelta(seconds=start + i),
            "model": MODEL, "version": version, "flavour": "native", "latency_ms": 1.0,
            "prediction": 0, "probabilities": [0.5, 0.5],
            "inputs": {name: _plain(row[name]) for name in inputs}})
        if labelled is None or i < labelled:
            labels.append({"request_id": request, "row": 0, "label": int(row["default"]),
                           "ts": label_at or T0 + dt.timedelta(days=1, seconds=start + i)})
    for kind, rows in (("predictions", records), ("feedback", labels)):
        log = PredictionLog(folder, kind=kind).start()
        assert log.write(rows)
        assert log.close()


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def raise_alert(workspace: Workspace, *, kind: str = "drift", start_key: int = 0) -> int:
    """Store one alert for ``credit`` as a monitor pass does; return its id."""
    from loopml.tracking import TrackingClient

    client = TrackingClient.from_workspace(workspace)
    try:
        new = client.store.monitoring.save_results(MODEL, "1d", [], [{
            "version": 1, "start_key": start_key, "kind": kind, "severity": "critical",
            "message": f"{kind} in the window", "details": {}}])
    finally:
        client.close()
    return new[0].id


def input_names(workspace: Workspace) -> list[str]:
    from loopml.registry.registry import Registry

    with Registry.open(workspace) as registry:
        return [c["name"] for c in registry.get(f"{MODEL}@1").signature["inputs"]]
