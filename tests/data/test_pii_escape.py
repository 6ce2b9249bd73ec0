"""Raw personal data never escapes: plant e-mails and phone numbers, run the data commands and
a training run, then search every output, every workspace file and every table for them.

Only the snapshots themselves may hold raw values (of columns kept raw, by policy or with no
policy); everything else (messages, reports, profiles, contracts, JSON, cards, models) masks.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.data import Catalog, resolve_source
from loopml.data import sources as sources_module
from loopml.errors import InvalidInput
from loopml.workspace import Workspace
from loopml_cli import run_loopml as loopml

ROWS = 240


def people(n: int = ROWS, *, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = rng.normal(40_000, 9_000, n).round(2)
    return pd.DataFrame({
        "customer_id": np.arange(n),
        "age": age,
        "income": income,
        "segment": rng.choice(["A", "B", "C"], n),
        "email": [f"person{i:03d}.doe@example.com" for i in range(n)],
        "phone": [f"+1 555-867-{i:04d}" for i in range(n)],
        "contact": [f"+44 20 7946 {i:04d}" for i in range(n)],  # detected, no policy
        "default": ((age < 30) ^ (rng.random(n) < 0.2)).astype(int),
    })


def raw_values(frame: pd.DataFrame) -> set[str]:
    return {str(v) for column in ("email", "phone", "contact") for v in frame[column]}


def leaks(text: str, raw: set[str]) -> list[str]:
    return sorted(v for v in raw if v in text)


@pytest.mark.slow
def test_no_raw_pii_in_any_output_file_or_table(tmp_path):
    home = tmp_path / "ws"
    frame = people()
    raw = raw_values(frame)
    frame.to_csv(tmp_path / "people.csv", index=False)

    mixed = frame.copy()  # phone mostly plain digits: a column mixing numbers with text
    mixed["phone"] = [v if i % 3 == 0 else str(5558670000 + i) for i, v in
                      enumerate(frame["phone"])]
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    ragged = (tmp_path / "people.csv").read_text().splitlines()
    ragged[5] += ",person-extra@example.com"
    (tmp_path / "ragged.csv").write_text("\n".join(ragged) + "\n")
    raw.add("person-extra@example.com")

    bad = people(60, seed=12)  # validation batch: personal values in the wrong columns
    bad["age"] = bad["age"].astype(object)
    bad.loc[:9, "age"] = bad.loc[:9, "phone"]
    bad.loc[10:14, "segment"] = bad.loc[10:14, "email"]
    bad.to_csv(tmp_path / "bad.csv", index=False)
    raw |= raw_values(bad)

    (tmp_path / "loopml.yaml").write_text(json.dumps({
        "project": {"name": "pii"},
        "data": {"dataset": "people_train", "source": "people.csv", "target": "default",
                 "pii": {"phone": "hash", "email": "drop"}},
        "train": {"candidates": ["linear"], "trials": 2, "n_jobs": 1, "cv_folds": 2,
                  "seed": 1},
    }))

    runs = {
        "add-policy": ("data", "add", "people.csv", "--name", "people", "--target", "default",
                       "--pii", "phone=hash", "--pii", "email=drop", "--json"),
        "add-raw": ("data", "add", "people.csv", "--name", "people_raw"),
        "add-raw-json": ("data", "add", "people.csv", "--name", "people_raw", "--json"),
        "show": ("data", "show", "people_raw"),
        "show-json": ("data", "show", "people_raw", "--json"),
        "contract": ("data", "contract", "people_raw"),
        "contract-policy": ("data", "contract", "people"),
        "mixed": ("data", "add", "mixed.csv", "--name", "m", "--pii", "phone=hash"),
        "mixed-no-policy": ("data", "add", "mixed.csv", "--name", "m"),
        "ragged": ("data", "add", "ragged.csv", "--name", "r"),
        "validate": ("data", "validate", "bad.csv", "--against", "people"),
        "validate-json": ("data", "validate", "bad.csv", "--against", "people_raw", "--json"),
        "train": ("train", "--config", "loopml.yaml"),
    }
    outputs = {}
    for key, args in runs.items():
        result = loopml(*args, home=home, cwd=tmp_path)
        outputs[key] = result
        assert "Traceback" not in result.stderr, (key, result.stderr)
        assert not leaks(result.stdout + result.stderr, raw), (key, result.stdout,
                                                                result.stderr)
    assert outputs["add-policy"].returncode == 0, outputs["add-policy"].stderr
    assert outputs["train"].returncode == 0, outputs["train"].stderr
    for key in ("mixed", "mixed-no-policy"):
        assert outputs[key].returncode == 2 and "(phone, masked)" in outputs[key].stderr
        assert "mixes numbers with text" in outputs[key].stderr
    assert outputs["ragged"].returncode == 2 and "Expected 8 columns, got 9" in \
        outputs["ragged"].stderr
    validation = json.loads(outputs["validate-json"].stdout)
    examples = [e for v in validation["violations"] for e in v["examples"]]
    assert any("masked" in e for e in examples) and validation["passed"] is False
    assert "masked" in outputs["validate"].stdout

    catalog = Catalog.from_workspace(Workspace.from_env(home, env={}))
    snapshots = {v.snapshot_sha256 for v in catalog.list()}
    policy = catalog.get("people")
    assert policy.pii["applied"] == {"phone": "hash", "email": "drop"}
    assert "contact" in policy.pii["found"]

    # The trained model: the detected, unapproved column is neither a feature nor a slice.
    cards = [json.loads(p.read_bytes()) for p in home.rglob("*")
             if p.is_file() and p.stat().st_size < 5_000_000 and _is_card(p)]
    assert cards
    for card in cards:
        features = card["features"]
        used = [*features["numeric"], *features["categorical"], *features["datetime"]]
        assert not {"email", "phone", "contact"} & set(used)
        assert "personal data" in features["dropped"]["contact"]
        assert "contact" not in (card["evaluation"].get("slices") or {})

    checked = 0
    for path in home.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() in snapshots:
            continue  # the data itself, kept raw where the policy (or its absence) says so
        found = leaks(data.decode("utf-8", "replace"), raw)
        assert not found, (path, found[:3])
        checked += 1
    assert checked > 10

    with sqlite3.connect(home / "loopml.db") as conn:
        dump = "\n".join(conn.iterdump())
    assert not leaks(dump, raw)


def _is_card(path: Path) -> bool:
    head = path.read_bytes()[:1]
    if head != b"{":
        return False
    try:
        return "evaluation" in json.loads(path.read_bytes())
    except ValueError:
        return False


@pytest.mark.parametrize(("column", "good", "bad", "hidden", "policy"), [
    ("phone", "5558670000", "+1 555-867-5309", "867-5309", "hash"),
    # Arrow names types like timestamp[s] or date32[day]: the value must still be masked
    ("dob", "2020-01-01 10:00:00", "jane.doe@example.com", "jane.doe", "drop"),
    ("dob", "2020-01-01", "jane.doe@example.com", "jane.doe", "drop"),
])
def test_reader_error_in_a_later_block_masks_personal_values(catalog, tmp_path, monkeypatch,
                                                              column, good, bad, hidden, policy):
    rows = "".join(f"{i},{good}\n" for i in range(2000)) + f"9,{bad}\n"
    path = tmp_path / "late.csv"
    path.write_text(f"id,{column}\n" + rows, encoding="utf-8")
    monkeypatch.setattr(sources_module, "BLOCK_BYTES", 2048)
    for policies in ({column: policy}, None):
        with pytest.raises(InvalidInput) as info:
            catalog.add(resolve_source(path), name="late", pii=policies)
        message = str(info.value)
        assert hidden not in message and f"column {column!r}" in message
        if column == "phone":
            assert "'+1 5…09' (phone, masked)" in message


def test_detected_pii_columns_are_not_features_unless_listed():
    from loopml.config import FeaturesSection
    from loopml.train.features import infer_features

    frame = people()
    # few distinct values: without the PII rule this would be a category, and a card slice
    frame["first_name"] = np.random.default_rng(3).choice(["Ada", "Alan", "Grace"], len(frame))
    auto = infer_features(frame, target="default", spec=FeaturesSection(), sensitive=[])
    for column in ("email", "phone", "contact", "first_name"):
        assert column not in auto.columns and "personal data" in auto.dropped[column]
    assert set(auto.numeric) == {"age", "income"} and auto.categorical == ["segment"]
    # a version's record decides when given: the user kept `contact`, so it may be used
    given = infer_features(frame, target="default", spec=FeaturesSection(), sensitive=[],
                           pii={"email": "email"})
    assert "email" not in given.columns and "first_name" in given.categorical
    assert "personal" not in given.dropped.get("contact", "")
    listed = infer_features(frame, target="default", sensitive=[],
                            spec=FeaturesSection(categorical=["segment", "first_name"]))
    assert listed.categorical == ["segment", "first_name"]
