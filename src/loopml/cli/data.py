"""`loopml data`: add, list, show, contract, validate and split datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli.common import HomeOption, JsonOption, console, fail, print_json, sub_app

if TYPE_CHECKING:
    from loopml.data import Catalog

app = sub_app("Datasets: add versions, profile, contract, validate, split.")

ProjectOption = Annotated[str | None, typer.Option(help="Project (default: loopml.yaml's, "
                                                        "else 'default').")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Project file "
                                                   "(default ./loopml.yaml, if present).")]


def _catalog(home: Path | None, *, create: bool = True) -> Catalog:
    from loopml.data import Catalog
    from loopml.workspace import Workspace

    if not create:  # read commands: a missing workspace is an error, and no PII key is made
        return Catalog(*Workspace.from_env(home).open(create=False))
    return Catalog.from_workspace(Workspace.from_env(home))


def _parse_pii(options: list[str]) -> dict[str, str]:
    policies = {}
    for option in options:
        column, sep, policy = option.partition("=")
        if not sep or not column:
            fail(f"--pii {option!r} should look like COLUMN=drop|hash|keep")
        policies[column] = policy
    return policies


@app.command("add")
def data_add(
    source: Annotated[str | None, typer.Argument(help="CSV, Parquet or JSON-lines file, or a "
                                                      "folder of Parquet files.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Dataset name.")] = None,
    project: ProjectOption = None,
    target: Annotated[str | None, typer.Option(help="Target column, recorded in the "
                                                    "contract.")] = None,
    sql: Annotated[str | None, typer.Option(help="A SQL query to read instead of a file.")] = None,
    url: Annotated[str | None, typer.Option(help="SQLAlchemy URL the --sql query runs on.")
                   ] = None,
    format: Annotated[str | None, typer.Option(help="csv, parquet or jsonl (default: from "
                                                    "the suffix).")] = None,
    null_values: Annotated[str | None, typer.Option(
        help="Comma-separated markers of missing values in CSV (default: only empty).")] = None,
    encoding: Annotated[str | None, typer.Option(
        help="Text encoding of a CSV (default: data.encoding of loopml.yaml, else utf8).")
    ] = None,
    pii: Annotated[list[str] | None, typer.Option(
        help="COLUMN=drop|hash|keep, applied before the data is stored (repeatable).")] = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Snapshot a data source as a new dataset version (the same content is one version)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from loopml.config import load_config
    from loopml.data import resolve_source
    from loopml.views import data as views

    settings = load_config(config)
    data_cfg = settings.data if settings else None
    name = name or (data_cfg.dataset if data_cfg else None)
    if not name:
        fail("give the dataset a name with --name NAME (or data.dataset in loopml.yaml)")
    markers = tuple(null_values.split(",")) if null_values is not None else \
        tuple(data_cfg.null_values if data_cfg else [""])
    from_file = source is None and sql is None and data_cfg is not None
    resolved = resolve_source(
        source or (data_cfg.source if data_cfg else None), sql=sql, url=url,
        format=format or (data_cfg.format if from_file else None), null_values=markers,
        encoding=encoding or (data_cfg.encoding if data_cfg else "utf8"))
    policies = dict(data_cfg.pii) if data_cfg else {}
    policies.update(_parse_pii(pii or []))
    catalog = _catalog(home)
    out = console()
    from loopml.views.text import clean

    # The file name is the user's: no markup, control characters shown escaped.
    with Progress(TextColumn("ingesting {task.fields[what]}", markup=False), BarColumn(),
                  TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn(),
                  console=out, transient=True, disable=as_json) as progress:
        task = progress.add_task("ingest", total=resolved.size_bytes, what=clean(Path(
            resolved.location).name) if resolved.kind != "sql" else "SQL query", rows=0)

        def advance(rows: int, read_bytes: int) -> None:
            total = resolved.size_bytes or read_bytes
            progress.update(task, completed=min(read_bytes, total), rows=rows)

        result = catalog.add(
            resolved, name=name,
            project=project or (settings.project.name if settings else "default"),
            target=target or (data_cfg.target if data_cfg else None),
            pii=policies, progress=advance,
        )
    report_path = _write_report(catalog, result.version, home)
    if as_json:
        print_json(views.add_result_json(result, report_path))
    else:
        views.print_add_result(out, result, report_path)


def _write_report(catalog: Catalog, version, home: Path | None) -> Path:  # noqa: ANN001
    from loopml.workspace import Workspace

    return catalog.write_report(version, Workspace.from_env(home).home / "reports")


@app.command("list")
def data_list(
    project: ProjectOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """List datasets and their versions."""
    from loopml.views import data as views

    versions = _catalog(home, create=False).list(project=project)
    if as_json:
        print_json([views.version_json(v) for v in versions])
    else:
        console().print(views.versions_table(versions))


@app.command("show")
def data_show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@HASHPREFIX.")],
    project: ProjectOption = None,
    html: Annotated[Path | None, typer.Option(help="Also write the profile report here.")
                    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a dataset version: profile, PII, splits, and the runs that used it."""
    from loopml.views import data as views

    catalog = _catalog(home, create=False)
    version = catalog.get(ref, project=project)
    profile = catalog.profile(version)
    splits = catalog.store.datasets.splits(version.id)
    users = catalog.users(version)
    if html is not None:
        catalog.write_report(version, path=html)
    if as_json:
        print_json(views.version_detail_json(version, profile, splits, users))
    else:
        views.print_version(console(), version, profile, splits, users)
        if html is not None:
            from loopml.views.text import plain

            console().print(plain(f"report written to {html}"))


