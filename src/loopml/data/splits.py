"""Train/validation/test splits: random, stratified, by group, or by time; reproducible by seed.

A split is an array with one label per row (0 train, 1 validation, 2 test), stored as an
artifact and recorded with the dataset version, so the same rows are always in the same
split, whatever happens to the code that made it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

METHODS = ("random", "stratified", "group", "time")
NAMES = ("train", "validation", "test")
# The same range as every seed in loopml.yaml (LightGBM takes signed 32-bit seeds).
SEED_MAX = 2**31 - 1


@dataclass(frozen=True)
class SplitSpec:
    method: str = "random"
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 42
    column: str | None = None

    def check(self, columns: list[str]) -> SplitSpec:
        """Return self if the spec can be applied to data with these columns."""
        if self.method not in METHODS:
            raise InvalidInput(f"split method {self.method!r} is not one of {', '.join(METHODS)}")
        if len(self.fractions) != 3 or not all(
                isinstance(f, int | float) and math.isfinite(f) and 0 <= f <= 1
                for f in self.fractions) \
                or abs(sum(self.fractions) - 1) > 1e-6 or self.fractions[0] == 0:
            raise InvalidInput(f"split fractions (--fractions, data.split.fractions) "
                               f"{self.fractions} must be three shares between 0 and 1 "
                               "(train, validation, test) that add up to 1, train above 0, "
                               "e.g. 0.7,0.15,0.15")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) \
                or not 0 <= self.seed <= SEED_MAX:
            raise InvalidInput(f"split seed (--seed, data.split.seed) {self.seed!r} is out of "
                               f"range: use a whole number from 0 to {SEED_MAX}")
        if self.method != "random":
            if not self.column:
                raise InvalidInput(f"a {self.method} split needs a column (--by COLUMN)")
            if self.column not in columns:
                raise InvalidInput(f"split column {self.column!r} is not in the data "
                                   f"(columns: {', '.join(columns)})")
        return self

    def key(self) -> str:
        """Return a stable id of this spec."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cut(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    train = int(round(n * fractions[0]))
    validation = int(round(n * (fractions[0] + fractions[1]))) - train
    return train, validation


def _label(order: np.ndarray, fractions: tuple[float, float, float], out: np.ndarray) -> None:
    train, validation = _cut(len(order), fractions)
    out[order[:train]] = 0
    out[order[train:train + validation]] = 1
    out[order[train + validation:]] = 2


def assign(frame: pd.DataFrame | None, num_rows: int, spec: SplitSpec) -> np.ndarray:
    """Return the split label (0, 1, 2) of every row.

    ``frame`` holds the split column (unused for random splits).
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(spec.seed)
    labels = np.full(num_rows, 2, dtype=np.int8)
    if spec.method == "random":
        _label(rng.permutation(num_rows), spec.fractions, labels)
    elif spec.method == "stratified":
        classes = pd.Series(frame[spec.column]).astype("string").fillna("<missing>")
        for _, index in sorted(classes.groupby(classes).indices.items()):
            _label(rng.permutation(np.asarray(index)), spec.fractions, labels)
    elif spec.method == "group":
        groups = pd.Series(frame[spec.column]).astype("string").fillna("<missing>")
        codes, uniques = pd.factorize(groups, sort=True)
        order = rng.permutation(len(uniques))
        sizes = np.bincount(codes, minlength=len(uniques))[order]
        bounds = np.cumsum(sizes) / num_rows
        group_label = np.where(bounds <= spec.fractions[0] + 1e-12, 0,
                               np.where(bounds <= spec.fractions[0] + spec.fractions[1] + 1e-12,
                                        1, 2)).astype(np.int8)
        group_label[0] = 0  # the first group always trains
        per_group = np.empty(len(uniques), dtype=np.int8)
        per_group[order] = group_label
        labels = per_group[codes]
    else:  # time
        times = pd.Series(frame[spec.column])
        if times.isna().any():
            raise InvalidInput(f"time split column {spec.column!r} has missing values; "
                               "fill or drop them first")
        _label(np.argsort(times.to_numpy(), kind="stable"), spec.fractions, labels)
    return labels


def counts(labels: np.ndarray) -> dict[str, int]:
    import numpy as np

    found = np.bincount(labels, minlength=3)
    return {name: int(found[i]) for i, name in enumerate(NAMES)}
