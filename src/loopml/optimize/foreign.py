"""Import ONNX models trained elsewhere (torch.onnx, tf2onnx, skl2onnx …) into the loopml contract.

A foreign graph takes whatever inputs its exporter gave it (usually one float matrix
``[N, F]``) and answers with probabilities, logits or a value. :func:`adapt_foreign` wraps it
in a new model that follows the loopml ONNX contract (inputs ``x0``, ``x1``, … one per column,
outputs ``probabilities`` or ``value``, the signature in the metadata), so the runtime, the
server and edge bundles treat it like a model loopml trained.

What the wrapper cannot know is described by an :class:`ImportSignature`, usually a
``sig.yaml`` read by :func:`load_import_signature`::

    task: binary                 # binary | multiclass | regression
    target: churned              # optional: the column the model predicts
    classes: [no, yes]           # classification: the output's columns, in order
    threshold: 0.5               # binary: probability of classes[1] that predicts it
    output_kind: logits          # probabilities | logits | value
    columns:                     # the graph's features, in the order it takes them
      age: number
      income: number
    input: features              # optional: the graph's input (default: its only input)
    output: logits               # optional: the graph's output (default: its first)

Two ways in: columns of kind ``number`` are joined into the graph's one numeric matrix input
(``[N, F]``, F = number of columns); a graph whose inputs are named after the columns
(one ``[N, 1]`` or ``[N]`` input each) is fed column by column, which is the only way in
for ``category`` (a string input) and ``datetime`` (a float input, seconds since 1970 UTC)
columns.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    from loopml.data.contract import Contract

__all__ = ["ImportColumn", "ImportSignature", "adapt_foreign", "load_import_signature",
           "signature_from_contract"]

Task = Literal["binary", "multiclass", "regression"]
Kind = Literal["number", "category", "datetime"]
OutputKind = Literal["probabilities", "logits", "value"]

MIN_OPSET = 7  # the oldest default-domain opset onnxruntime runs
# Foreign names get this prefix and the wrapper's own names the other, so neither can
# take a contract name (x0, probabilities, value) or each other's.
_FOREIGN = "foreign/"
_OWN = "loopml/"
_CONTRACT_KINDS = {"integer": "number", "number": "number", "boolean": "number",
                   "string": "category", "datetime": "datetime"}
_SHAPE = "a mapping with task, classes, output_kind and columns"


class ImportColumn(BaseModel):
    """One input column of an imported model: its name in the data and its kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    type: Kind


