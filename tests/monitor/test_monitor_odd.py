"""Monitoring a model of awkward data: odd column names, dates, booleans, holes, personal data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from monitor_helpers import publish, traffic

from loopml.config import ProjectConfig
from loopml.monitor.report_html import write_report
from loopml.monitor.runner import Monitor
from loopml.monitor.settings import MonitorSection
from loopml.registry.registry import Registry
from loopml.train.runner import train_project
from loopml.workspace import Workspace

SCRIPT = "<script>alert(1)</script>"


def _frame(n: int, *, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "Income, USD": rng.lognormal(10 + shift, 0.5, n),
        'naïve "quoted"': rng.choice(["a", "b", SCRIPT], n),
        "<b>bold</b>": rng.normal(0, 1, n),
        "signup date": pd.Timestamp("2024-01-01")
        + pd.to_timedelta(rng.integers(0, 365 + int(shift * 300), n), unit="D"),
        "flag": rng.choice([True, False], n),
        "email": [f"person{seed}x{i}@example.com" for i in range(n)],
        "count": rng.integers(0, 10, n),
    })
    frame.loc[rng.random(n) < 0.1, "<b>bold</b>"] = np.nan
    signal = frame["<b>bold</b>"].fillna(0) + (frame['naïve "quoted"'] == "a")
    frame["target"] = (signal + rng.normal(0, 1, n) > 0.5).astype(int)
    return frame


def test_odd_names_dates_booleans_and_personal_data_are_monitored_safely(tmp_path: Path):
    source = tmp_path / "odd.csv"
    _frame(1500, shift=0.0, seed=0).to_csv(source, index=False)
    workspace = Workspace.from_env(tmp_path / "home", env={})
    config = ProjectConfig.model_validate({
        "project": {"name": "odd"},
        "data": {"dataset": "odd", "source": str(source), "target": "target",
                 "pii": {"email": "hash"}},
        "train": {"candidates": ["lightgbm"], "trials": 1, "n_jobs": 1}})
    train_project(config, workspace=workspace, project_dir=tmp_path)
    when = datetime.now(UTC) - timedelta(days=1)
    raw_emails = []
    with Registry.open(workspace) as registry:
        record = registry.get("odd@1")
        model = registry.load(record)
        columns = [c["name"] for c in record.signature["inputs"]]
        for hour, shift in ((0, 0.0), (1, 1.0)):
            frame = _frame(1000, shift=shift, seed=1 + hour)
            raw_emails += frame["email"].head(3).tolist()
            predictions, feedback = traffic(model, frame, name="odd", version=1,
                                            when=when + timedelta(hours=hour),
                                            columns=[*columns, "email"], target="target")
            publish(tmp_path / "log", "predictions", predictions)
            publish(tmp_path / "log", "feedback", feedback)
        monitor = Monitor(registry, "odd", settings=MonitorSection(), log_dir=tmp_path / "log",
                          window="1h", settle_seconds=0)
        result = monitor.run_pass()
        report = monitor.report()
    assert result.rows == 2000 and not result.skipped
    calm, shifted = report["windows"]
    monitored = {f["name"]: f for f in calm["drift"]["features"]}
    assert set(monitored) == set(columns)
    assert all(f["monitored"] for f in monitored.values())  # dates and booleans included
    assert not calm["drift"]["drifted"] and not calm["quality"]["issues"]
    assert set(shifted["drift"]["drifted"]) == {"Income, USD", "signup date"}
    html, data = write_report(report, tmp_path / "reports", stem="odd")
    page, text = html.read_text(), data.read_text()
    assert SCRIPT not in page and "&lt;b&gt;bold&lt;/b&gt;" in page  # names shown, escaped
    assert not any(email in page or email in text for email in raw_emails)
