"""`loopml models`: the registry — versions, aliases, gates, ONNX export, bundles, imports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli.common import HomeOption, JsonOption, console, print_json, sub_app

if TYPE_CHECKING:
    from loopml.registry.registry import Registry

app = sub_app("Registered models: versions, aliases, promotion gates, ONNX export.")


def _registry(home: Path | None) -> Registry:
    from loopml.registry.registry import Registry
    from loopml.workspace import Workspace

    return Registry.open(Workspace.from_env(home))


@app.command("list")
def models_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List registered models with their latest version and aliases."""
    from loopml.views import models as views

    with _registry(home) as registry:
        models = registry.list()
    if as_json:
        print_json(views.models_json(models))
    else:
        console().print(views.models_table(models))


@app.command("show")
def models_show(
    ref: Annotated[str, typer.Argument(help="NAME (all versions), NAME@VERSION or NAME@ALIAS.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a model's versions, or one version: artifacts, signature, lineage, metrics."""
    from loopml.views import models as views

    with _registry(home) as registry:
        if "@" in ref:
            record = registry.get(ref)
            events = registry.history(record.name)  # why it holds its aliases
            if as_json:
                print_json(views.version_json(record, events))
            else:
                views.print_version(console(), record, events)
            return
        records = registry.versions(ref)
    if as_json:
        print_json([views.version_json(r) for r in records])
    else:
        console().print(views.versions_table(ref, records))


@app.command("history")
def models_history(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str | None, typer.Option(help="Only this alias.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show every alias move of a model: who, when, from which version to which, and why."""
    from loopml.views import models as views

    with _registry(home) as registry:
        events = registry.history(name, alias)
    if as_json:
        print_json([views.event_json(e) for e in events])
    else:
        console().print(views.history_table(name, events))


@app.command("register")
def models_register(
    run_id: Annotated[str, typer.Argument(help="A training run's id or a unique prefix.")],
    name: Annotated[str, typer.Option("--name", help="The model's name.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a training run's model as the next version of NAME."""
    from loopml.views import models as views
    from loopml.views.text import line

    with _registry(home) as registry:
        record, created = registry.register(run_id, name=name)
    if as_json:
        print_json(views.version_json(record))
    else:
        console().print(line("registered " if created else "already registered as ",
                             (record.ref, "bold")))


@app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="The version to promote.", min=1)],
    to: Annotated[str, typer.Option("--to", help="The alias to move.")] = "champion",
    config: Annotated[Path | None, typer.Option(
        "--config", help="Project file with the gates: section (default ./loopml.yaml if any; "
                         "without one, the default gates).")] = None,
    data: Annotated[str | None, typer.Option(
        "--data", help="Labelled rows to compare on (DATASET@VERSION) instead of the "
                       "challenger's test rows.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Move the alias even if a gate fails "
                                                        "(needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why; recorded in the alias history.")
                      ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run every gate against the alias's current version on the same rows; move it if all pass.

    Exit code 1 when a gate refuses the promotion (the alias does not move).
    """
    from loopml.config import GatesSection, load_config
    from loopml.registry.promote import promote
    from loopml.registry.versions import current_actor
    from loopml.views import gates as gate_views
    from loopml.views.text import line

    settings = load_config(config)
    gates = settings.gates if settings is not None else GatesSection()
    sensitive = list(settings.data.sensitive) if settings is not None else None
    seed = settings.train.seed if settings is not None else 0
    with _registry(home) as registry:
        done = promote(registry, name, version, to=to, gates=gates, actor=current_actor(),
                       force=force, reason=reason, data=data, sensitive=sensitive, seed=seed)
    out = console()
    if done.event is None:
        if as_json:
            print_json({"moved": False, "outcome": "unchanged", "from_version": version,
                        "to_version": version, "alias": to, "report": None, "card": None})
        else:
            out.print(line(f"{name}@{to} already points at version {version}; nothing to do"))
        return
    if as_json:
        print_json({"moved": done.moved, "outcome": done.event.outcome,
                    "from_version": done.event.from_version, "to_version": version,
                    "alias": to, "report": done.report.to_json() if done.report else None,
                    "card": str(done.card_path) if done.card_path else None})
    else:
        if done.report is not None:
            gate_views.print_gate_report(out, done.report)
        if done.card_path is not None:
            out.print(line("gate report in the model card: ", str(done.card_path)))
        verdict = {"moved": ("promoted", "green"), "forced": ("FORCED", "yellow"),
                   "refused": ("refused", "red")}[done.event.outcome]
        out.print(line(verdict, f": {name}@{to} ", "→ " if done.moved else "stays at ",
                       str(version if done.moved else done.event.from_version or "nothing"),
                       "" if done.moved else " (override: --force --reason \"…\")"))
    if not done.moved:
        raise typer.Exit(1)


@app.command("export")
def models_export(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION or NAME@ALIAS.")],
    format: Annotated[str, typer.Option("--format", help="onnx or skops.")] = "onnx",
    out: Annotated[Path | None, typer.Option(
        "--out", help="Also write the file here (skops: default ./NAME-vVERSION.skops).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out.")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export a version: ONNX with parity and a native-vs-ONNX profile, or skops.

    ONNX is stored with the version; the flavour that passed parity and is faster serves it.
    """
    from loopml.errors import InvalidInput
    from loopml.registry.export import FORMATS, export_onnx, export_skops, write_new_file
    from loopml.views import models as views
    from loopml.views.text import line

    if format not in FORMATS:
        raise InvalidInput(f"--format {format!r}: expected one of {', '.join(FORMATS)}")
    if out is not None and out.exists() and not force:  # before any slow work
        raise InvalidInput(f"{out} exists; pass --force to overwrite it")
    output = console()
    with _registry(home) as registry:
        record = registry.get(ref)
        if format == "skops":
            blob = export_skops(registry, record)
            path = write_new_file(blob, out or Path(f"{_file_name(record)}.skops"),
                                  overwrite=force)
            output.print(line(f"wrote {record.ref} as skops to ", str(path), " (load it with "
                              "skops.io.load(path, trusted=[…]) listing the types you trust "
                              "among skops.io.get_untrusted_types(file=path))"))
            return
        with output.status("converting to ONNX, checking parity, profiling"):
            done = export_onnx(registry, record)
        if out is not None and done.onnx is not None:
            write_new_file(done.onnx, out, overwrite=force)
    if as_json:
        print_json({"ref": done.record.ref, "flavour": done.record.flavour,
                    "onnx_sha256": done.record.onnx_sha256, "export": done.export,
                    "out": str(out) if out is not None and done.onnx is not None else None})
        if done.onnx is None:
            raise typer.Exit(1)
        return
    views.print_export(output, done.export)
    if out is not None and done.onnx is not None:
        output.print(line("wrote ", str(out)))
    if done.onnx is None:
        raise typer.Exit(1)


def _file_name(record: object) -> str:
    from loopml.registry.export import file_safe

    return f"{file_safe(record.name)}-v{record.version}"


@app.command("bundle")
def models_bundle(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION or NAME@ALIAS.")],
    out: Annotated[Path, typer.Argument(help="The zip to write.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT.")] = False,
    home: HomeOption = None,
) -> None:
    """Write an edge bundle: model.onnx, signature, README and a predict.py (numpy+onnxruntime)."""
    from loopml.registry.export import bundle
    from loopml.views.text import line

    output = console()
    with _registry(home) as registry, output.status("exporting to ONNX where needed"):
        path, record = bundle(registry, registry.get(ref), out, overwrite=force)
    output.print(line(f"wrote {record.ref} as an edge bundle to ", str(path),
                      " (run: pip install numpy onnxruntime; python predict.py in.csv out.csv)"))


@app.command("import")
def models_import(
    file: Annotated[Path, typer.Argument(help="An ONNX file exported elsewhere.")],
    name: Annotated[str, typer.Option("--name", help="The model's name.")],
    signature: Annotated[Path | None, typer.Option(
        "--signature", help="sig.yaml: task, classes, output_kind, columns (see docs).")] = None,
    data: Annotated[str | None, typer.Option(
        "--data", help="DATASET@VERSION whose contract gives the columns (target excluded).")
                    ] = None,
    task: Annotated[str | None, typer.Option(help="With --data: binary, multiclass or "
                                                  "regression.")] = None,
    classes: Annotated[str | None, typer.Option(help="With --data: the output's classes in "
                                                     "order, comma-separated.")] = None,
    output_kind: Annotated[str | None, typer.Option(
        "--output-kind", help="With --data: probabilities, logits or value.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an ONNX model trained elsewhere (PyTorch, TensorFlow …) as the next version."""
    from loopml.errors import InvalidInput
    from loopml.optimize.foreign import load_import_signature, signature_from_contract
    from loopml.registry.imports import import_onnx
    from loopml.views import models as views
    from loopml.views.text import line

    if signature is None and data is None:
        raise InvalidInput("models import needs --signature sig.yaml, or --data DATASET@VERSION "
                           "with --task (and --classes, --output-kind for a classifier)")
    with _registry(home) as registry:
        if signature is not None:
            sig = load_import_signature(signature)
        else:
            if task is None:
                raise InvalidInput("--data needs --task (binary, multiclass or regression)")
            sig = signature_from_contract(
                registry.catalog.contract(data), task=task, output_kind=output_kind,
                classes=[c.strip() for c in classes.split(",")] if classes else [])
        record = import_onnx(registry, file, name=name, sig=sig, data=data)
    if as_json:
        print_json(views.version_json(record))
    else:
        console().print(line("imported ", str(file), " as ", (record.ref, "bold"),
                             f" (evaluate it: loopml models evaluate {record.ref} --data "
                             "DATASET@VERSION)"))


@app.command("evaluate")
def models_evaluate(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION or NAME@ALIAS.")],
    data: Annotated[str, typer.Option("--data", help="Labelled DATASET@VERSION.")],
    metric: Annotated[str | None, typer.Option(help="The headline metric.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate a version on a labelled dataset and write its model card."""
    from loopml.evaluate.card import json_safe
    from loopml.registry.imports import evaluate_version
    from loopml.views.text import line

    with _registry(home) as registry:
        record = registry.get(ref)
        card, path = evaluate_version(registry, record, data=data, metric=metric)
    metrics = card["evaluation"]["metrics"]
    if as_json:
        print_json({"ref": record.ref, "data": card["data"]["ref"],
                    "metrics": json_safe(metrics), "card": str(path)})
        return
    out = console()
    out.print(line((record.ref, "bold"), f" on {card['data']['ref']}: ", ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} undefined"
        for k, v in metrics.items())))
    out.print(line("model card: ", str(path)))