class ImportSignature(BaseModel):
    """What loopml needs to know about a foreign ONNX model to serve it (``sig.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Task
    target: str | None = None
    classes: list[Any] = Field(default_factory=list)
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    columns: list[ImportColumn] = Field(min_length=1)
    input: str | None = None
    output: str | None = None
    output_kind: OutputKind | None = None

    @field_validator("columns", mode="before")
    @classmethod
    def _columns_from_mapping(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        for name in value:
            if not isinstance(name, str):
                raise ValueError(f"the column name {name!r} is not text; quote it in the "
                                 "YAML ('yes': number) so it stays as written")
        return [{"name": name, "type": kind} for name, kind in value.items()]

    @field_validator("columns")
    @classmethod
    def _unique_columns(cls, value: list[ImportColumn]) -> list[ImportColumn]:
        names = [column.name for column in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"column(s) {', '.join(repr(n) for n in twice)} listed twice")
        return value

    @field_validator("classes")
    @classmethod
    def _plain_classes(cls, value: list[Any]) -> list[Any]:
        for item in value:
            if not isinstance(item, str | int | float) or (
                    isinstance(item, float) and not math.isfinite(item)):
                raise ValueError(f"class {item!r} is not text, a number or true/false")
        # 1 and True are equal in Python but distinct labels here: compare by type and value
        keys = [(type(item).__name__, item) for item in value]
        if len(set(keys)) != len(keys):
            raise ValueError("each class may be listed once")
        return value

    @model_validator(mode="after")
    def _fits_the_task(self) -> ImportSignature:
        if self.task == "regression":
            if self.classes:
                raise ValueError("classes: a regression model has no classes; remove them")
            if self.output_kind not in (None, "value"):
                raise ValueError(f"output_kind: a regression model answers with a value, "
                                 f"not {self.output_kind}")
        else:
            least = 2
            if len(self.classes) < least or (self.task == "binary" and len(self.classes) != 2):
                wanted = "exactly 2" if self.task == "binary" else "at least 2"
                raise ValueError(f"classes: a {self.task} model needs {wanted} classes, in "
                                 f"the order of the output's columns (got {len(self.classes)})")
            if self.output_kind is None:
                raise ValueError(f"output_kind: required for a {self.task} model: "
                                 "probabilities (each row sums to 1) or logits (raw scores; "
                                 "loopml adds the softmax or sigmoid)")
            if self.output_kind == "value":
                raise ValueError(f"output_kind: a {self.task} model answers with "
                                 "probabilities or logits, not a value")
        if self.target is not None and self.target in {c.name for c in self.columns}:
            raise ValueError(f"columns: the target {self.target!r} cannot be an input column")
        return self

    @property
    def answer(self) -> str:
        """Return the output kind, ``value`` for a regression model that left it out."""
        return self.output_kind or "value"


def _problems(exc: ValidationError) -> str:
    """Return pydantic's errors as one line, each led by the key it is about."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def load_import_signature(path: str | os.PathLike[str]) -> ImportSignature:
    """Return the import signature in the YAML file at ``path``; errors name the file and key."""
    from loopml.yamlfile import load_plain_yaml

    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{source}: no such signature file; write one ({_SHAPE})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{source}: cannot read it as UTF-8 text ({exc})") from exc
    data = load_plain_yaml(text, origin=str(source))
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: expected {_SHAPE}")
    try:
        return ImportSignature.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"{source}: {_problems(exc)}") from exc


def signature_from_contract(contract: Contract, *, target: str | None = None, task: str,
                            classes: list[Any] | tuple[Any, ...] = (),
                            output_kind: str | None = None, threshold: float = 0.5,
                            input: str | None = None, output: str | None = None
                            ) -> ImportSignature:
    """Return the import signature of a model that takes a dataset's columns, target excluded.

    ``target`` defaults to the contract's. Contract types map to kinds: integer, number and
    boolean are ``number``, string is ``category``, datetime is ``datetime``.
    """
    target = contract.target if target is None else target
    if target is not None and target not in contract.columns:
        raise InvalidInput(f"target {target!r} is not a column of dataset "
                           f"{contract.dataset!r}")
    columns = []
    for name, rule in contract.columns.items():
        if name == target:
            continue
        kind = _CONTRACT_KINDS.get(rule.type)
        if kind is None:
            raise InvalidInput(f"column {name!r} of dataset {contract.dataset!r} has type "
                               f"{rule.type!r}, which no ONNX input takes; write the import "
                               "signature by hand (sig.yaml) without it")
        columns.append({"name": name, "type": kind})
    try:
        return ImportSignature.model_validate(
            {"task": task, "target": target, "classes": list(classes), "threshold": threshold,
             "columns": columns, "input": input, "output": output, "output_kind": output_kind})
    except ValidationError as exc:
        raise InvalidInput(f"import signature from dataset {contract.dataset!r}: "
                           f"{_problems(exc)}") from exc


