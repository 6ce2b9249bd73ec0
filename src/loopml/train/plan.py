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


def make_plan(config: ProjectConfig, catalog: Catalog) -> TrainPlan:
    """Check the config against the data and return the plan; every mistake is one error."""
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
    metric = resolve_metric(task, config.train.metric)
    candidates = []
    for name in config.train.candidates:
        trainer = get_trainer(name)  # a missing library is an error now, not mid-search
        if task not in trainer.tasks:
            raise InvalidInput(f"loopml.yaml: train.candidates: {name!r} cannot do a {task} "
                               f"task")
        candidates.append(name)

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
    features = infer_features(parts["train"], target=data.target, spec=config.features,
                              sensitive=data.sensitive)

    search_rows = pd.concat([parts["train"], parts["validation"]], ignore_index=True)
    plan = TrainPlan(config=config, version=version, split=split, parts=parts, task=task,
                     metric=metric, target=data.target, classes=classes, features=features,
                     candidates=candidates, X=search_rows[features.columns],
                     y=np.empty(0), folds=[], validation="")
    plan.y = plan.encode(search_rows[data.target])
    plan.folds, plan.validation = _folds(plan, len(parts["train"]), len(search_rows))
    return plan


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
    if folds < 2:
        raise InvalidInput("loopml.yaml: train.cv_folds must be at least 2")
    seed = plan.config.train.seed
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed) if plan.task != \
        "regression" else KFold(folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(rows), plan.y)), \
        f"{folds}-fold cross-validation on {rows} train + validation rows"
