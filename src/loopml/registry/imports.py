"""Models trained elsewhere: register an ONNX file, and evaluate any version on a dataset.

An imported ONNX graph is wrapped into loopml's ONNX contract (see
:mod:`loopml.optimize.foreign`), so it is gated, served, bundled and monitored like a model
loopml trained. Its card comes from the same evaluation code as a trained model's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    from loopml.optimize.foreign import ImportSignature
    from loopml.registry.registry import Registry
    from loopml.store.models import ModelVersionRecord

MAX_ONNX_BYTES = 2 * 1024**3  # protobuf's own limit for one file


def import_onnx(registry: Registry, path: str | Path, *, name: str, sig: ImportSignature,
                data: str | None = None) -> ModelVersionRecord:
    """Register the ONNX model at ``path`` as the next version of ``name``.

    ``data`` (``DATASET@VERSION``) names the dataset whose contract gives each column's rules
    (types, ranges, categories) in the version's signature.
    """
    from loopml.optimize.foreign import adapt_foreign
    from loopml.registry.versions import current_actor, loopml_version
    from loopml.store.models import check_model_name

    check_model_name(name)
    source = Path(path)
    if not source.is_file():
        raise InvalidInput(f"{source}: no such ONNX file")
    if source.stat().st_size > MAX_ONNX_BYTES:
        raise InvalidInput(f"{source}: larger than 2 GB; ONNX files with external data are "
                           "not supported")
    original = source.read_bytes()
    adapted = adapt_foreign(original, sig)
    contract = registry.catalog.contract(data) if data else None
    stored = registry.client.artifacts.put_bytes(adapted)
    signature = _signature(sig, contract)
    lineage = {"imported_from": source.name, "original_sha256": hashlib.sha256(original)
               .hexdigest(), "contract": data, "loopml": loopml_version(),
               "metric": None, "project": None}
    record, _ = registry.models.add_version(
        name, source="import", run_id=None, task=sig.task, native_sha256=None,
        native_size=None, onnx_sha256=stored.sha256, onnx_size=len(adapted), flavour="onnx",
        signature=signature, lineage=lineage, metrics={}, created_by=current_actor(),
        export={"imported": True, "flavour": "onnx"})
    return record


def _signature(sig: ImportSignature, contract: Any | None) -> dict[str, Any]:
    rules = contract.columns if contract is not None else {}
    inputs = []
    for column in sig.columns:
        entry: dict[str, Any] = {"name": column.name, "kind": column.type}
        rule = rules.get(column.name)
        if rule is not None:
            entry.update({k: v for k, v in rule.model_dump(mode="json").items()
                          if k in ("type", "nullable", "min", "max", "allowed") and v is not None})
        inputs.append(entry)
    outputs: dict[str, Any] = {"task": sig.task}
    if sig.task == "regression":
        outputs["value"] = {"target": sig.target}
    else:
        outputs.update({"labels": list(sig.classes), "probabilities": True,
                        "threshold": sig.threshold, "target": sig.target})
    return {"inputs": inputs, "outputs": outputs}


def evaluate_version(registry: Registry, record: ModelVersionRecord, *, data: str,
                     metric: str | None = None, sensitive: list[str] | None = None,
                     seed: int = 0) -> tuple[dict[str, Any], Path]:
    """Evaluate ``record`` on the labelled dataset ``data``; store and write its card.

    A version without a card (an imported model) gets this one as its card and metrics;
    a version that has one keeps it, and this evaluation is written as a separate report.
    Returns the card and the HTML file's path.
    """
    from loopml.evaluate.card import card_json, render_card
    from loopml.evaluate.metrics import DEFAULT_METRIC, get_metric
    from loopml.evaluate.report import evaluate
    from loopml.registry.export import file_safe, write_new_file

    outputs = record.signature.get("outputs", {})
    target = outputs.get("target") or outputs.get("value", {}).get("target")
    if not target:
        raise InvalidInput(f"{record.ref} names no target column: import it with `target:` in "
                           "its signature")
    version = registry.catalog.get(data)
    frame = registry.catalog.load(version)
    if target not in frame.columns:
        raise InvalidInput(f"{data} has no column {target!r} (the target of {record.ref})")
    frame = frame[frame[target].notna()].reset_index(drop=True)
    if frame.empty:
        raise InvalidInput(f"{data} has no rows with a label in {target!r}")
    metric = metric or record.lineage.get("metric") or DEFAULT_METRIC[record.task]
    get_metric(metric, task=record.task)
    model = registry.load(record, flavour=record.flavour)
    inputs = [c["name"] for c in record.signature.get("inputs", [])]
    categorical = [c["name"] for c in record.signature.get("inputs", [])
                   if c.get("kind") == "category"]
    sensitive = [c for c in (sensitive or []) if c in frame.columns]
    evaluation = evaluate(model, frame, frame[target], task=record.task, metric=metric,
                          input_columns=inputs, classes=outputs.get("labels") or [],
                          threshold=outputs.get("threshold", 0.5), sensitive=sensitive,
                          slice_columns=categorical, seed=seed)
    card = {"name": record.ref, "run_id": record.run_id, "task": record.task,
            "target": target, "metric": metric,
            "model": {"candidate": f"{record.source} ({record.flavour})", "params": {},
                      "threshold": outputs.get("threshold"),
                      "classes": [str(c) for c in outputs.get("labels") or []]},
            "data": {"ref": version.ref, "content_hash": version.content_hash,
                     "rows": {"evaluated": len(frame)}},
            "evaluation": evaluation}
    html = render_card(card)
    blobs = registry.client.artifacts
    card_blob, html_blob = blobs.put_bytes(card_json(card)), blobs.put_bytes(html.encode())
    if record.card_sha256 is None:
        registry.models.set_card(record.name, record.version, card_sha256=card_blob.sha256,
                                 card_html_sha256=html_blob.sha256,
                                 metrics={k: v for k, v in evaluation["metrics"].items()})
    folder = registry.workspace.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"model-card-{file_safe(record.name)}-v{record.version}-" \
                    f"{file_safe(version.ref)}.html"
    write_new_file(html.encode(), path, overwrite=True)
    return card, path
