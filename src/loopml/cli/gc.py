"""`loopml gc`: remove what crashed processes left behind (dry run unless --yes)."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli.common import HomeOption, JsonOption, print_json

_SHOWN = 20


def gc(
    home: HomeOption = None,
    older_than: Annotated[str, typer.Option(
        "--older-than", help="Only what has not changed for this long (90s, 30m, 1h, 2d).")
    ] = "1h",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete; without it, only list.")
                   ] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove unreferenced artifact objects, stale temp files and abandoned temp folders."""
    from loopml.gc import collect, parse_age
    from loopml.workspace import Workspace

    threshold = parse_age(older_than)
    store, artifacts = Workspace.from_env(home).open(create=False)
    report = collect(store, artifacts, older_than_s=threshold, delete=yes)
    if as_json:
        print_json({
            "deleted": report.deleted,
            "bytes": report.size,
            "leftovers": [{"kind": i.kind, "path": str(i.path), "size": i.size,
                           "age_s": round(i.age_s, 1)} for i in report.leftovers],
            "in_use": [str(path) for path in report.in_use],
            "too_young": report.too_young,
        })
        return
    verb = "removed" if report.deleted else "would remove"
    for item in report.leftovers[:_SHOWN]:
        typer.echo(f"{verb} {item.kind}: {item.path} ({item.size:,} bytes)")
    if len(report.leftovers) > _SHOWN:
        typer.echo(f"… and {len(report.leftovers) - _SHOWN} more")
    typer.echo(
        f"{verb} {report.count('object')} unreferenced object(s), "
        f"{report.count('temp file')} temp file(s), {report.count('temp folder')} temp "
        f"folder(s): {report.size:,} bytes; spared {len(report.in_use)} in use and "
        f"{report.too_young} changed in the last {older_than}"
    )
    if not report.deleted and report.leftovers:
        typer.echo("dry run: nothing was deleted; run `loopml gc --yes` to delete")
