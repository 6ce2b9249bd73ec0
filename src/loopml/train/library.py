"""The trials' out-of-fold predictions: the library the final model is selected from.

Each complete trial leaves one ``.npy`` in the search's folder: its predictions for every
search row (averaged over repeated folds, NaN where no fold predicted the row), written
whole or not at all. :func:`load_library` reads back the best ones for the selection.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from loopml.evaluate.metrics import get_metric

if TYPE_CHECKING:
    import numpy as np

    from loopml.train.search import SearchResult

# How many complete trials' out-of-fold predictions come back for the ensemble selection:
# the best of each candidate, then the best others.
LIBRARY_SIZE = 20
OOF_FOLDER = "oof"  # in the search's folder: one .npy per complete trial


def save_oof(folder: Path, number: int, oof: np.ndarray, seen: np.ndarray) -> None:
    import numpy as np

    covered = seen > 0
    mean = np.full(oof.shape, np.nan, dtype=np.float32)
    divisor = seen[covered].reshape(-1, *([1] * (oof.ndim - 1)))
    mean[covered] = oof[covered] / divisor
    folder.mkdir(exist_ok=True)
    partial = folder / f"{number}.npy.partial"
    with partial.open("wb") as handle:
        np.save(handle, mean)
    partial.replace(folder / f"{number}.npy")  # a reader sees a whole file or none


def load_library(folder: Path, result: SearchResult, metric: str, *,
                 size: int = LIBRARY_SIZE) -> dict[int, np.ndarray]:
    """Return the out-of-fold predictions of the best complete trials (see LIBRARY_SIZE)."""
    import numpy as np

    sign = get_metric(metric).direction
    complete = sorted((t for t in result.trials if t["state"] == "COMPLETE"
                       and t["value"] is not None and (folder / f"{t['number']}.npy").exists()),
                      key=lambda t: (-sign * t["value"], t["number"]))
    chosen: list[int] = []
    models: set[str | None] = set()
    for trial in complete:  # the best of each candidate first: a diverse library
        if trial["model"] not in models:
            models.add(trial["model"])
            chosen.append(trial["number"])
    chosen += [t["number"] for t in complete if t["number"] not in chosen]
    return {n: np.load(folder / f"{n}.npy") for n in sorted(chosen[:size])}
