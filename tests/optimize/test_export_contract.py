"""input_feeds: the fast paths per dtype give what the general per-value path gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidInput
from loopml.optimize.contract import input_feeds, make_signature

STAMPS = pd.Series(pd.to_datetime(["1960-05-01 13:45:12.5", None, "2024-02-29 23:59:59"],
                                  format="mixed"))


def reference_seconds(values: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(values.astype(object), errors="coerce", utc=True)
    return np.asarray((stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds(), dtype=float)


def feed(values: pd.Series, kind: str) -> np.ndarray:
    signature = make_signature(task="regression", classes=[], columns=[("c", kind)])
    return input_feeds(pd.DataFrame({"c": values}), signature)["x0"]


@pytest.mark.parametrize("values", [
    STAMPS, STAMPS.astype("datetime64[ms]"), STAMPS.astype("datetime64[s]"),
    STAMPS.dt.tz_localize("Europe/Paris"), STAMPS.dt.tz_localize("UTC"),
    STAMPS.astype(str).where(STAMPS.notna(), None)])
def test_dates_become_epoch_seconds_whatever_their_dtype(values):
    got = feed(values, "datetime")
    assert got.shape == (3, 1) and got.dtype == np.float64
    np.testing.assert_array_equal(got[:, 0], reference_seconds(values))


def test_texts_and_numbers():
    texts = pd.Series(["a", None, "b"])
    mixed = pd.Series(["a", None, 3.0, 4], dtype=object)
    assert feed(texts, "category")[:, 0].tolist() == ["a", "", "b"]
    assert feed(mixed, "category")[:, 0].tolist() == ["a", "", "3.0", "4"]
    assert feed(pd.Series([1.0, np.nan]), "category")[:, 0].tolist() == ["1.0", ""]
    np.testing.assert_array_equal(feed(pd.Series([1, 2]), "number")[:, 0], [1.0, 2.0])
    np.testing.assert_array_equal(feed(pd.Series([True, False]), "number")[:, 0], [1.0, 0.0])
    np.testing.assert_array_equal(feed(pd.Series([1.5, None]), "number")[:, 0], [1.5, np.nan])
    np.testing.assert_array_equal(feed(pd.Series(["2", None], dtype=object), "number")[:, 0],
                                  [2.0, np.nan])
    with pytest.raises(InvalidInput, match="expected numbers"):
        feed(pd.Series(["x", "1"]), "number")


def test_numpy_class_labels_are_stored_as_json_values():
    import json

    signature = make_signature(task="binary", columns=[("a", "number")],
                               classes=[np.int64(0), np.int64(1)])
    assert json.loads(json.dumps(signature))["classes"] == [0, 1]
