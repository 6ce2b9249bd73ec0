"""Registering a training run as the next version of a named model.

A version holds what serving, gating and monitoring need without the run: the model's
artifacts by sha256, an input signature taken from the data contract (column types,
nullability, allowed categories, ranges) and an output signature, the lineage (dataset
version, run, config, git commit, loopml version) and the model card.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from loopml.data import Catalog
    from loopml.store.models import ModelVersionRecord
    from loopml.tracking import TrackingClient

MODEL_ARTIFACT = "model.loopml"
CARD_JSON = "model_card.json"
CARD_HTML = "model_card.html"


def current_actor() -> str:
    """Return who acts: ``LOOPML_ACTOR`` if set (e.g. a CI job), else the OS user."""
    actor = os.environ.get("LOOPML_ACTOR", "").strip()
    if actor:
        return actor[:250]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def register_run(client: TrackingClient, catalog: Catalog, run_id: str, *, name: str,
                 key: bytes, source: str = "run", allow_running: bool = False
                 ) -> tuple[ModelVersionRecord, bool]:
    """Register the model of training run ``run_id`` as the next version of ``name``.

    Returns the version and whether it is new (a run registered before under the same name
    returns its version). The model is read back (signature verified) to take its classes
    and threshold (``key`` is the workspace's signing key); the input signature comes from
    the dataset's current contract.
    """
    from loopml.registry.formats import read_model
    from loopml.store.models import check_model_name

    check_model_name(name)
    store = client.store
    run = store.runs.get(run_id)
    if run.status != "FINISHED" and not (allow_running and run.status == "RUNNING"):
        raise InvalidInput(f"run {run.id[:12]} is {run.status}: only a finished training run "
                           "can be registered")
    artifacts = {a.name: a for a in store.artifacts.list(run.id)}
    if MODEL_ARTIFACT not in artifacts or CARD_JSON not in artifacts:
        raise NotFound(f"run {run.id[:12]} stored no model ({MODEL_ARTIFACT} and {CARD_JSON}); "
                       "pass the id of a `loopml train` run (loopml runs list)")
    card = json.loads(client.load_artifact(run.id, CARD_JSON))
    native = artifacts[MODEL_ARTIFACT]
    model = read_model(client.artifacts.get_bytes(native.sha256),
                       key=key,
                       origin=f"model of run {run.id[:12]}")
    contract = _contract(catalog, card)
    signature = model_signature(model, card.get("features", {}), contract)
    detail = store.runs.detail(run.id)
    lineage = {
        "run_id": run.id, "project": run.project, "metric": card.get("metric"),
        "dataset": card.get("data", {}).get("ref"),
        "dataset_hash": card.get("data", {}).get("content_hash"),
        "split": card.get("data", {}).get("split"),
        "rows": card.get("data", {}).get("rows"),
        "git_commit": detail.tags.get("git_commit"),
        "loopml": loopml_version(), "python": platform.python_version(),
        "config": card.get("config"),
    }
    metrics = card.get("evaluation", {}).get("metrics", {})
    return store.models.add_version(
        name, source=source, run_id=run.id, task=card["task"],
        native_sha256=native.sha256, native_size=native.size, signature=signature,
        lineage=lineage, metrics=metrics, created_by=current_actor(),
        card_sha256=artifacts[CARD_JSON].sha256,
        card_html_sha256=artifacts[CARD_HTML].sha256 if CARD_HTML in artifacts else None)


def model_signature(model: Any, features: dict[str, Any], contract: Any | None
                    ) -> dict[str, Any]:
    """Return the input and output signature of a loopml model.

    Each input column carries its kind (number, category, datetime: how it is fed) and,
    when the dataset has a contract, the contract's rule for it (type, nullable, range,
    allowed categories).
    """
    kinds = {**{c: "number" for c in features.get("numeric", [])},
             **{c: "category" for c in features.get("categorical", [])},
             **{c: "datetime" for c in features.get("datetime", [])}}
    rules = contract.columns if contract is not None else {}
    inputs = []
    for column in model.input_columns:
        entry: dict[str, Any] = {"name": column, "kind": kinds.get(column, "number")}
        rule = rules.get(column)
        if rule is not None:
            entry.update({k: v for k, v in rule.model_dump(mode="json").items()
                          if k in ("type", "nullable", "min", "max", "allowed") and v is not None})
        inputs.append(entry)
    task = model.task
    outputs: dict[str, Any] = {"task": task}
    if task == "regression":
        outputs["value"] = {"target": model.target}
    else:
        outputs.update({"labels": [_json_value(c) for c in model.classes],
                        "probabilities": True, "threshold": model.threshold,
                        "target": model.target})
    return {"inputs": inputs, "outputs": outputs}


def _contract(catalog: Catalog, card: dict[str, Any]) -> Any | None:
    ref = card.get("data", {}).get("ref")
    project = (card.get("config") or {}).get("project", {}).get("name")
    if not ref:
        return None
    try:
        return catalog.contract(ref, project=project)
    except (NotFound, InvalidInput):
        return None  # the dataset was deleted: the signature keeps the kinds only


def _json_value(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def loopml_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loopml")
    except PackageNotFoundError:
        return "unknown"
