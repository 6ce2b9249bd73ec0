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
            if as_json:
                print_json(views.version_json(record))
            else:
                views.print_version(console(), record)
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
    output = console()
    with _registry(home) as registry:
        record = registry.get(ref)
        if format == "skops":
            blob = export_skops(registry, record)
            path = write_new_file(blob, out or Path(f"{_file_name(record)}.skops"),
                                  overwrite=force)
            output.print(line(f"wrote {record.ref} as skops to ", str(path), " (load it with "
                              "skops.io.load(path, trusted=skops.io.get_untrusted_types("
                              "file=path)) after reading that list)"))
            return
        with output.status("converting to ONNX, checking parity, profiling"):
            done = export_onnx(registry, record)
        if out is not None and done.onnx is not None:
            write_new_file(done.onnx, out, overwrite=force)
    if as_json:
        print_json({"ref": done.record.ref, "flavour": done.record.flavour,
                    "onnx_sha256": done.record.onnx_sha256, "export": done.export,
                    "out": str(out) if out is not None and done.onnx is not None else None})
        return
    views.print_export(output, done.export)
    if out is not None and done.onnx is not None:
        output.print(line("wrote ", str(out)))
    if done.onnx is None:
        raise typer.Exit(1)


def _file_name(record: object) -> str:
    from loopml.registry.export import file_safe

    return f"{file_safe(record.name)}-v{record.version}"