def adapt_foreign(onnx_bytes: bytes, sig: ImportSignature) -> bytes:
    """Return a new ONNX model that wraps the foreign one in the loopml contract.

    Inputs ``x0`` … (double or string ``[N, 1]``, one per column of ``sig``) are cast and
    joined into the foreign graph's input(s); its output becomes ``probabilities`` (float
    ``[N, n_classes]``; logits get a softmax, a single binary logit a sigmoid) or ``value``
    (float ``[N, 1]``). The signature goes in the metadata with ``source: imported``. The
    result passes ``onnx.checker`` and one run of two rows in onnxruntime.
    """
    import onnx
    from onnx import helper

    from loopml.optimize.contract import make_signature, with_signature

    foreign = _parse(onnx_bytes)
    opset = _default_opset(foreign)
    try:
        onnx.checker.check_model(foreign)
    except onnx.checker.ValidationError as exc:
        raise InvalidInput(f"the ONNX model is not valid: {_one_line(exc)}") from exc
    graph = foreign.graph
    stored = {t.name for t in graph.initializer} | \
        {t.values.name for t in graph.sparse_initializer}
    inputs = [i for i in graph.input if i.name not in stored]

    wrapper = _Wrapper(helper)
    graph_inputs = _wire_inputs(wrapper, inputs, sig)
    graph_output = _wire_output(wrapper, list(graph.output), sig)

    model = onnx.compose.add_prefix(foreign, _FOREIGN, rename_functions=False)
    body = model.graph
    nodes = [*wrapper.nodes[:wrapper.input_nodes], *body.node,
             *wrapper.nodes[wrapper.input_nodes:]]
    new_graph = helper.make_graph(
        nodes, body.name or "imported", graph_inputs, [graph_output],
        initializer=[*body.initializer, *wrapper.initializers],
        sparse_initializer=list(body.sparse_initializer),
        value_info=list(body.value_info), doc_string=body.doc_string)
    model.graph.CopyFrom(new_graph)
    if opset is None:
        model.opset_import.append(helper.make_opsetid("", 13))
        model.ir_version = max(model.ir_version, 7)
    # Initialisers left out of the inputs need IR 4 or newer.
    model.ir_version = max(model.ir_version, 4)
    producer = " ".join(p for p in (foreign.producer_name, foreign.producer_version) if p)
    model.producer_name, model.producer_version = "loopml", ""
    for prop in list(model.metadata_props):
        if prop.key.startswith("loopml."):
            model.metadata_props.remove(prop)
    if producer:
        entry = model.metadata_props.add()
        entry.key, entry.value = "loopml.imported_from", producer
    signature = make_signature(
        task=sig.task, columns=[(c.name, c.type) for c in sig.columns],
        classes=list(sig.classes), threshold=sig.threshold, target=sig.target,
        source="imported")
    with_signature(model, signature)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise InvalidInput(f"the wrapped model is not valid ONNX ({_one_line(exc)}); the "
                           "foreign graph may use an opset or type the wrapper cannot "
                           "join") from exc
    blob = model.SerializeToString()
    _smoke_test(blob, sig)
    return blob


class _Wrapper:
    """Collects the nodes and initialisers the wrapper adds around the foreign graph."""

    def __init__(self, helper: Any) -> None:
        self.helper = helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.input_nodes = 0  # the first nodes feed the graph; the rest read its output
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{_OWN}{hint}_{self._count}"

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=self.name(op),
                                                **attributes))
        return output

    def constant(self, hint: str, data_type: int, dims: list[int], values: list[Any]) -> str:
        name = self.name(hint)
        self.initializers.append(self.helper.make_tensor(name, data_type, dims, values))
        return name


