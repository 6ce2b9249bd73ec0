"""`loopml tokens`: API tokens of the server — create (shown once), list, revoke."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli.common import HomeOption, JsonOption, console, print_json, sub_app

if TYPE_CHECKING:
    from loopml.store import Store
    from loopml.store.tokens import TokenRecord

app = sub_app("API tokens of the server (`loopml serve`): create, list, revoke.")


def _store(home: Path | None, *, create: bool) -> Store:
    from loopml.workspace import Workspace

    store, _ = Workspace.from_env(home).open(create=create)
    return store


def _json(record: TokenRecord) -> dict[str, object]:
    def iso(moment: object) -> str | None:
        return None if moment is None else moment.isoformat()  # type: ignore[attr-defined]

    return {"name": record.name, "role": record.role, "prefix": record.prefix,
            "active": record.active, "created_at": iso(record.created_at),
            "created_by": record.created_by, "revoked_at": iso(record.revoked_at),
            "last_used_at": iso(record.last_used_at)}


@app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option("--name", help="A name for the token, e.g. ci-predict.")],
    role: Annotated[str, typer.Option(
        "--role", help="predict (prediction routes only) or admin (every route).")],
    home: HomeOption = None,
) -> None:
    """Create a token and print it once: it cannot be shown again."""
    from loopml.registry.versions import current_actor
    from loopml.store.tokens import check_role, check_token_name
    from loopml.views.text import line

    check_token_name(name)  # before the workspace is opened (and maybe created)
    check_role(role)
    record, token = _store(home, create=True).tokens.create(name, role=role,
                                                            created_by=current_actor())
    console().print(line("created token ", (record.name, "bold"), f" (role {record.role}); "
                         "copy it now, it cannot be shown again:"))
    typer.echo(token)


@app.command("list")
def tokens_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List tokens (name, role, public prefix, state); never a token's secret."""
    from rich.table import Table

    from loopml.views.runs import fmt_time
    from loopml.views.text import plain

    records = _store(home, create=False).tokens.list()
    if as_json:
        print_json([_json(r) for r in records])
        return
    table = Table(title=plain(f"{len(records)} token(s)"), title_justify="left")
    for header in ("name", "role", "prefix", "state", "created", "by", "last used"):
        table.add_column(header, no_wrap=header == "prefix")
    for r in records:
        state = plain("active", "green") if r.active else \
            plain(f"revoked {fmt_time(r.revoked_at)[:16]}", "red")
        table.add_row(plain(r.name), r.role, r.prefix, state, fmt_time(r.created_at)[:16],
                      plain(r.created_by), fmt_time(r.last_used_at)[:16])
    console().print(table)


@app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Argument(help="The token's name (see `loopml tokens list`).")],
    home: HomeOption = None,
) -> None:
    """Revoke a token: servers refuse it within a few seconds (their cache time)."""
    from loopml.views.runs import fmt_time
    from loopml.views.text import line

    record, now = _store(home, create=False).tokens.revoke(name)
    if now:
        console().print(line("revoked token ", (record.name, "bold"),
                             "; servers refuse it within a few seconds"))
    else:
        console().print(line("token ", (record.name, "bold"),
                             f" was already revoked at {fmt_time(record.revoked_at)}"))
