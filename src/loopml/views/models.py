"""Registered models, versions and alias history on a terminal (rich) and as JSON.

User text (model names, reasons, actors, column names) goes through
:mod:`loopml.views.text`; JSON keeps the stored text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.views.runs import fmt_time
from loopml.views.text import line, plain

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from loopml.store.models import AliasEventRecord, ModelVersionRecord

OUTCOME_STYLE = {"moved": "green", "forced": "yellow", "refused": "red"}


def _number(value: Any) -> str:
    """Return a number in at most 4 significant digits (no exponent below 1e6).

    >>> _number(16948.3), _number(0.91234), _number(None), _number(3)
    ('16948', '0.9123', '-', '3')
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if 1e4 <= abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


def models_json(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": m["name"], "versions": m["versions"], "latest": m["latest"],
             "aliases": m["aliases"], "created_at": m["created_at"].isoformat(),
             "updated_at": m["updated_at"].isoformat() if m["updated_at"] else None}
            for m in models]


def models_table(models: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(title=plain(f"{len(models)} model(s)"), title_justify="left")
    for header in ("name", "versions", "latest", "aliases", "updated"):
        table.add_column(header)
    for m in models:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(m["aliases"].items()))
        table.add_row(plain(m["name"]), str(m["versions"]), str(m["latest"] or ""),
                      plain(aliases), fmt_time(m["updated_at"])[:16])
    return table


def why_aliases(record: ModelVersionRecord, events: list[AliasEventRecord]
                ) -> list[AliasEventRecord]:
    """Return, per alias pointing at ``record``, the event that moved it there (newest first)."""
    found: dict[str, AliasEventRecord] = {}
    for event in sorted(events, key=lambda e: e.id, reverse=True):
        if event.alias in record.aliases and event.alias not in found \
                and event.to_version == record.version and event.outcome in ("moved", "forced"):
            found[event.alias] = event
    return list(found.values())


def version_json(record: ModelVersionRecord,
                 events: list[AliasEventRecord] | None = None) -> dict[str, Any]:
    return {"why": [event_json(e) for e in why_aliases(record, events or [])],
            "name": record.name, "version": record.version, "ref": record.ref,
            "aliases": list(record.aliases), "source": record.source, "run_id": record.run_id,
            "task": record.task, "flavour": record.flavour,
            "artifacts": {
                "native": None if record.native_sha256 is None else
                {"sha256": record.native_sha256, "size": record.native_size},
                "onnx": None if record.onnx_sha256 is None else
                {"sha256": record.onnx_sha256, "size": record.onnx_size},
                "card": record.card_sha256, "card_html": record.card_html_sha256},
            "metrics": record.metrics, "signature": record.signature,
            "lineage": record.lineage, "export": record.export,
            "created_by": record.created_by, "created_at": record.created_at.isoformat()}


def versions_table(name: str, records: list[ModelVersionRecord]) -> Table:
    from rich.table import Table

    table = Table(title=plain(f"{name}: {len(records)} version(s)"), title_justify="left")
    for header in ("version", "aliases", "source", "run", "data", "flavour", "test metrics",
                   "created"):
        table.add_column(header)
    for r in records:
        main = r.lineage.get("metric")
        shown = [main] if main in r.metrics else list(r.metrics)[:2]
        metrics = ", ".join(f"{k} {_number(r.metrics[k])}" for k in shown)
        table.add_row(str(r.version), plain(", ".join(r.aliases)), r.source,
                      (r.run_id or "")[:12], plain(r.lineage.get("dataset") or ""), r.flavour,
                      plain(metrics), fmt_time(r.created_at)[:16])
    return table


