"""Greedy ensemble selection over trials' out-of-fold predictions, and the ensemble as one model.

Picking the single trial with the best cross-validated score on a few hundred rows picks noise
as often as signal; averaging the predictions of several good trials does not overfit the search
the same way. This is Caruana et al. (2004), "Ensemble selection from libraries of models", as
auto-sklearn and AutoGluon use it: forward selection *with replacement*, each round adding the
candidate whose addition gives the best score of the running mean, so the weights are counts.

>>> import numpy as np
>>> y = np.array([1.0, 2.0])
>>> high, low = np.array([1.5, 2.5]), np.array([0.5, 1.5])      # biased up, biased down
>>> mse = lambda y, pred: float(((y - pred) ** 2).mean())
>>> ensemble_selection([high, low], y, score=mse, greater_is_better=False, rounds=2).tolist()
[0.5, 0.5]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

__all__ = ["EnsembleModel", "ensemble_selection", "select_or_single"]

Score = Callable[[Any, Any], float]


def ensemble_selection(predictions: Sequence[np.ndarray], y: np.ndarray, *, score: Score,
                       greater_is_better: bool, rounds: int = 50,
                       deadline: float | None = None) -> np.ndarray:
    """Return one weight per candidate (counts / rounds, summing to 1) from greedy selection.

    Parameters
    ----------
    predictions : sequence of arrays
        Each candidate's out-of-fold predictions for the rows of ``y``, all of one shape:
        values (n,) for regression, probability matrices (n, classes) for classifiers, with
        the columns in the same class order for every candidate.
    y : array
        The true targets those predictions are for.
    score : callable
        ``score(y, pred)`` of an averaged prediction; a NaN score counts as the worst.
    greater_is_better : bool
        True for scores such as ROC-AUC or R², False for losses such as RMSE or log-loss.
    rounds : int
        How many picks (with replacement); the weights are multiples of ``1 / rounds``.
    deadline : float, optional
        A ``time.monotonic()`` value: past it, no further round starts and the weights are
        the counts over the rounds done (at least one). Each round scores every candidate once,
        so ``rounds × len(predictions)`` score calls in all. A deadline that cuts the run
        short makes the weights depend on the machine's speed, no longer on the inputs alone.

    The first round picks the best single candidate (adding to an empty ensemble is scoring
    each one alone). Ties go to the lowest index, so the same inputs give the same weights
    without a random seed.
    """
    import time

    import numpy as np

    stacked = _stack(predictions, y)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise InvalidInput(f"ensemble rounds must be a whole number ≥ 1, got {rounds!r}")
    sign = 1.0 if greater_is_better else -1.0
    counts = np.zeros(len(stacked), dtype=int)
    total = np.zeros_like(stacked[0])
    size = 0
    while size < rounds and (size == 0 or deadline is None or time.monotonic() < deadline):
        size += 1
        best, best_value = 0, -np.inf
        for index, candidate in enumerate(stacked):
            value = _signed(score(y, (total + candidate) / size), sign)
            # strictly better only: a tie keeps the lower index
            if value > best_value:
                best, best_value = index, value
        counts[best] += 1
        total += stacked[best]
    return counts / size


def select_or_single(predictions: Sequence[np.ndarray], y: np.ndarray, *, score: Score,
                     greater_is_better: bool, rounds: int = 50,
                     deadline: float | None = None) -> np.ndarray:
    """Return the ensemble's weights, or one-hot weights on the best single candidate.

    The ensemble is kept only when its out-of-fold score beats the best single candidate's
    strictly: an ensemble that merely ties costs more to serve and to explain for nothing.
    Arguments are those of :func:`ensemble_selection`.

    >>> import numpy as np
    >>> y = np.array([1.0, 2.0])
    >>> right, off = np.array([1.0, 2.0]), np.array([3.0, 3.0])
    >>> mse = lambda y, pred: float(((y - pred) ** 2).mean())
    >>> select_or_single([off, right], y, score=mse, greater_is_better=False).tolist()
    [0.0, 1.0]
    """
    import numpy as np

    stacked = _stack(predictions, y)
    weights = ensemble_selection(stacked, y, score=score, greater_is_better=greater_is_better,
                                 rounds=rounds, deadline=deadline)
    sign = 1.0 if greater_is_better else -1.0
    singles = [_signed(score(y, candidate), sign) for candidate in stacked]
    best = int(np.argmax(singles))  # the first of equal bests, as in the selection
    blended = np.tensordot(weights, stacked, axes=1)
    if _signed(score(y, blended), sign) > singles[best]:
        return weights
    single = np.zeros(len(stacked))
    single[best] = 1.0
    return single


def _signed(value: float, sign: float) -> float:
    # NaN (e.g. ROC-AUC on a fold with one class) must lose every comparison
    value = float(value)
    return -float("inf") if value != value else sign * value


def _stack(predictions: Sequence[Any], y: Any) -> np.ndarray:
    import numpy as np

    if len(predictions) == 0:
        raise InvalidInput("ensemble selection needs at least one candidate's predictions")
    arrays = [np.asarray(p, dtype=float) for p in predictions]
    shape = arrays[0].shape
    for index, array in enumerate(arrays):
        if array.shape != shape:
            raise InvalidInput(f"ensemble candidate {index} has predictions of shape "
                               f"{array.shape}, expected {shape} like candidate 0; give every "
                               "candidate's predictions for the same rows (and classes)")
    if len(shape) == 0 or shape[0] != len(y):
        raise InvalidInput(f"ensemble predictions cover {shape[0] if shape else 0} rows but y "
                           f"has {len(y)}; give out-of-fold predictions for every row of y")
    return np.stack(arrays)


class EnsembleModel:
    """A weighted mean of fitted models that answers like one estimator.

    ``predict_proba`` is the weighted mean of the members' ``predict_proba`` (columns in the
    order of ``classes``); ``predict`` is the class of the largest mean probability — for
    binary tasks the positive class (``classes[1]``) when its probability is at least
    ``threshold``, as :class:`loopml.train.model.TrainedModel` decides — and for regression the
    weighted mean of the members' ``predict``. Members of weight 0 are dropped; the weights
    are normalised to sum to 1.

    Inside a :class:`~loopml.train.model.TrainedModel` it stands where the pipeline does:
    members trained on encoded labels go with ``classes=list(range(k))``, and the
    TrainedModel maps those back to the target's values.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression                # doctest: +SKIP
    >>> model = EnsembleModel([a, b], [0.75, 0.25], task="regression")   # doctest: +SKIP
    >>> model.predict(X)        # 0.75 * a.predict(X) + 0.25 * b.predict(X)  # doctest: +SKIP
    """

    def __init__(self, members: list[Any], weights: list[float], *, task: str,
                 classes: Sequence[Any] = (), names: Sequence[str] | None = None,
                 threshold: float = 0.5) -> None:
        if task not in ("binary", "multiclass", "regression"):
            raise InvalidInput(f"ensemble task must be binary, multiclass or regression, "
                               f"got {task!r}")
        if len(members) != len(weights):
            raise InvalidInput(f"an ensemble needs one weight per member: {len(members)} "
                               f"members, {len(weights)} weights")
        if names is not None and len(names) != len(members):
            raise InvalidInput(f"an ensemble needs one name per member: {len(members)} "
                               f"members, {len(names)} names")
        values = [float(w) for w in weights]
        if any(not w >= 0 for w in values) or sum(values) <= 0:
            raise InvalidInput(f"ensemble weights must be ≥ 0 with a positive sum, got {values}")
        if task != "regression" and len(classes) < 2:
            raise InvalidInput(f"a {task} ensemble needs its classes (≥ 2), got {list(classes)}")
        total = sum(values)
        kept = [i for i, w in enumerate(values) if w > 0]
        self.task = task
        self.classes = list(classes)
        self.threshold = threshold
        self.members = [members[i] for i in kept]
        self.weights = [values[i] / total for i in kept]
        # where each kept member sat in the list given, so the card can point back at trials
        self.indices = kept
        self.names = [names[i] if names is not None else _name_of(members[i]) for i in kept]

    @property
    def classes_(self) -> np.ndarray:
        """The labels, in the order of :meth:`predict_proba`'s columns."""
        import numpy as np

        return np.asarray(self.classes)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return the weighted mean of the members' class probabilities."""
        if self.task == "regression":
            raise InvalidInput("a regression ensemble has no probabilities; use predict")
        out = None
        for member, weight in zip(self.members, self.weights, strict=True):
            part = weight * self._member_proba(member, X)
            out = part if out is None else out + part
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Return the weighted mean (regression) or the label the mean probabilities pick."""
        import numpy as np

        if self.task == "regression":
            out = None
            for member, weight in zip(self.members, self.weights, strict=True):
                part = weight * np.asarray(member.predict(X), dtype=float)
                out = part if out is None else out + part
            return out
        proba = self.predict_proba(X)
        if self.task == "binary":
            index = (proba[:, 1] >= self.threshold).astype(int)
        else:
            index = proba.argmax(axis=1)
        return self.classes_[index]

    def describe(self) -> list[dict[str, Any]]:
        """Return the members for the model card: position given, weight and name."""
        return [{"member": i, "weight": w, "name": n}
                for i, w, n in zip(self.indices, self.weights, self.names, strict=True)]

    def _member_proba(self, member: Any, X: Any) -> np.ndarray:
        import numpy as np

        proba = np.asarray(member.predict_proba(X), dtype=float)
        if proba.shape[1] == len(self.classes):
            return proba
        # a member fitted on rows without some class has fewer columns: place them by label
        seen = list(getattr(member, "classes_", []))
        position = {label: i for i, label in enumerate(self.classes)}
        if len(seen) != proba.shape[1] or any(label not in position for label in seen):
            raise InvalidInput(f"an ensemble member ({_name_of(member)}) gives {proba.shape[1]} "
                               f"probability columns for classes {seen}, which do not map onto "
                               f"the ensemble's classes {self.classes}")
        out = np.zeros((len(proba), len(self.classes)))
        out[:, [position[label] for label in seen]] = proba
        return out


def _name_of(member: Any) -> str:
    # a pipeline's estimator is its last step (loopml's "model"); name that, not "Pipeline"
    steps = getattr(member, "steps", None)
    inner = steps[-1][1] if steps else member
    return type(inner).__name__
