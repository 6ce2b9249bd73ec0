"""Turn loopml.yaml + the data into a checked training plan, before any work starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput
from loopml.train.task import infer_task, resolve_metric

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from loopml.config import ProjectConfig
    from loopml.data import Catalog
    from loopml.data.splits import SplitSpec
    from loopml.store.datasets import VersionRecord
    from loopml.train.features import FeatureSet

CV_MAX_ROWS = 20_000
# Few rows make a single k-fold score noisy enough that the argmax over many trials picks
# noise: with cv_folds auto, folds are repeated (reshuffled) this many times up to these rows.
REPEATS = ((1_000, 3), (5_000, 2))
# Fewer rows than this in a class cannot fill train, validation and test and still score.
MIN_CLASS_ROWS = 5


@dataclass
class TrainPlan:
    config: ProjectConfig
    version: VersionRecord
    split: SplitSpec
    parts: dict[str, pd.DataFrame]
    task: str
    metric: str
    target: str
    classes: list[Any]
    features: FeatureSet
    candidates: list[str]
    X: pd.DataFrame  # train + validation rows, the search's data
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    validation: str

    def encode(self, target: pd.Series) -> np.ndarray:
        """Return target values as the class indices the estimators learn (or floats)."""
        import numpy as np

        if self.task == "regression":
            return target.to_numpy(dtype=float)
        lookup = {value: index for index, value in enumerate(self.classes)}
        return np.array([lookup[v] for v in target.tolist()], dtype=int)


def make_plan(config: ProjectConfig, catalog: Catalog, *,
              version: VersionRecord | None = None) -> TrainPlan:
    """Check the config against the data and return the plan; every mistake is one error.

    ``version`` is the dataset version to train on (default: the dataset's latest).
    """
    import numpy as np
    import pandas as pd

    from loopml.data import SplitSpec
    from loopml.train.features import infer_features
    from loopml.train.trainers import get_trainer

    data = config.data
    if not data.target:
        raise InvalidInput("loopml.yaml: data.target is required (the column to predict)")
    if not data.dataset:
        raise InvalidInput("loopml.yaml: data.dataset is required (a dataset name; with "
                           "data.source, loopml adds the file as that dataset)")
    if version is None:
        version = catalog.get(data.dataset, project=config.project.name)
    columns = [c["name"] for c in version.schema]
    if data.target not in columns:
        raise InvalidInput(f"loopml.yaml: data.target {data.target!r} is not a column of "
                           f"{version.ref} (columns: {', '.join(columns)})")
    for column in data.sensitive:
        if column not in columns:
            raise InvalidInput(f"loopml.yaml: data.sensitive names {column!r}, which is not a "
                               f"column of {version.ref}")
    frame = catalog.load(version)
    if frame[data.target].isna().any():
        raise InvalidInput(f"target column {data.target!r} of {version.ref} has "
                           f"{int(frame[data.target].isna().sum())} missing values; drop or "
                           "fill those rows first")
    task = infer_task(frame[data.target]) if data.task == "auto" else data.task
    if task == "binary" and frame[data.target].nunique() != 2:
        raise InvalidInput(f"data.task is binary but {data.target!r} has "
                           f"{frame[data.target].nunique()} values")
    _check_target(frame[data.target], task, version.ref)
    metric = resolve_metric(task, config.train.metric)
    candidates = []
    for name in config.train.candidates:
        trainer = get_trainer(name)  # a missing library is an error now, not mid-search
        if task not in trainer.tasks:
            raise InvalidInput(f"loopml.yaml: train.candidates: {name!r} cannot do a {task} "
                               f"task")
        candidates.append(name)
    _check_search_space(config, task)
    from loopml.registry.gates import check_gates

    # The gates promotion will run: a metric that cannot fit the task is refused now.
    check_gates(config.gates, task=task, sensitive=data.sensitive,
                metric=config.train.metric)

    split_cfg = data.split
    method = split_cfg.method
    if method == "auto":
        method = "stratified" if task != "regression" else "random"
    split = SplitSpec(method=method, fractions=split_cfg.fractions, seed=split_cfg.seed,
                      column=split_cfg.column or (data.target if method == "stratified"
                                                  else None))
    parts = catalog.load_split(version.ref, split, project=config.project.name, frame=frame)
    if min(len(parts["train"]), len(parts["test"])) < 10:
        raise InvalidInput(f"{version.ref} has too few rows for a train/test split "
                           f"({ {k: len(v) for k, v in parts.items()} })")
    classes = sorted(frame[data.target].unique().tolist()) if task != "regression" else []
    personal = _raw_personal(version.pii)
    for column in data.sensitive:
        if column in personal:
            raise InvalidInput(
                f"loopml.yaml: data.sensitive names {column!r}, which holds personal data "
                f"({personal[column]}) stored raw: the card's fairness groups would show its "
                f"values; hash it (data.pii: {{{column}: hash}}) or leave it out")
    features = infer_features(parts["train"], target=data.target, spec=config.features,
                              sensitive=data.sensitive, pii=personal)

    search_rows = pd.concat([parts["train"], parts["validation"]], ignore_index=True)
    plan = TrainPlan(config=config, version=version, split=split, parts=parts, task=task,
                     metric=metric, target=data.target, classes=classes, features=features,
                     candidates=candidates, X=search_rows[features.columns],
                     y=np.empty(0), folds=[], validation="")
    plan.y = plan.encode(search_rows[data.target])
    plan.folds, plan.validation = _folds(plan, len(parts["train"]), len(search_rows))
    return plan


def _raw_personal(info: dict[str, Any]) -> dict[str, str]:
    """Return {column: kind} of personal columns stored raw (detected or kept, not hashed).

    They are never features unless listed under ``features:`` by name.

    >>> _raw_personal({"found": {"email": "email", "id": "ssn"},
    ...                "applied": {"id": "hash", "note": "keep"}})
    {'email': 'email', 'note': 'personal data'}
    """
    found = dict(info.get("found") or {})
    applied = dict(info.get("applied") or {})
    out = {c: k for c, k in found.items() if applied.get(c) in (None, "keep")}
    out.update({c: "personal data" for c, p in applied.items() if p == "keep" and c not in out})
    return out


def _folds(plan: TrainPlan, train_rows: int, rows: int
           ) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    setting = plan.config.train.cv_folds
    use_cv = setting != "auto" or rows <= CV_MAX_ROWS or rows == train_rows
    if not use_cv:
        train_index = np.arange(train_rows)
        valid_index = np.arange(train_rows, rows)
        return [(train_index, valid_index)], f"the validation split ({rows - train_rows} rows)"
    folds = 5 if setting == "auto" else int(setting)
    # Stratified folds need one class with a row in every fold; plain folds, rows.
    most = rows if plan.task == "regression" else int(np.bincount(plan.y).max())
    if not 2 <= folds <= most:
        what = f"{rows} train + validation rows" if plan.task == "regression" else \
            f"at most {most} rows of a class among the {rows} train + validation rows"
        raise InvalidInput(f"loopml.yaml: train.cv_folds is {folds}, but there are {what}; "
                           f"use a number from 2 to {most}, or auto")
    seed = plan.config.train.seed
    repeats = next((n for limit, n in REPEATS if rows <= limit), 1) if setting == "auto" else 1
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for repeat in range(repeats):
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed + repeat) \
            if plan.task != "regression" else KFold(folds, shuffle=True,
                                                    random_state=seed + repeat)
        found += list(splitter.split(np.zeros(rows), plan.y))
    again = f", repeated {repeats} times" if repeats > 1 else ""
    return found, f"{folds}-fold cross-validation{again} on {rows} train + validation rows"


def _check_target(target: pd.Series, task: str, ref: str) -> None:
    """Refuse a target that cannot be learnt as ``task``: text for regression, rare classes."""
    import pandas as pd

    name = target.name
    if task == "regression":
        numeric = pd.api.types.is_numeric_dtype(target) and \
            not pd.api.types.is_bool_dtype(target)
        if not numeric:
            raise InvalidInput(f"loopml.yaml: data.task is regression, but target column "
                               f"{name!r} of {ref} holds {target.dtype} values, not numbers; "
                               "set data.task to binary, multiclass or auto, or predict a "
                               "numeric column")
        return
    counts = target.value_counts()
    rare = counts[counts < MIN_CLASS_ROWS]
    if len(rare):
        label, rows = rare.index[-1], int(rare.iloc[-1])
        label = label.item() if hasattr(label, "item") else label  # numpy scalar: plain repr
        raise InvalidInput(f"target column {name!r} of {ref} has only {rows} row"
                           f"{'' if rows == 1 else 's'} of class {label!r} ({task} task); "
                           f"every class needs at least {MIN_CLASS_ROWS} rows to appear in "
                           "training and in the test split: add rows of that class, merge "
                           "rare classes, or remove those rows")


def check_without_data(config: ProjectConfig) -> None:
    """Refuse the config mistakes that need no data, before the source is read or stored.

    The search space is checked against every task a candidate can do when the task is
    ``auto`` (make_plan checks it again once the task is known).
    """
    from loopml.store.models import check_model_name
    from loopml.train.trainers import get_trainer

    name = config.models.name or config.project.name
    try:
        check_model_name(name)  # the version is registered after training: refuse it now
    except InvalidInput as exc:
        where = "models.name" if config.models.name else "project.name (the model's name " \
            "when models.name is not set)"
        raise InvalidInput(f"loopml.yaml: {where}: {exc}") from None
    if not config.data.target:
        raise InvalidInput("loopml.yaml: data.target is required (the column to predict)")
    if not config.data.dataset:
        raise InvalidInput("loopml.yaml: data.dataset is required (a dataset name; with "
                           "data.source, loopml adds the file as that dataset)")
    for name in config.train.candidates:
        get_trainer(name)  # a missing optional library is an error now
    for name in config.train.search_space:
        tasks = [config.data.task] if config.data.task != "auto" else \
            list(get_trainer(name).tasks)
        errors = []
        for task in tasks:
            try:
                _check_search_space(config, task, only=name)
            except InvalidInput as exc:
                errors.append(exc)
        if len(errors) == len(tasks):
            raise errors[0]


def _check_search_space(config: ProjectConfig, task: str, *, only: str | None = None) -> None:
    """Refuse parameter names a candidate's estimator does not take, before any run starts."""
    from loopml.train.trainers import get_trainer

    for name, space in config.train.search_space.items():
        if only is not None and name != only:
            continue
        trainer = get_trainer(name)
        defaults = trainer.defaults(task)
        estimator = trainer.build(defaults, task=task, seed=config.train.seed)
        valid = sorted(estimator.get_params(deep=False))
        unknown = [key for key in space if key not in valid]
        if unknown:
            raise InvalidInput(
                f"loopml.yaml: train.search_space.{name}: unknown parameter"
                f"{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                f"{name} ({type(estimator).__name__}, {task}) takes: {', '.join(valid)}")
        sample = dict(defaults)
        for key, spec in space.items():
            if spec.choices is not None:
                sample[key] = spec.choices[0]
            else:
                sample[key] = int(spec.low) if spec.int else spec.low
        try:
            trainer.build(sample, task=task, seed=config.train.seed)
        except TypeError as exc:  # a parameter loopml sets itself (random_state, n_jobs …)
            raise InvalidInput(f"loopml.yaml: train.search_space.{name}: {exc}; loopml sets "
                               "that parameter itself (from train.seed or train.n_jobs), "
                               "remove it from the search space") from exc
