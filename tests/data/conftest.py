"""Fixtures for the data tests: a catalog on a fresh workspace and small real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.data import Catalog


@pytest.fixture
def catalog(store, artifacts) -> Catalog:
    return Catalog(store, artifacts, pii_key=b"test-key")


@pytest.fixture
def credit_frame() -> pd.DataFrame:
    """An ordinary tabular dataset: ids, numbers, categories, a date, a binary target."""
    rng = np.random.default_rng(7)
    n = 600
    return pd.DataFrame({
        "customer_id": np.arange(1000, 1000 + n),
        "age": rng.integers(18, 90, n),
        "income": rng.normal(50_000, 12_000, n).round(2),
        "city": rng.choice(["Paris", "Lyon", "Nice", "Lille"], n),
        "segment": rng.choice(["A", "B"], n, p=[0.7, 0.3]),
        "opened": pd.date_range("2024-01-01 08:30", periods=n, freq="7h").astype("datetime64[s]"),
        "default": rng.integers(0, 2, n),
    })


@pytest.fixture
def credit_csv(tmp_path: Path, credit_frame: pd.DataFrame) -> Path:
    path = tmp_path / "credit.csv"
    credit_frame.to_csv(path, index=False)
    return path