@app.command("contract")
def data_contract(
    ref: Annotated[str, typer.Argument(help="Dataset NAME (or NAME@VERSION).")],
    set_file: Annotated[Path | None, typer.Option("--set", help="Store this edited contract "
                                                  "file instead of printing it.")] = None,
    project: ProjectOption = None,
    home: HomeOption = None,
) -> None:
    """Print a dataset's contract as YAML, or store an edited one with --set."""
    catalog = _catalog(home, create=set_file is not None)
    if set_file is None:
        typer.echo(catalog.contract_yaml(ref, project=project), nl=False)
        return
    if not set_file.is_file():
        fail(f"{set_file}: no such contract file")
    contract = catalog.set_contract(ref, set_file.read_text(encoding="utf-8"),
                                    origin=str(set_file), project=project)
    typer.echo(f"stored contract of {contract.dataset!r} ({len(contract.columns)} columns)")


@app.command("validate")
def data_validate(
    source: Annotated[str, typer.Argument(help="The data file or folder to check.")],
    against: Annotated[str, typer.Option("--against", help="Dataset whose contract applies.")],
    contract_file: Annotated[Path | None, typer.Option("--contract", help="Use this contract "
                                                       "file instead of the stored one.")
                             ] = None,
    format: Annotated[str | None, typer.Option(help="csv, parquet or jsonl.")] = None,
    null_values: Annotated[str | None, typer.Option(
        help="Comma-separated markers of missing values in CSV (default: only empty).")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of a CSV.")] = "utf8",
    project: ProjectOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check new data against a dataset's contract; exit code 1 if it fails."""
    from loopml.data import resolve_source
    from loopml.data.contract import from_yaml
    from loopml.views import data as views

    markers = tuple(null_values.split(",")) if null_values is not None else ("",)
    resolved = resolve_source(source, format=format, null_values=markers, encoding=encoding)
    contract = None
    if contract_file is not None:
        if not contract_file.is_file():
            fail(f"{contract_file}: no such contract file")
        contract = from_yaml(contract_file.read_text(encoding="utf-8"), origin=str(contract_file))
    report = _catalog(home, create=False).validate(resolved, against=against,
                                                   contract=contract, project=project)
    if as_json:
        print_json(report.to_json())
    else:
        views.print_validation(console(), report)
    if not report.passed:
        raise typer.Exit(1)


@app.command("split")
def data_split(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    method: Annotated[str, typer.Option(help="random, stratified, group or time.")] = "random",
    by: Annotated[str | None, typer.Option(help="Column to stratify, group or order by.")
                  ] = None,
    fractions: Annotated[str, typer.Option(help="Train,validation,test shares.")
                         ] = "0.7,0.15,0.15",
    seed: Annotated[int, typer.Option(help="Random seed (recorded).")] = 42,
    project: ProjectOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Split a dataset version into train/validation/test and record the split."""
    from loopml.data import SplitSpec

    try:
        shares = tuple(float(x) for x in fractions.split(","))
    except ValueError:
        fail(f"--fractions {fractions!r} should be three numbers like 0.7,0.15,0.15")
    spec = SplitSpec(method=method, fractions=shares, seed=seed, column=by)  # type: ignore[arg-type]
    record = _catalog(home, create=False).split(ref, spec, project=project)
    if as_json:
        print_json({"spec": record.spec, "counts": record.counts, "key": record.spec_key})
    else:
        counts = ", ".join(f"{k} {v:,}" for k, v in record.counts.items())
        typer.echo(f"{ref}: {method} split (seed {seed}) recorded as {record.spec_key}: {counts}")