def _wire_inputs(wrapper: _Wrapper, inputs: list[Any], sig: ImportSignature) -> list[Any]:
    """Add the nodes from ``x0`` … to the foreign inputs; return the new graph inputs."""
    from onnx import TensorProto, helper

    names = [c.name for c in sig.columns]
    by_name = {i.name: i for i in inputs}
    listed = ", ".join(repr(n) for n in by_name) or "none"
    if not inputs:
        raise InvalidInput("the ONNX model has no inputs to feed; it cannot depend on a row")
    graph_inputs = []
    for index, column in enumerate(sig.columns):
        kind = TensorProto.STRING if column.type == "category" else TensorProto.DOUBLE
        graph_inputs.append(helper.make_tensor_value_info(f"x{index}", kind, ["N", 1]))

    if sig.input is None and set(by_name) == set(names):
        for index, column in enumerate(sig.columns):
            _feed_column(wrapper, f"x{index}", column, by_name[column.name])
    else:
        if sig.input is not None and sig.input not in by_name:
            raise InvalidInput(f"input: the ONNX model has no input {sig.input!r} (its "
                               f"inputs: {listed})")
        if sig.input is None and len(inputs) > 1:
            raise InvalidInput(f"the ONNX model has {len(inputs)} inputs ({listed}); set "
                               "`input:` to the one that takes the feature matrix, or export "
                               "the graph with one input per column, named after the columns")
        target = by_name[sig.input] if sig.input is not None else inputs[0]
        others = [repr(n) for n in by_name if n != target.name]
        if others:
            raise InvalidInput(f"the ONNX model's other input(s) {', '.join(others)} would get "
                               f"no data; only {target.name!r} is fed (from the columns)")
        _feed_matrix(wrapper, len(sig.columns), target, sig)
    wrapper.input_nodes = len(wrapper.nodes)
    return graph_inputs


def _feed_matrix(wrapper: _Wrapper, count: int, target: Any, sig: ImportSignature) -> None:
    """Join ``x0`` … into the foreign matrix input ``[N, F]``."""
    from onnx import TensorProto

    for column in sig.columns:
        if column.type != "number":
            why = "text" if column.type == "category" else "a date as such"
            raise InvalidInput(
                f"column {column.name!r} is a {column.type}, but the ONNX model's input "
                f"{target.name!r} is one numeric matrix, which cannot take {why}; encode it "
                "as numbers before exporting, or export the graph with one input per column "
                "named after the columns (string for a category, float seconds since 1970 "
                "for a datetime)")
    element, dims = _tensor_type(target, "input")
    _require_float(element, f"input {target.name!r}")
    if dims is not None:
        if len(dims) != 2:
            raise InvalidInput(f"input {target.name!r} has rank {len(dims)}; loopml feeds a "
                               "matrix [rows, features] (rank 2)")
        _require_dynamic_rows(dims, f"input {target.name!r}")
        if dims[1] is not None and dims[1] != count:
            raise InvalidInput(f"input {target.name!r} takes {dims[1]} features, but the "
                               f"signature lists {count} column(s); list the graph's features "
                               "in `columns`, in the order it takes them")
    joined = _FOREIGN + target.name
    inputs = [f"x{i}" for i in range(count)]
    double = _OWN + "features"
    if count == 1:
        wrapper.node("Identity", inputs, double)
    else:
        wrapper.node("Concat", inputs, double, axis=1)
    _cast(wrapper, double, element, joined, current=TensorProto.DOUBLE)


def _feed_column(wrapper: _Wrapper, source: str, column: ImportColumn, target: Any) -> None:
    """Feed ``source`` (``[N, 1]``) to the foreign input named after ``column``."""
    from onnx import TensorProto

    element, dims = _tensor_type(target, "input")
    where = f"input {target.name!r} (column {column.name!r}, a {column.type})"
    if column.type == "category":
        if element != TensorProto.STRING:
            raise InvalidInput(f"{where} takes {_type_name(element)}; a category column needs "
                               "a string input")
    else:
        _require_float(element, where)
    value = source
    if dims is not None:
        if len(dims) not in (1, 2) or (len(dims) == 2 and dims[1] not in (None, 1)):
            raise InvalidInput(f"{where} has shape {_shape_text(dims)}; a column input must be "
                               "[N, 1] or [N]")
        _require_dynamic_rows(dims, where)
        if len(dims) == 1:
            shape = wrapper.constant("flat", TensorProto.INT64, [1], [-1])
            value = wrapper.node("Reshape", [source, shape], wrapper.name("flat"))
    if column.type == "category":
        wrapper.node("Identity", [value], _FOREIGN + target.name)
    else:
        _cast(wrapper, value, element, _FOREIGN + target.name, current=TensorProto.DOUBLE)


