"""References from profiles and frames, and window sketches: exact counts, merge, JSON, PII."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.data.profile import profile_parquet, reference_edges, reference_probabilities
from loopml.errors import InvalidInput
from loopml.monitor.drift import window_drift, window_quality
from loopml.monitor.sketch import EDGE_SAMPLE, Reference, WindowSketch, bin_slots

ODD = ["prix €", 'say "hi"', "it's", "<script>alert(1)</script>", "a b\tc", "日本語"]
EMAILS = [f"person{i}@example.org" for i in range(400)]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.lognormal(10, 0.5, n),
        "age": rng.integers(18, 90, n),
        "city": rng.choice(["Paris", "Lyon", "Nice"], n, p=[0.5, 0.3, 0.2]),
        "flag": rng.random(n) < 0.3,
        "opened": (pd.Timestamp("2024-01-01")
                   + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s")).astype("datetime64[us]"),
        "email": [EMAILS[i % len(EMAILS)] for i in range(n)],
    })
    frame.loc[rng.random(n) < 0.05, "income"] = np.nan
    return frame


@pytest.fixture
def profiled(tmp_path):
    frame = _frame(3000, 0)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    path = tmp_path / "train.parquet"
    pq.write_table(table, path)
    return frame, table, profile_parquet(path, table.schema)  # e-mail detected as PII


def _features(frame: pd.DataFrame) -> pa.Table:
    """The typed columns WindowSketch.update takes: numbers float64, datetimes epoch seconds."""
    return pa.table({
        "income": frame["income"].to_numpy(float),
        "age": frame["age"].to_numpy(float),
        "city": pa.array(frame["city"].astype(str)),
        "flag": pa.array(np.where(frame["flag"], "true", "false")),
        "opened": frame["opened"].astype("int64").to_numpy() / 1e6,
        "email": pa.array(frame["email"]),
    })


SIGNATURE = {"inputs": [
    {"name": "income", "kind": "number", "min": 0.0, "max": 200_000.0},
    {"name": "age", "kind": "number", "type": "integer", "min": 18, "max": 89},
    {"name": "city", "kind": "category", "allowed": ["Lille", "Lyon", "Nice", "Paris"]},
    {"name": "flag", "kind": "category"},
    {"name": "opened", "kind": "datetime"},
    {"name": "email", "kind": "category"},
]}


def test_reference_from_profile_v2(profiled):
    frame, _, profile = profiled
    ref = Reference.from_profile(profile, signature=SIGNATURE, source="profile of credit@1")
    assert list(ref.features) == [c["name"] for c in SIGNATURE["inputs"]]
    income = ref.features["income"]
    assert income.kind == "numeric" and (income.low, income.high) == (0.0, 200_000.0)
    assert income.counts[0] == income.counts[-1] == 0
    assert income.counts[1:-1] == profile["columns"]["income"]["reference"]["counts"]
    assert income.std == pytest.approx(frame["income"].std(), rel=1e-9)
    assert income.missing_share == pytest.approx(frame["income"].isna().mean())
    opened = ref.features["opened"]
    assert opened.kind == "numeric" and opened.datetime and opened.std > 0
    city = ref.features["city"]
    assert dict(zip(city.categories, city.category_counts, strict=False)) == \
        frame["city"].value_counts().to_dict()
    assert city.category_counts[-1] == 0 and city.allowed == ["Lille", "Lyon", "Nice", "Paris"]
    flag = ref.features["flag"]
    assert sorted(flag.categories) == ["false", "true"]
    assert flag.allowed is not None  # every value listed: the reference's categories
    email = ref.features["email"]
    assert email.pii == "email" and email.categories is None and not email.has_reference
    assert "example.org" not in json.dumps(ref.to_json())


def test_sketch_of_the_training_data_equals_the_profile_counts(profiled):
    """numpy in the sketch and DuckDB in the profile count the same right-closed bins."""
    frame, _, profile = profiled
    ref = Reference.from_profile(profile, signature=SIGNATURE, source="p")
    sketch = WindowSketch.empty(ref)
    sketch.update(_features(frame), reference=ref)
    for name in ("income", "age", "opened", "city", "flag"):
        feature = ref.features[name]
        expected = feature.counts if feature.kind == "numeric" else feature.category_counts
        assert sketch.features[name].counts == expected, name
    result = window_drift(ref, sketch)
    assert not result.drifted and all(f.psi == pytest.approx(0, abs=1e-12)
                                      for f in result.features if f.monitored)


def test_version_1_profiles_use_the_histogram_exactly(profiled):
    frame, _, profile = profiled
    old = json.loads(json.dumps(profile))
    old["version"] = 1
    for stats in old["columns"].values():
        stats.pop("reference", None)
    ref = Reference.from_profile(old, signature=SIGNATURE, source="v1")
    sketch = WindowSketch.empty(ref)
    sketch.update(_features(frame), reference=ref)
    for name in ("income", "age", "opened"):
        histogram = old["columns"][name]["histogram"]["counts"]
        assert len(ref.features[name].edges) == len(histogram) + 1
        assert sketch.features[name].counts == [0, *histogram, 0], name
    assert ref.features["opened"].std > 0  # moments of the bins for v1 datetimes
    assert not window_drift(ref, sketch).drifted


def test_reference_without_signature_takes_every_profiled_column(profiled):
    _, table, profile = profiled
    ref = Reference.from_profile(profile, source="p")
    assert list(ref.features) == table.column_names
    assert ref.features["age"].low is None and ref.features["city"].allowed is not None


def test_merged_pieces_equal_one_sketch_and_json_round_trips(profiled):
    frame, _, profile = profiled
    ref = Reference.from_profile(profile, signature=SIGNATURE, source="p")
    window = _frame(2000, 5)
    window.loc[:40, "city"] = "Marseille"  # unseen: < UNSEEN_TOP values, so merge is exact
    window.loc[41:50, "age"] = 120  # out of range
    table = _features(window)
    whole = WindowSketch.empty(ref)
    whole.update(table, reference=ref, invalid={"age": 3})
    pieces = []
    for start, stop in ((0, 700), (700, 701), (701, 2000)):
        piece = WindowSketch.empty(ref)
        piece.update(table.slice(start, stop - start), reference=ref,
                     invalid={"age": 3 if start == 0 else 0})
        pieces.append(WindowSketch.from_json(json.loads(json.dumps(piece.to_json()))))
    merged = pieces[0].merge(pieces[1]).merge(pieces[2])
    a, b = whole.to_json(), merged.to_json()
    for name in a["features"]:
        fa, fb = a["features"][name], b["features"][name]
        for key in ("sum", "sumsq"):  # float sums in another order
            assert fa.pop(key) == pytest.approx(fb.pop(key), rel=1e-12)
        assert fa == fb, name
    assert a["rows"] == b["rows"] == 2000
    city = whole.features["city"]
    assert city.unseen == 41 and city.unseen_top == [["Marseille", 41]]
    assert whole.features["age"].out_of_range == 10 and whole.features["age"].invalid == 3
    assert ref == Reference.from_json(json.loads(json.dumps(ref.to_json())))
    assert WindowSketch.from_json(json.loads(json.dumps(whole.to_json()))) == whole


def test_missing_column_counts_as_missing_and_sizes_must_match(profiled):
    _, _, profile = profiled
    ref = Reference.from_profile(profile, signature=SIGNATURE, source="p")
    sketch = WindowSketch.empty(ref)
    sketch.update(pa.table({"age": [20.0, None, 30.0]}), reference=ref)
    assert sketch.features["income"].missing == 3 and sketch.features["age"].missing == 1
    other = WindowSketch.empty(Reference.from_frame(pd.DataFrame({"x": [1.0, 2.0]})))
    with pytest.raises(InvalidInput, match="different features"):
        sketch.merge(other)


def test_pii_values_never_reach_json(profiled):
    frame, _, profile = profiled
    ref = Reference.from_profile(profile, signature=SIGNATURE, source="p")
    window = _frame(500, 9)
    window["email"] = [f"new{i}@secret.example" for i in range(500)]
    sketch = WindowSketch.empty(ref)
    sketch.update(_features(window), reference=ref)
    framed = Reference.from_frame(frame)  # detected from the values
    assert framed.features["email"].pii == "email"
    framed_sketch = WindowSketch.empty(framed)
    framed_sketch.update(pa.Table.from_pandas(window, preserve_index=False), reference=framed)
    texts = json.dumps([ref.to_json(), sketch.to_json(), window_drift(ref, sketch).to_json(),
                        window_quality(ref, sketch).to_json(), framed.to_json(),
                        framed_sketch.to_json()])
    assert "@" not in texts and "secret.example" not in texts and "example.org" not in texts


def test_odd_column_names_survive_profile_sketch_and_json(tmp_path):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({name: rng.normal(size=300) if i % 2 else rng.choice(["x", "y"], 300)
                          for i, name in enumerate(ODD)})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp_path / "odd.parquet")
    for ref in (Reference.from_profile(profile_parquet(tmp_path / "odd.parquet", table.schema,
                                                       pii={}), source="p"),
                Reference.from_frame(frame), Reference.from_parquet(tmp_path / "odd.parquet")):
        assert list(ref.features) == ODD and all(f.has_reference for f in ref.features.values())
        sketch = WindowSketch.empty(ref)
        sketch.update(table, reference=ref)
        again = WindowSketch.from_json(json.loads(json.dumps(sketch.to_json())))
        assert list(again.features) == ODD
        assert [f.name for f in window_drift(ref, again).features] == ODD


@pytest.mark.parametrize("rows", [5000, EDGE_SAMPLE * 3])
def test_streamed_reference_matches_the_frame_one(tmp_path, rows):
    frame = _frame(rows, 3).drop(columns=["email"])
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "f.parquet",
                   row_group_size=7000)
    streamed = Reference.from_parquet(tmp_path / "f.parquet", pii={})
    framed = Reference.from_frame(frame, pii={})
    for name, a in framed.features.items():
        b = streamed.features[name]
        assert (a.kind, a.rows, a.categories, a.category_counts) == \
            (b.kind, b.rows, b.categories, b.category_counts), name
        assert a.missing_share == pytest.approx(b.missing_share)
        if a.kind == "numeric":
            assert b.mean == pytest.approx(a.mean, rel=1e-9)
            assert b.std == pytest.approx(a.std, rel=1e-9)
            assert sum(b.counts) == sum(a.counts), name
            if rows <= EDGE_SAMPLE:  # every value sampled: the same edges and counts
                assert (b.edges, b.counts) == (a.edges, a.counts), name
            else:  # a sample's quantiles: still close to equal mass
                shares = np.array(b.counts[2:-1]) / sum(b.counts)
                assert np.all(np.abs(shares - shares.mean()) < 0.01), name


@pytest.mark.parametrize("shape", ["normal", "uniform", "lognormal", "integer", "exponential"])
def test_bin_slots_equal_searchsorted(shape):
    rng = np.random.default_rng(6)
    draw = {"normal": lambda n: rng.normal(size=n), "uniform": lambda n: rng.random(n),
            "lognormal": lambda n: rng.lognormal(3, 1.5, n),
            "integer": lambda n: rng.integers(0, 9, n).astype(float),
            "exponential": lambda n: rng.exponential(2.0, n)}[shape]
    ref = draw(50_000)
    edges = reference_edges(ref.min(), ref.max(),
                            np.quantile(ref, reference_probabilities()).tolist())
    e = np.asarray(edges)
    near = np.concatenate([e, np.nextafter(e, -np.inf), np.nextafter(e, np.inf)])
    values = np.concatenate([draw(40_000) * 1.2, near, [-1e300, 1e300, 0.0]])
    counts = np.bincount(np.searchsorted(e, ref), minlength=e.size + 1).tolist()
    expected = np.searchsorted(e, values, side="left")
    assert (bin_slots(edges, values) == expected).all()
    assert (bin_slots(edges, values, counts=counts) == expected).all()
