"""The model a server answers with: one registry version, loaded, and swapped when its alias moves.

:class:`Served` is an immutable loaded version with a ``predict`` over column arrays (ONNX
flavour: fed straight from the arrays, no pandas; native flavour: through a DataFrame).
:class:`LiveModel` holds the current one; :meth:`LiveModel.refresh` loads the version the alias
points at now and swaps the reference in one assignment, so a request that already took the
old version finishes with it and the next one gets the new version: nothing is dropped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from loopml.serve.inputs import Columns, InputColumn
    from loopml.store.models import ModelVersionRecord
    from loopml.workspace import Workspace


@dataclass(frozen=True)
class Answer:
    """Predictions of a batch: labels or values, and probabilities for classifiers."""

    predictions: list[Any]
    probabilities: np.ndarray | None


@dataclass(frozen=True)
class Served:
    """A loaded registry version and how to feed it."""

    record: ModelVersionRecord
    model: Any
    flavour: str
    columns: list[InputColumn]
    classes: list[Any] = field(default_factory=list)
    threshold: float = 0.5

    @property
    def task(self) -> str:
        return self.record.task

    @property
    def version(self) -> int:
        return self.record.version

    def predict(self, arrays: Columns, raw: dict[str, list[Any]]) -> Answer:
        """Return the answers for rows given as feeding arrays (and raw values for native)."""
        import numpy as np

        output = self._run_onnx(arrays) if self.flavour == "onnx" else \
            self._run_native(arrays, raw)
        if self.task == "regression":
            return Answer(np.asarray(output, dtype=np.float64).reshape(-1).tolist(), None)
        proba = np.asarray(output, dtype=np.float64)
        if self.task == "binary":
            index = (proba[:, 1] >= self.threshold).astype(int)
        else:
            index = proba.argmax(axis=1)
        labels = [self.classes[i] for i in index]
        return Answer(labels, proba)

    def _run_onnx(self, arrays: Columns) -> np.ndarray:
        signature = self.model.signature
        feeds = {c["input"]: arrays[c["name"]].reshape(-1, 1) for c in signature["columns"]}
        name = "value" if self.task == "regression" else "probabilities"
        return self.model.session.run([name], feeds)[0]

    def _run_native(self, arrays: Columns, raw: dict[str, list[Any]]) -> np.ndarray:
        from loopml.serve.inputs import as_frame

        frame = as_frame(raw, arrays, self.columns)
        if self.task == "regression":
            return self.model.predict(frame)
        return self.model.predict_proba(frame)

    def contributions(self, raw: dict[str, list[Any]], arrays: Columns, native: Any
                      ) -> list[dict[str, float]] | None:
        """Return each row's feature contributions by input column (TreeSHAP), or None."""
        from loopml.serve.inputs import as_frame

        explain = getattr(native, "feature_contributions", None)
        if explain is None:
            return None
        result = explain(as_frame(raw, arrays, self.columns))
        if result is None:
            return None
        by_column, _, _ = result
        rows = len(next(iter(by_column.values()))) if by_column else 0
        return [{name: float(values[i]) for name, values in by_column.items()}
                for i in range(rows)]


def load_served(registry: Any, record: ModelVersionRecord, *, flavour: str | None = None
                ) -> Served:
    """Return ``record`` loaded for serving, in its recorded serving flavour by default."""
    from loopml.serve.inputs import signature_columns

    flavour = flavour or record.flavour
    model = registry.load(record, flavour=flavour)
    outputs = record.signature.get("outputs", {})
    return Served(record=record, model=model, flavour=flavour,
                  columns=signature_columns(record.signature),
                  classes=list(outputs.get("labels") or []),
                  threshold=float(outputs.get("threshold") or 0.5))


class LiveModel:
    """The version ``name@selector`` points at, reloaded when that changes.

    ``selector`` is an alias (followed as it moves) or a version number (fixed).
    """

    def __init__(self, workspace: Workspace, ref: str, *, flavour: str | None = None) -> None:
        from loopml.store.models import parse_model_ref

        self.workspace = workspace
        self.name, self.selector = parse_model_ref(ref)
        self.flavour = flavour
        self.current: Served | None = None
        self._native: tuple[int, Any] | None = None  # for explanations of ONNX-served models
        self._lock = threading.Lock()

    @property
    def follows_alias(self) -> bool:
        return self.selector is not None and not self.selector.isdigit()

    def refresh(self) -> bool:
        """Load the version the reference points at now, if it changed; return whether it did."""
        from loopml.registry.registry import Registry

        with self._lock, Registry.open(self.workspace) as registry:
            record = registry.models.get(self.name, self.selector)
            if self.current is not None and self.current.record.id == record.id:
                return False
            self.current = load_served(registry, record, flavour=self.flavour)
            return True

    def native(self, served: Served | None = None) -> Any:
        """Return the native model of ``served`` (default: the current version), loaded once.

        Explanations use it: they must come from the version that made the prediction.
        """
        from loopml.registry.registry import Registry

        served = served or self.current
        if served is None:
            return None
        if served.flavour == "native":
            return served.model
        cached = self._native
        if cached is not None and cached[0] == served.record.id:
            return cached[1]
        if served.record.native_sha256 is None:
            return None
        with Registry.open(self.workspace) as registry:
            model = registry.load(served.record, flavour="native")
        self._native = (served.record.id, model)
        return model
