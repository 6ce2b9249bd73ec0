"""A small ONNX graph builder: nodes and constants with unique names, then one ModelProto.

The export writes its preprocessing and some estimators directly as ONNX nodes; this keeps
that code to one line per operation (``g.op("Where", [mask, fill, x])``) instead of the
boilerplate of :mod:`onnx.helper`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# One opset for every graph loopml writes: 15 is the newest that both skl2onnx and
# onnxmltools target, and every runtime from onnxruntime 1.10 on runs it.
OPSET = 15
ML_OPSET = 3  # ai.onnx.ml 3: tree ensembles with double thresholds (nodes_values_as_tensor)
IR_VERSION = 8  # the IR that goes with opset 15, so older runtimes load the file too
DOMAINS = {"": OPSET, "ai.onnx.ml": ML_OPSET}


class Graph:
    """Nodes and constants of a graph being built; :meth:`op` returns its output's name."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        """Return a name no other tensor of this graph has."""
        self._count += 1
        return f"{hint}__{self._count}"

    def const(self, array: Any, hint: str = "c") -> str:
        """Return the name of a new constant tensor holding ``array``."""
        import numpy as np
        from onnx import numpy_helper

        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, *,
           output: str | None = None, domain: str = "", **attrs: Any) -> str:
        """Append one node and return the name of its (single) output."""
        from onnx import helper

        out = output or self.fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.fresh(op_type),
                                           domain=domain, **attrs))
        return out

    def model(self, inputs: list[Any], outputs: list[Any], *, name: str = "loopml") -> Any:
        """Return the ModelProto of the graph, without the nodes no output depends on."""
        from onnx import helper

        nodes, initializers = prune(self.nodes, self.initializers,
                                    [o.name for o in outputs])
        graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
        model = helper.make_model(graph, opset_imports=[
            helper.make_opsetid(domain, version) for domain, version in DOMAINS.items()],
            producer_name="loopml")
        model.ir_version = IR_VERSION
        return model


def prune(nodes: list[Any], initializers: list[Any], outputs: list[str]
          ) -> tuple[list[Any], list[Any]]:
    """Return the nodes and initializers that ``outputs`` depend on, in their order."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
            for attr in node.attribute:  # names used inside If/Loop bodies
                if attr.g is not None:
                    needed.update(n for sub in attr.g.node for n in sub.input)
    return kept[::-1], [t for t in initializers if t.name in needed]


def tensor_type(dtype: np.dtype | type) -> int:
    """Return the ONNX element type of a numpy dtype (float64 → DOUBLE)."""
    import numpy as np
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