def _wire_output(wrapper: _Wrapper, outputs: list[Any], sig: ImportSignature) -> Any:
    """Add the nodes from the foreign output to ``probabilities`` or ``value``; return it."""
    from onnx import TensorProto, helper

    listed = ", ".join(repr(o.name) for o in outputs)
    if sig.output is not None:
        found = [o for o in outputs if o.name == sig.output]
        if not found:
            raise InvalidInput(f"output: the ONNX model has no output {sig.output!r} (its "
                               f"outputs: {listed})")
        chosen = found[0]
    else:
        chosen = outputs[0]
    element, dims = _tensor_type(chosen, "output")
    where = f"output {chosen.name!r}"
    source = _FOREIGN + chosen.name
    rank = None if dims is None else len(dims)
    if sig.task == "regression":
        if element in (TensorProto.STRING, TensorProto.BOOL):
            raise InvalidInput(f"{where} is {_type_name(element)}; a regression model "
                               "answers with numbers")
        if rank is not None and (rank > 2 or (rank == 2 and dims[1] not in (None, 1))):
            raise InvalidInput(f"{where} has shape {_shape_text(dims)}; a regression output "
                               "is one value per row ([N, 1] or [N]); choose it with `output:`")
        value = _cast(wrapper, source, TensorProto.FLOAT, wrapper.name("value"),
                      current=element)
        shape = wrapper.constant("column", TensorProto.INT64, [2], [-1, 1])
        wrapper.node("Reshape", [value, shape], "value")
        return helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N", 1])

    others = [repr(o.name) for o in outputs if o.name != chosen.name]
    _require_float(element, where, fix=(f"choose the scores among its other outputs "
                                        f"({', '.join(others)}) with `output:`") if others
                   else "export the graph with float scores")
    count = len(sig.classes)
    if rank is not None and rank not in (1, 2):
        raise InvalidInput(f"{where} has shape {_shape_text(dims)}; loopml reads "
                           "[rows, classes]")
    width = 1 if rank == 1 else (dims[1] if rank == 2 else None)
    if width is not None and width not in (1, count):
        raise InvalidInput(f"{where} has {width} columns, but the signature lists {count} "
                           "classes; list one class per output column, in order")
    scores = _cast(wrapper, source, TensorProto.FLOAT, wrapper.name("scores"), current=element)
    if width == 1:
        if sig.task != "binary":
            raise InvalidInput(f"{where} has one column; a {sig.task} model needs one per "
                               f"class ({count})")
        # One score per row: the probability (or logit) of classes[1].
        shape = wrapper.constant("column", TensorProto.INT64, [2], [-1, 1])
        positive = wrapper.node("Reshape", [scores, shape], wrapper.name("positive"))
        if sig.answer == "logits":
            positive = wrapper.node("Sigmoid", [positive], wrapper.name("sigmoid"))
        one = wrapper.constant("one", TensorProto.FLOAT, [], [1.0])
        negative = wrapper.node("Sub", [one, positive], wrapper.name("negative"))
        wrapper.node("Concat", [negative, positive], "probabilities", axis=1)
    elif sig.answer == "logits":
        wrapper.node("Softmax", [scores], "probabilities", axis=1)
    else:
        wrapper.node("Identity", [scores], "probabilities")
    return helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", count])


def _cast(wrapper: _Wrapper, source: str, element: int, output: str, *, current: int) -> str:
    """Return ``output``, made from ``source`` (of type ``current``) cast to ``element``."""
    if element == current:
        return wrapper.node("Identity", [source], output)
    return wrapper.node("Cast", [source], output, to=element)


def _require_float(element: int, where: str, *,
                   fix: str = "export the graph with a float input") -> None:
    from onnx import TensorProto

    floats = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
    if element not in floats:
        raise InvalidInput(f"{where} is {_type_name(element)}; loopml joins floating-point "
                           f"tensors only (float, double, float16): {fix}")


