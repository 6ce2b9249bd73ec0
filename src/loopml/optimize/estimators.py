"""ONNX forms of loopml's estimators, appended to a graph whose features are already built.

Each trainer gets the form that answers like the native model, bit for bit where the
native model allows it:

- tree ensembles (random forest, histogram gradient boosting, LightGBM) are written
  directly as a ``TreeEnsembleRegressor`` with double thresholds and the library's own
  link (sigmoid, softmax, exp): the converters cast thresholds to float32, which moves
  rows that sit between a threshold and its float32 rounding to the other branch. A random
  forest compares float32 features (scikit-learn casts them), so its input is cast first;
- XGBoost (float32 inside too) goes through onnxmltools;
- the PyTorch MLP is a chain of ``Gemm``/``Relu`` with its softmax;
- everything else (logistic and ridge regression …) goes through skl2onnx, in double.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from loopml.errors import ExportFailed
from loopml.optimize.graph import DOMAINS, OPSET, Graph

if TYPE_CHECKING:
    import numpy as np


FORESTS = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
           "ExtraTreesRegressor")


class Tree(NamedTuple):
    """One decision tree as arrays over its nodes (leaves flagged in ``leaf``)."""

    feature: np.ndarray
    threshold: np.ndarray  # go left (true) when x <= threshold
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray  # where NaN goes
    leaf: np.ndarray
    values: np.ndarray  # [nodes, len(targets)]: what a leaf adds to each target
    targets: list[int]


def estimator_graph(g: Graph, estimator: Any, features: str, *, width: int, task: str,
                    n_classes: int) -> str:
    """Return the float output (``[N, n_classes]`` probabilities or ``[N, 1]`` values)."""
    step = f"model ({type(estimator).__name__})"
    module = type(estimator).__module__
    known = getattr(estimator, "classes_", None)
    if task != "regression" and known is not None and len(known) != n_classes:
        raise ExportFailed(f"cannot export {step}: it knows {len(known)} classes, the model "
                           f"{n_classes}")
    try:
        if module.startswith("loopml.train.trainers.torch_mlp"):
            return _mlp(g, estimator, features, task=task)
        if hasattr(estimator, "_predictors"):
            return _hist_gradient_boosting(g, estimator, features, task=task, step=step)
        if module.startswith("lightgbm"):
            return _lightgbm(g, estimator, features, task=task, step=step)
        if module.startswith("xgboost"):
            return _xgboost(g, estimator, features, width=width, task=task)
        if type(estimator).__name__ in FORESTS:
            return _forest(g, estimator, features, task=task, step=step)
        return _skl2onnx(g, estimator, features, width=width, task=task)
    except ExportFailed:
        raise
    except Exception as exc:  # a converter's own error: say which step and why
        why = str(exc).splitlines()[0] if str(exc) else ""
        why = why if len(why) <= 300 else why[:300] + " …"  # converters dump whole nodes
        raise ExportFailed(f"cannot export {step}: {type(exc).__name__}: {why}") from exc


# -- tree ensembles ------------------------------------------------------------------------

def tree_ensemble(g: Graph, x: str, trees: list[Tree], *, n_targets: int,
                  base: Any = None, aggregate: str = "SUM", single: bool = False) -> str:
    """Return the raw output (float ``[N, n_targets]``) of ``trees`` on double ``x``.

    ``single``: ``x`` is float32 and thresholds become float32 too, each rounded down, so
    ``x <= threshold`` answers as in double for every float32 ``x``.
    """
    import numpy as np
    from onnx import numpy_helper

    nodes: dict[str, list[Any]] = {k: [] for k in ("tree", "node", "feature", "value",
                                                   "true", "false", "missing", "mode")}
    targets: dict[str, list[Any]] = {k: [] for k in ("tree", "node", "id", "weight")}
    for t, tree in enumerate(trees):
        leaf = np.asarray(tree.leaf, dtype=bool)
        n = len(leaf)
        nodes["tree"].append(np.full(n, t))
        nodes["node"].append(np.arange(n))
        nodes["feature"].append(np.where(leaf, 0, tree.feature))
        nodes["value"].append(np.where(leaf, 0.0, tree.threshold))
        nodes["true"].append(np.where(leaf, 0, tree.left))
        nodes["false"].append(np.where(leaf, 0, tree.right))
        nodes["missing"].append(np.where(leaf, 0, tree.missing_left))
        nodes["mode"].append(np.where(leaf, "LEAF", "BRANCH_LEQ"))
        leaves = np.flatnonzero(leaf)
        for column, target in enumerate(tree.targets):
            targets["tree"].append(np.full(len(leaves), t))
            targets["node"].append(leaves)
            targets["id"].append(np.full(len(leaves), target))
            targets["weight"].append(np.asarray(tree.values, dtype=np.float64)[leaves, column])

    def ints(parts: list[Any]) -> list[int]:
        return np.concatenate(parts).astype(np.int64).tolist()

    def doubles(parts: list[Any]) -> Any:
        return numpy_helper.from_array(np.concatenate(parts).astype(np.float64))

    attrs: dict[str, Any] = {
        "nodes_treeids": ints(nodes["tree"]), "nodes_nodeids": ints(nodes["node"]),
        "nodes_featureids": ints(nodes["feature"]),
        "nodes_truenodeids": ints(nodes["true"]), "nodes_falsenodeids": ints(nodes["false"]),
        "nodes_missing_value_tracks_true": ints(nodes["missing"]),
        "nodes_modes": np.concatenate(nodes["mode"]).tolist(),
        "target_treeids": ints(targets["tree"]), "target_nodeids": ints(targets["node"]),
        "target_ids": ints(targets["id"]),
        "n_targets": n_targets, "aggregate_function": aggregate, "post_transform": "NONE"}
    if single:
        thresholds = np.concatenate(nodes["value"])
        rounded = thresholds.astype(np.float32)
        above = rounded.astype(np.float64) > thresholds
        rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
        attrs["nodes_values"] = rounded.tolist()
        attrs["target_weights"] = np.concatenate(targets["weight"]).astype(np.float32).tolist()
    else:
        attrs["nodes_values_as_tensor"] = doubles(nodes["value"])
        attrs["target_weights_as_tensor"] = doubles(targets["weight"])
    if base is not None:
        attrs["base_values_as_tensor"] = doubles([np.ravel(base)])
    return g.op("TreeEnsembleRegressor", [x], "raw", domain="ai.onnx.ml", **attrs)


def link(g: Graph, raw: str, kind: str) -> str:
    """Return ``raw`` through the link: identity, exp, sigmoid (two columns), softmax."""
    import numpy as np

    if kind == "identity":
        return raw
    if kind == "exp":
        return g.op("Exp", [raw])
    if kind == "softmax":
        return g.op("Softmax", [raw], "probabilities", axis=1)
    positive = g.op("Sigmoid", [raw])
    negative = g.op("Sub", [g.const(np.array(1.0, dtype=np.float32)), positive])
    return g.op("Concat", [negative, positive], "probabilities", axis=1)


def _hist_gradient_boosting(g: Graph, estimator: Any, x: str, *, task: str, step: str
                            ) -> str:
    import numpy as np

    trees = []
    for iteration in estimator._predictors:
        for k, predictor in enumerate(iteration):
            n = predictor.nodes
            if n["is_categorical"].any():
                raise ExportFailed(f"cannot export {step}: native categorical splits have no "
                                   "ONNX form here")
            trees.append(Tree(n["feature_idx"], n["num_threshold"], n["left"], n["right"],
                              n["missing_go_to_left"], n["is_leaf"], n["value"][:, None], [k]))
    base = np.ravel(estimator._baseline_prediction)
    raw = tree_ensemble(g, x, trees, n_targets=len(base), base=base)
    if task == "regression":
        links = {"squared_error": "identity", "absolute_error": "identity",
                 "quantile": "identity", "poisson": "exp", "gamma": "exp"}
        if estimator.loss not in links:
            raise ExportFailed(f"cannot export {step}: loss {estimator.loss!r} has no ONNX "
                               "form here")
        return link(g, raw, links[estimator.loss])
    return link(g, raw, "sigmoid" if len(base) == 1 else "softmax")


def _lightgbm(g: Graph, estimator: Any, x: str, *, task: str, step: str) -> str:
    import numpy as np

    dump = estimator.booster_.dump_model()
    per_iteration = dump["num_tree_per_iteration"]
    trees = [_lightgbm_tree(info["tree_structure"], index % per_iteration, step=step)
             for index, info in enumerate(dump["tree_info"])]
    aggregate = "AVERAGE" if dump.get("average_output") else "SUM"
    objective, *settings = dump["objective"].split()
    raw = tree_ensemble(g, x, trees, n_targets=per_iteration, aggregate=aggregate)
    if objective in ("binary", "cross_entropy"):
        scale = dict(s.split(":", 1) for s in settings if ":" in s).get("sigmoid", "1")
        if float(scale) != 1.0:
            raw = g.op("Mul", [raw, g.const(np.array(float(scale), dtype=np.float32))])
        return link(g, raw, "sigmoid")
    if objective == "multiclass":
        return link(g, raw, "softmax")
    identity = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")
    if objective in identity:
        return link(g, raw, "identity")
    if objective in ("poisson", "gamma", "tweedie"):
        return link(g, raw, "exp")
    raise ExportFailed(f"cannot export {step}: objective {objective!r} has no ONNX form here")


def _lightgbm_tree(structure: dict[str, Any], target: int, *, step: str) -> Tree:
    import numpy as np

    rows: list[tuple[Any, ...]] = []  # feature, threshold, left, right, missing, value, leaf

    def visit(node: dict[str, Any]) -> int:
        index = len(rows)
        rows.append(())
        if "leaf_value" in node:
            if "leaf_coeff" in node:
                raise ExportFailed(f"cannot export {step}: linear trees have no ONNX form")
            rows[index] = (0, 0.0, 0, 0, 0, node["leaf_value"], True)
            return index
        if node["decision_type"] != "<=" or node["missing_type"] == "Zero":
            raise ExportFailed(f"cannot export {step}: categorical or zero-as-missing splits "
                               "have no ONNX form here")
        threshold = float(node["threshold"])
        # Without a missing type, LightGBM reads NaN as 0.
        missing_left = node["default_left"] if node["missing_type"] == "NaN" else \
            threshold >= 0.0
        left, right = visit(node["left_child"]), visit(node["right_child"])
        rows[index] = (node["split_feature"], threshold, left, right, int(missing_left), 0.0,
                       False)
        return index

    visit(structure)
    columns = list(zip(*rows, strict=True))
    return Tree(np.array(columns[0]), np.array(columns[1], dtype=np.float64),
                np.array(columns[2]), np.array(columns[3]), np.array(columns[4]),
                np.array(columns[6]), np.array(columns[5], dtype=np.float64)[:, None],
                [target])


def _forest(g: Graph, estimator: Any, x: str, *, task: str, step: str) -> str:
    import numpy as np
    from onnx import TensorProto

    if getattr(estimator, "n_outputs_", 1) != 1:
        raise ExportFailed(f"cannot export {step}: several targets have no ONNX form here")
    trees = []
    for member in estimator.estimators_:
        tree = member.tree_
        values = tree.value[:, 0, :]
        if task != "regression":  # leaf class fractions, whatever the tree stored
            values = values / np.maximum(values.sum(axis=1, keepdims=True), 1e-300)
        missing = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count))
        trees.append(Tree(tree.feature, tree.threshold, tree.children_left,
                          tree.children_right, missing, tree.children_left == -1, values,
                          list(range(values.shape[1]))))
    # scikit-learn compares float32 features with double thresholds; float32 thresholds
    # rounded down answer the same and run faster.
    single = g.op("Cast", [x], "features_float", to=TensorProto.FLOAT)
    width = trees[0].values.shape[1]
    return tree_ensemble(g, single, trees, n_targets=width, aggregate="AVERAGE", single=True)


# -- converters and the MLP ----------------------------------------------------------------

def _xgboost(g: Graph, estimator: Any, x: str, *, width: int, task: str) -> str:
    from onnx import TensorProto
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    converted = convert_xgboost(estimator, initial_types=[("features",
                                                           FloatTensorType([None, width]))],
                                target_opset=OPSET)
    single = g.op("Cast", [x], "features_float", to=TensorProto.FLOAT)
    out = splice(g, converted, single,
                 output="variable" if task == "regression" else "probabilities")
    return g.op("Cast", [out], to=TensorProto.FLOAT)


def _skl2onnx(g: Graph, estimator: Any, x: str, *, width: int, task: str) -> str:
    """Convert in double (exact for linear models); in float where double does not run."""
    import onnxruntime as ort
    from onnx import TensorProto
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    options = {id(estimator): {"zipmap": False}} if task != "regression" else None
    for kind in (DoubleTensorType, FloatTensorType):
        converted = convert_sklearn(estimator, initial_types=[("features",
                                                               kind([None, width]))],
                                    target_opset=DOMAINS, options=options)
        try:  # some converters write double graphs onnxruntime refuses to load
            ort.InferenceSession(converted.SerializeToString(),
                                 providers=["CPUExecutionProvider"])
            break
        except Exception:  # onnxruntime's own error types; the float graph is the fallback
            if kind is FloatTensorType:
                raise
    if kind is FloatTensorType:
        x = g.op("Cast", [x], "features_float", to=TensorProto.FLOAT)
    names = [o.name for o in converted.graph.output]
    output = "probabilities" if task != "regression" else names[0]
    out = splice(g, converted, x, output=output)
    out = g.op("Cast", [out], to=TensorProto.FLOAT)
    if task == "regression":
        out = g.op("Reshape", [out, g.const(_shape(-1, 1))], "value")
    return out


def _mlp(g: Graph, estimator: Any, x: str, *, task: str) -> str:
    import numpy as np
    from onnx import TensorProto

    out = g.op("Cast", [x], "features_float", to=TensorProto.FLOAT)
    for layer in estimator.network_:
        kind = type(layer).__name__
        if kind == "Linear":
            weight = layer.weight.detach().cpu().numpy().astype(np.float32)
            bias = layer.bias.detach().cpu().numpy().astype(np.float32)
            out = g.op("Gemm", [out, g.const(weight, "weight"), g.const(bias, "bias")],
                       transB=1)
        elif kind == "ReLU":
            out = g.op("Relu", [out])
        elif kind != "Dropout":  # dropout does nothing at prediction time
            raise ExportFailed(f"cannot export model ({type(estimator).__name__}): layer "
                               f"{kind} has no ONNX form here")
    if task == "regression":
        out = g.op("Mul", [out, g.const(np.array(estimator.scale_, dtype=np.float32))])
        return g.op("Add", [out, g.const(np.array(estimator.mean_, dtype=np.float32))])
    return link(g, out, "softmax")


def splice(g: Graph, model: Any, x: str, *, output: str) -> str:
    """Append ``model``'s graph fed by ``x``; return the name its ``output`` now has."""
    from onnx import compose

    for opset in model.opset_import:
        if opset.domain not in DOMAINS or opset.version > DOMAINS[opset.domain]:
            raise ExportFailed(f"the converter wrote opset {opset.domain or 'ai.onnx'} "
                               f"{opset.version}; loopml writes {DOMAINS}")
    prefix = g.fresh("converted") + "/"
    model = compose.add_prefix(model, prefix)
    g.op("Identity", [x], output=model.graph.input[0].name)
    g.nodes.extend(model.graph.node)
    g.initializers.extend(model.graph.initializer)
    return prefix + output


def _shape(*dims: int) -> np.ndarray:
    import numpy as np

    return np.array(dims, dtype=np.int64)
