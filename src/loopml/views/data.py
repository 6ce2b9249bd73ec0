"""Datasets on a terminal (rich tables) and as JSON.

Column names, values, file paths and messages come from data files and users: they reach the
terminal only through :mod:`loopml.views.text` (no markup, control characters escaped).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.views.runs import fmt_time, fmt_value
from loopml.views.text import line, plain

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from loopml.data.catalog import AddResult
    from loopml.data.validate import ValidationReport
    from loopml.store.datasets import SplitRecord, VersionRecord


def fmt_bytes(size: int) -> str:
    """Return a size in human units.

    >>> fmt_bytes(1536)
    '1.5 KB'
    """
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def version_json(version: VersionRecord) -> dict[str, Any]:
    return {
        "dataset": version.dataset, "project": version.project, "version": version.seq,
        "ref": version.ref, "content_hash": version.content_hash, "rows": version.num_rows,
        "columns": version.num_columns, "schema": version.schema, "source": version.source,
        "snapshot_sha256": version.snapshot_sha256, "snapshot_bytes": version.snapshot_size,
        "pii": version.pii, "created_at": version.created_at.isoformat(),
    }


def add_result_json(result: AddResult, report: Path) -> dict[str, Any]:
    out = version_json(result.version)
    out.update({"created": result.created, "contract_created": result.contract_created,
                "pii_found": [{"column": f.column, "kind": f.kind, "reason": f.reason}
                              for f in result.pii_found],
                "report": str(report)})
    return out


def print_add_result(console: Console, result: AddResult, report: Path) -> None:
    version = result.version
    shape = f"{version.num_rows:,} rows × {version.num_columns} columns"
    if result.created:
        console.print(line(("added", "green"), f" {version.ref} ({version.content_hash[:12]}): "
                           f"{shape}, snapshot {fmt_bytes(version.snapshot_size)}"))
    else:
        console.print(line(("unchanged", "yellow"), f": this content is already {version.ref} "
                           f"({version.content_hash[:12]}), {shape}"))
    applied = version.pii.get("applied", {})
    for finding in result.pii_found:
        policy = applied.get(finding.column, "keep")
        console.print(line(("PII", "red"), f" column {finding.column!r} looks like {finding.kind} "
                           f"(by its {finding.reason}); policy: {policy}"
                           + ("" if policy != "keep" else
                              f" — set data.pii.{finding.column}: hash|drop in loopml.yaml "
                              f"or pass --pii {finding.column}=hash")))
    if result.contract_created:
        console.print(line(f"inferred a data contract: loopml data contract {version.dataset}"))
    console.print(line(f"profile report: {report}"))


def versions_table(versions: list[VersionRecord]) -> Table:
    from rich.table import Table

    table = Table(title=plain(f"{len(versions)} dataset version(s)"), title_justify="left")
    for header in ("dataset", "version", "hash", "rows", "cols", "size", "added", "source"):
        table.add_column(header, no_wrap=header in ("hash", "added"),
                         justify="right" if header in ("rows", "cols", "size") else "left")
    for v in versions:
        table.add_row(plain(v.dataset), str(v.seq), v.content_hash[:12], f"{v.num_rows:,}",
                      str(v.num_columns), fmt_bytes(v.snapshot_size), fmt_time(v.created_at)[:16],
                      plain(v.source))
    return table


def version_detail_json(version: VersionRecord, profile: dict[str, Any],
                        splits: list[SplitRecord], users: list[tuple[str, str, str]]
                        ) -> dict[str, Any]:
    out = version_json(version)
    out["profile"] = profile
    out["splits"] = [{"spec": s.spec, "counts": s.counts, "key": s.spec_key} for s in splits]
    out["used_by"] = [{"run_id": r, "run": n, "role": role} for r, n, role in users]
    return out


def print_version(console: Console, version: VersionRecord, profile: dict[str, Any],
                  splits: list[SplitRecord], users: list[tuple[str, str, str]]) -> None:
    from rich.table import Table

    console.print(line((version.ref, "bold"), f"  {version.content_hash}"))
    console.print(line(f"project {version.project} · {version.num_rows:,} rows × "
                       f"{version.num_columns} columns · added {fmt_time(version.created_at)} · "
                       f"source {version.source}"))
    pii = version.pii.get("found", {})
    table = Table(title=plain("profile"), title_justify="left")
    for header in ("column", "type", "missing", "distinct", "min", "max", "mean", "top"):
        table.add_column(header, justify="right" if header in ("missing", "distinct", "mean")
                         else "left")
    for name, stats in profile["columns"].items():
        top = ", ".join(str(v) for v, _ in (stats.get("top") or [])[:3])
        flag = line((f" (PII: {pii[name]})", "red")) if name in pii else ""
        table.add_row(plain(name) + flag, plain(stats["type"]), f"{stats['missing_share']:.1%}",
                      f"{stats['distinct']:,}", plain(_cell(stats.get("min"))),
                      plain(_cell(stats.get("max"))), plain(_cell(stats.get("mean"))),
                      plain(top[:40]))
    console.print(table)
    for split in splits:
        counts = ", ".join(f"{k} {v:,}" for k, v in split.counts.items())
        by = f" by {split.spec['column']}" if split.spec.get("column") else ""
        console.print(line(f"split {split.spec_key}: {split.spec['method']}{by}, seed "
                           f"{split.spec['seed']}: {counts}"))
    if users:
        console.print(line("used by: " + ", ".join(f"{r[:12]} ({n}, {role})"
                                                   for r, n, role in users)))
    else:
        console.print(line("used by: no runs yet"))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return fmt_value(value)
    return str(value)[:19]


def print_validation(console: Console, report: ValidationReport) -> None:
    from rich.table import Table

    errors = [v for v in report.violations if v.severity == "error"]
    verdict = plain("passed", "green") if report.passed else \
        line(("failed", "red"), f" ({len(errors)} violation(s))")
    console.print(line(f"validation of {report.source} against {report.dataset!r}: ", verdict,
                       f", {report.num_rows:,} rows checked"))
    if not report.violations:
        return
    table = Table(title_justify="left")
    for header in ("column", "rule", "rows", "problem", "examples"):
        table.add_column(header, justify="right" if header == "rows" else "left")
    for v in report.violations:
        style = "red" if v.severity == "error" else "yellow"
        table.add_row(plain(v.column), plain(v.rule, style), f"{v.rows:,}",
                      plain(v.message, newlines=True),
                      plain(", ".join(repr(e) for e in v.examples)))
    console.print(table)