def _require_dynamic_rows(dims: list[int | None], where: str) -> None:
    if dims[0] is not None:
        raise InvalidInput(f"{where} has a fixed batch size of {dims[0]} rows; export it with "
                           "a dynamic first axis (torch.onnx.export(..., dynamic_axes="
                           "{'input': {0: 'batch'}}), tf2onnx: None in the input signature)")


def _tensor_type(value: Any, role: str) -> tuple[int, list[int | None] | None]:
    """Return the element type and dims (None where not fixed) of a graph input or output."""
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        hint = " (skl2onnx: convert with options={'zipmap': False})" \
            if kind in ("sequence_type", "map_type") else ""
        raise InvalidInput(f"{role} {value.name!r} is a {str(kind).removesuffix('_type')}, "
                           f"not a tensor; loopml reads tensors{hint}; choose a tensor "
                           f"{role} with `{role}:`")
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return tensor.elem_type, None
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    return tensor.elem_type, dims


def _type_name(element: int) -> str:
    from onnx import TensorProto

    return f"tensor({TensorProto.DataType.Name(element).lower()})"


def _shape_text(dims: list[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " …"


def _parse(onnx_bytes: bytes) -> Any:
    """Return the ModelProto in ``onnx_bytes``; InvalidInput when it is not one."""
    import onnx
    from google.protobuf.message import DecodeError

    if not isinstance(onnx_bytes, bytes | bytearray) or not onnx_bytes:
        raise InvalidInput("the file is empty or not bytes; expected an ONNX model")
    try:
        model = onnx.load_from_string(bytes(onnx_bytes))
    except (DecodeError, ValueError, TypeError) as exc:
        raise InvalidInput(f"the file is not an ONNX model: {_one_line(exc)}") from exc
    if not model.graph.output or not model.graph.node:
        raise InvalidInput("the file is not an ONNX model (no graph nodes or outputs); "
                           "export the model with torch.onnx.export, tf2onnx or skl2onnx")
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise InvalidInput(f"the ONNX model keeps weight {tensor.name!r} in an external "
                               "data file; save it as one file (onnx.save_model(model, path, "
                               "save_as_external_data=False)), under 2 GB")
    return model


def _default_opset(model: Any) -> int | None:
    """Return the model's default-domain opset; refuse one onnxruntime cannot run."""
    import onnx

    newest = onnx.defs.onnx_opset_version()
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            if entry.version < MIN_OPSET:
                raise InvalidInput(f"the ONNX model uses opset {entry.version}; loopml runs "
                                   f"opset {MIN_OPSET} or newer: export it again with a newer "
                                   "opset (torch.onnx.export(..., opset_version=17))")
            if entry.version > newest:
                raise InvalidInput(f"the ONNX model uses opset {entry.version}, newer than the "
                                   f"installed onnx knows ({newest}); upgrade onnx and "
                                   "onnxruntime, or export with an older opset")
            return entry.version
    return None


def _smoke_test(blob: bytes, sig: ImportSignature) -> None:
    """Run the wrapped model on two rows; refuse it when that fails or the shapes are wrong."""
    import numpy as np
    import onnxruntime

    feeds = {}
    for index, column in enumerate(sig.columns):
        feeds[f"x{index}"] = np.array([[""], [""]], dtype=object) \
            if column.type == "category" else np.zeros((2, 1), dtype=np.float64)
    name = "value" if sig.task == "regression" else "probabilities"
    try:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(blob, options,
                                               providers=["CPUExecutionProvider"])
        (answer,) = session.run([name], feeds)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise InvalidInput(f"the wrapped model fails in onnxruntime on two test rows: "
                           f"{_one_line(exc)}; check the opset, the input's shape and the "
                           "columns' order") from exc
    wanted = (2, 1) if sig.task == "regression" else (2, len(sig.classes))
    if answer.shape != wanted:
        raise InvalidInput(f"the wrapped model answers two test rows with shape "
                           f"{list(answer.shape)}, expected {list(wanted)}; check `output:` "
                           "and the classes")