def print_version(console: Console, record: ModelVersionRecord,
                  events: list[AliasEventRecord] | None = None) -> None:
    """Print one version: header, why it holds its aliases, lineage, artifacts, metrics …"""
    from rich.table import Table

    aliases = f"  [{', '.join(record.aliases)}]" if record.aliases else ""
    console.print(line((record.ref, "bold"), aliases, f"  {record.task} · serves {record.flavour}"))
    for event in why_aliases(record, events or []):
        console.print(line(f"{event.alias}: {event.outcome} from "
                           f"v{event.from_version if event.from_version is not None else '-'} by ",
                           (event.actor, "bold"), f" {fmt_time(event.at)}",
                           *((" — ", event.reason) if event.reason else ())))
    lineage = record.lineage
    console.print(line(
        f"source {record.source} · run {record.run_id or '-'} · data "
        f"{lineage.get('dataset') or '-'} · git {lineage.get('git_commit') or '-'} · loopml "
        f"{lineage.get('loopml') or '-'} · by {record.created_by} · "
        f"{fmt_time(record.created_at)}"))
    artifacts = Table(title=plain("artifacts"), title_justify="left")
    for header in ("flavour", "size", "sha256"):
        artifacts.add_column(header)
    for flavour, sha, size in (("native", record.native_sha256, record.native_size),
                               ("onnx", record.onnx_sha256, record.onnx_size)):
        if sha:
            artifacts.add_row(flavour, f"{size:,}" if size else "", sha[:16])
    console.print(artifacts)
    if record.metrics:
        metrics = Table(title=plain("test metrics"), title_justify="left")
        metrics.add_column("metric")
        metrics.add_column("value", justify="right")
        for key, value in record.metrics.items():
            metrics.add_row(plain(key), _number(value))
        console.print(metrics)
    signature = Table(title=plain("input signature"), title_justify="left")
    for header in ("column", "kind", "type", "nullable", "range / categories"):
        signature.add_column(header)
    for column in record.signature.get("inputs", []):
        allowed = column.get("allowed")
        span = (", ".join(map(str, allowed[:6])) + (" …" if len(allowed) > 6 else "")) \
            if allowed else "" if column.get("min") is None else \
            f"{column.get('min')} … {column.get('max')}"
        signature.add_row(plain(column["name"]), column.get("kind", ""),
                          str(column.get("type", "")), str(column.get("nullable", "")),
                          plain(span))
    console.print(signature)
    outputs = record.signature.get("outputs", {})
    if outputs.get("labels") is not None:
        console.print(line("output: labels ", plain(", ".join(map(str, outputs["labels"]))),
                           f" · probabilities · threshold {_number(outputs.get('threshold'))}"))
    else:
        console.print(line("output: value of ", plain(str(outputs.get("value", {})
                                                            .get("target")))))
    if record.export:
        print_export(console, record.export)


def print_export(console: Console, export: dict[str, Any]) -> None:
    """Print an ONNX export's parity and profile (see ``loopml.optimize``)."""
    from rich.table import Table

    if export.get("imported"):
        console.print(line("ONNX: imported as ONNX (no native model to compare with; "
                           "evaluate it with loopml models evaluate)"))
        return
    if export.get("error"):
        console.print(line(("ONNX: not converted", "yellow"), " — ",
                           plain(export["error"]), " (serves native)"))
        return
    parity = export.get("parity", {})
    console.print(line(("ONNX parity ", "bold"),
                       ("passed" if parity.get("passed") else "FAILED",
                        "green" if parity.get("passed") else "red"),
                       f" on {parity.get('rows')} rows: max abs diff "
                       f"{_number(parity.get('max_abs_diff'))} (tolerance "
                       f"{_number(parity.get('tolerance'))}), label mismatches "
                       f"{parity.get('label_mismatches')}"))
    profile = export.get("profile") or {}
    if profile:
        table = Table(title=plain("native vs ONNX"), title_justify="left")
        for header in ("flavour", "1 row p50 µs", "1 row p99 µs", "1k rows/s", "100k rows/s",
                       "size", "peak +MB"):
            table.add_column(header, justify="right")
        for flavour in ("native", "onnx"):
            p = profile.get(flavour) or {}
            table.add_row(flavour, _number(p.get("single_row_p50_us")),
                          _number(p.get("single_row_p99_us")), _rate(p.get("rows_per_s_1k")),
                          _rate(p.get("rows_per_s_100k")), _size(p.get("size_bytes")),
                          _number(p.get("peak_rise_mb")))
        console.print(table)
    console.print(line("serving flavour: ", (export.get("flavour", "native"), "bold")))


def _rate(value: Any) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else "-"


def _size(value: Any) -> str:
    """Return a byte count in kB or MB.

    >>> _size(3642), _size(12_500_000), _size(None)
    ('3.6 kB', '12.5 MB', '-')
    """
    if not isinstance(value, int | float):
        return "-"
    return f"{value / 1e3:.1f} kB" if value < 1e6 else f"{value / 1e6:.1f} MB"


def event_json(event: AliasEventRecord) -> dict[str, Any]:
    return {"alias": event.alias, "from_version": event.from_version,
            "to_version": event.to_version, "outcome": event.outcome, "actor": event.actor,
            "reason": event.reason, "at": event.at.isoformat(),
            "gates_passed": None if event.report is None else event.report.get("passed")}


def history_table(name: str, events: list[AliasEventRecord]) -> Table:
    from rich.table import Table

    table = Table(title=plain(f"{name}: {len(events)} alias event(s)"), title_justify="left")
    for header in ("when", "alias", "from", "to", "outcome", "gates", "by", "reason"):
        table.add_column(header)
    for e in events:
        gates = "" if e.report is None else "passed" if e.report.get("passed") else "failed"
        table.add_row(fmt_time(e.at), plain(e.alias), "-" if e.from_version is None
                      else str(e.from_version), str(e.to_version),
                      plain(e.outcome, OUTCOME_STYLE.get(e.outcome, "")), gates,
                      plain(e.actor), plain(e.reason or ""))
    return table
