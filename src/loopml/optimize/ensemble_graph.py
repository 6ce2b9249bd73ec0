"""ONNX form of an ensemble: every member's preprocessing and estimator, then their weighted mean.

An ensemble (:class:`loopml.train.ensemble.EnsembleModel`) holds fitted pipelines that each
have their own ``features`` step (tree members encode categories as ordinals, linear ones
one-hot and scale) and a ``model`` step. All of them read the same raw inputs ``x0``, ``x1``,
… of the contract, so the graph is each member's :func:`~loopml.optimize.export.features_graph`
and :func:`~loopml.optimize.estimators.estimator_graph` side by side, summed with the
members' weights in double (as the native ensemble sums in float64) and cast to float once.

The ensemble is recognised by its shape (``members`` and ``weights``), not by importing
``loopml.train``: optimize reads models, it does not build them.
"""

from __future__ import annotations

from typing import Any

from loopml.errors import ExportFailed
from loopml.optimize.graph import Graph

__all__ = ["ensemble_graph", "ensemble_kinds", "is_ensemble"]


def is_ensemble(pipeline: Any) -> bool:
    """Return whether ``pipeline`` is an ensemble of pipelines (``members`` and ``weights``)."""
    return isinstance(getattr(pipeline, "members", None), list) and \
        isinstance(getattr(pipeline, "weights", None), list)


def ensemble_kinds(ensemble: Any, columns: list[str]) -> dict[str, str]:
    """Return each input column's contract kind, agreed by every member that reads it.

    A column no member reads is fed as text (any value passes), as for a single model.
    Members built from one feature set agree; members that read a column as two kinds
    cannot share one graph input, so that is an :class:`~loopml.errors.ExportFailed`.
    """
    from loopml.optimize.export import _part_kind, _parts

    kinds: dict[str, str] = {}
    readers: dict[str, int] = {}
    for position in range(len(ensemble.members)):
        steps = _steps_of(ensemble, position)
        try:
            parts = _parts(steps["features"])
        except ExportFailed as exc:
            raise ExportFailed(f"cannot export {_where(ensemble, position)}: "
                               f"{_without_prefix(str(exc))}") from exc
        for _, part, used in parts:
            kind = _part_kind(part)
            for column in used:
                if kinds.setdefault(column, kind) != kind:
                    raise ExportFailed(
                        f"cannot export the ensemble: member {readers[column] + 1} reads "
                        f"column {column!r} as {kinds[column]}, member {position + 1} "
                        f"({_label(ensemble, position)}) as {kind}; one ONNX input has one "
                        "kind")
                readers.setdefault(column, position)
    return {c: kinds.get(c, "category") for c in columns}


def ensemble_graph(g: Graph, ensemble: Any, names: dict[str, str], *, task: str,
                   n_classes: int) -> str:
    """Return the float output of the weighted mean of the members' graphs.

    ``[N, n_classes]`` probabilities, columns in the ensemble's class order, or ``[N, 1]``
    values for regression. A member that cannot convert raises
    :class:`~loopml.errors.ExportFailed` naming it (``ensemble member 2 of 3
    (random_forest): …``): then the ensemble has no ONNX form, and the caller says so.
    """
    import numpy as np
    from onnx import TensorProto

    from loopml.optimize.export import features_graph

    total = None
    built: dict[str, tuple[str, int]] = {}  # fitted-state hash -> features tensor, width
    for position, weight in enumerate(ensemble.weights):
        steps = _steps_of(ensemble, position)
        try:
            # members of one family fitted on the same rows have equal preprocessing:
            # computed once in the graph, not once per member
            key = _fingerprint(steps["features"])
            if key is None:
                features, width = features_graph(g, steps["features"], names)
            else:
                if key not in built:
                    built[key] = features_graph(g, steps["features"], names)
                features, width = built[key]
            out = _member_output(g, steps["model"], features, width=width, task=task,
                                 n_classes=n_classes,
                                 seen=getattr(ensemble.members[position], "classes_", None))
        except ExportFailed as exc:
            raise ExportFailed(f"cannot export {_where(ensemble, position)}: "
                               f"{_without_prefix(str(exc))}") from exc
        # summed in double, as the native ensemble sums float64 probabilities
        part = g.op("Mul", [g.op("Cast", [out], "member_double", to=TensorProto.DOUBLE),
                            g.const(np.array(float(weight), dtype=np.float64), "weight")],
                    "weighted")
        total = part if total is None else g.op("Add", [total, part], "ensemble_sum")
    if total is None:
        raise ExportFailed("cannot export the ensemble: it has no members")
    return g.op("Cast", [total], "ensemble", to=TensorProto.FLOAT)


def _member_output(g: Graph, estimator: Any, features: str, *, width: int, task: str,
                   n_classes: int, seen: Any) -> str:
    """Return one member's output, its probability columns placed in the ensemble's order."""
    import numpy as np

    from loopml.optimize.estimators import estimator_graph

    labels = list(seen) if seen is not None and task != "regression" else None
    if labels is None or len(labels) == n_classes:
        return estimator_graph(g, estimator, features, width=width, task=task,
                               n_classes=n_classes)
    # a member fitted on rows without some class answers fewer columns: place them by
    # label, as EnsembleModel does (the ensemble's classes are 0 … k-1)
    if len(labels) < 2 or any(not isinstance(c, int | np.integer) or not 0 <= c < n_classes
                              for c in labels):
        raise ExportFailed(f"model ({type(estimator).__name__}): it knows classes {labels}, "
                           f"which do not map onto the ensemble's {n_classes} classes")
    own = estimator_graph(g, estimator, features, width=width,
                          task="binary" if len(labels) == 2 else "multiclass",
                          n_classes=len(labels))
    placement = np.zeros((len(labels), n_classes), dtype=np.float32)
    placement[np.arange(len(labels)), [int(c) for c in labels]] = 1.0
    return g.op("MatMul", [own, g.const(placement, "class_placement")], "placed")


def _fingerprint(transformer: Any) -> str | None:
    """Return a hash of ``transformer``'s fitted state, or None when it cannot be hashed."""
    import joblib

    try:
        return joblib.hash(transformer)
    except Exception:  # an unpicklable part: build that member's features on their own
        return None


def _steps_of(ensemble: Any, position: int) -> dict[str, Any]:
    steps = getattr(ensemble.members[position], "named_steps", {})
    if "features" not in steps or "model" not in steps:
        raise ExportFailed(f"cannot export {_where(ensemble, position)}: expected a pipeline "
                           "with the steps 'features' and 'model', got "
                           f"{type(ensemble.members[position]).__name__}")
    return steps


def _label(ensemble: Any, position: int) -> str:
    names = getattr(ensemble, "names", None)
    if isinstance(names, list) and position < len(names):
        return str(names[position])
    steps = getattr(ensemble.members[position], "steps", None)
    return type(steps[-1][1] if steps else ensemble.members[position]).__name__


def _where(ensemble: Any, position: int) -> str:
    return (f"ensemble member {position + 1} of {len(ensemble.members)} "
            f"({_label(ensemble, position)})")


def _without_prefix(message: str) -> str:
    """Return ``message`` without a leading "cannot export " (the caller says it once)."""
    prefix = "cannot export "
    return message[len(prefix):] if message.startswith(prefix) else message
