"""An ONNX model that answers like a trained loopml model: ``predict`` and ``predict_proba``.

:class:`OnnxModel` wraps an onnxruntime session of any model that follows the loopml ONNX
contract (exported or imported), with the same surface as
:class:`~loopml.train.model.TrainedModel`, so evaluation, serving and parity checks take
either one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class OnnxModel:
    """A loopml-contract ONNX model behind an onnxruntime session.

    Examples
    --------
    >>> model = OnnxModel.from_bytes(to_onnx(trained))             # doctest: +SKIP
    >>> model.predict(frame)                                       # doctest: +SKIP
    array(['no', 'yes', ...], dtype=object)
    """

    def __init__(self, session: Any, signature: dict[str, Any], *, blob: bytes | None = None
                 ) -> None:
        self.session = session
        self.signature = signature
        self.blob = blob  # the serialized model: what a worker process rebuilds it from

    @classmethod
    def from_bytes(cls, blob: bytes, *, threads: int = 1) -> OnnxModel:
        """Return the model of serialized ONNX ``blob``; ``threads`` per call (intra-op).

        One thread is the default: single rows gain nothing from more, and a server runs
        many calls side by side.
        """
        import onnx
        import onnxruntime as ort

        from loopml.optimize.contract import signature_of

        try:
            proto = onnx.load_model_from_string(blob)
        except Exception as exc:  # protobuf's DecodeError and friends
            raise InvalidInput(f"the bytes are not an ONNX model ({exc})") from exc
        signature = signature_of(proto)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(blob, sess_options=options,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's Fail/InvalidGraph/NotImplemented …
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidInput(f"onnxruntime cannot run this ONNX model: {first[:300]}") from exc
        return cls(session, signature, blob=blob)

    @property
    def task(self) -> str:
        return self.signature["task"]

    @property
    def target(self) -> str | None:
        return self.signature.get("target")

    @property
    def input_columns(self) -> list[str]:
        return [c["name"] for c in self.signature["columns"]]

    @property
    def classes(self) -> list[Any]:
        return list(self.signature["classes"])

    @property
    def threshold(self) -> float:
        return float(self.signature["threshold"])

    @property
    def classes_(self) -> np.ndarray:
        """The target's labels, in the order of :meth:`predict_proba`'s columns."""
        import numpy as np

        numeric = all(isinstance(v, int | float) and not isinstance(v, bool)
                      for v in self.classes)
        return np.asarray(self.classes, dtype=None if numeric else object)

    def run(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the graph's one output for ``frame``: probabilities or ``[N, 1]`` values."""
        from loopml.optimize.contract import input_feeds

        output = next(iter(self.signature["outputs"].values()))
        return self.session.run([output], input_feeds(frame, self.signature))[0]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Return class probabilities, one column per label in the order of ``classes_``."""
        import numpy as np

        if self.task == "regression":
            raise InvalidInput("a regression model has no probabilities; use predict")
        # float64 rows that sum to 1 as a native model's do (float32 sums miss by ~1e-7,
        # which scikit-learn's log loss warns about); an imported graph whose rows are not
        # near 1 keeps its own numbers
        proba = np.asarray(self.run(frame), dtype=np.float64)
        sums = proba.sum(axis=1, keepdims=True)
        return np.where(np.abs(sums - 1.0) <= 1e-4, proba / np.where(sums == 0, 1.0, sums),
                        proba)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Return predictions in the target's own values (the threshold applies to binary)."""
        import numpy as np

        if self.task == "regression":
            return np.asarray(self.run(frame)[:, 0], dtype=np.float64)
        proba = self.predict_proba(frame)
        if self.task == "binary":
            index = (proba[:, 1] >= self.threshold).astype(int)
        else:
            index = proba.argmax(axis=1)
        return self.classes_[index]
