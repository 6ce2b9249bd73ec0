"""The train benchmark's printed tables (rich): datasets, scores per tool, verdicts, speed-up."""

from __future__ import annotations

import sys
from typing import Any

TOOLS = ("loopml", "flaml", "autogluon")
LABEL = {"loopml": "loopml", "flaml": "FLAML", "autogluon": "AutoGluon"}
DIRECTION = {"roc_auc": 1, "log_loss": -1, "accuracy": 1, "rmse": -1, "r2": 1, "mae": -1,
             "roc_auc_ovr_macro": 1}


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if metric not in ("rmse", "mae") else f"{value:,.2f}"


def print_datasets(rows: list[dict[str, Any]]) -> None:
    """Print the dataset table (what `--list` shows and RESULTS.md's method table holds)."""
    from rich.table import Table

    table = Table(title="Train benchmark datasets")
    for column in ("dataset", "task", "rows × cols", "metric", "categorical cols",
                   "rows with missing", "origin", "notes"):
        table.add_column(column)
    for row in rows:
        task = row["task"] + (f" ({row['classes']})" if row.get("classes") else "")
        table.add_row(row["dataset"], task, f"{row['rows']:,} × {row['columns']}",
                      row["metric"], str(row["categorical"]), f"{row['rows_with_missing']:,}",
                      row["origin"], row["notes"])
    _console().print(table)


def _model(entry: dict[str, Any] | None) -> str:
    if not entry or "error" in entry:
        return "—"
    return entry.get("model_summary") or "?"


def _tool_cell(row: dict[str, Any], tool: str) -> str:
    entry = row.get(tool)
    if entry is None:
        return "skipped"
    if "error" in entry:
        return "[red]failed[/]"
    return f"{_fmt(row['metric'], entry['test_score'])} ({entry['wall_s']:.0f} s)"


def print_quality(report: dict[str, Any]) -> None:
    """Print scores and wall times per tool, the verdict against the better peer, and totals."""
    from rich.table import Table

    console = _console()
    budget = report["args"]["budget"]
    table = Table(title=f"loopml train vs FLAML vs AutoGluon, {budget:g} s budget each, "
                        f"{report['cores']} cores, same rows: test score (wall s)")
    for column, justify in (("dataset", "left"), ("task", "left"), ("fit / test rows", "right"),
                            ("metric", "left"), ("loopml", "right"), ("FLAML", "right"),
                            ("AutoGluon", "right"), ("better peer", "left"), ("gap", "right"),
                            ("verdict", "center"), ("loopml ≤ 1.1 × budget", "center")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    models = Table(title="Final models; loopml's time: ingest + train_project = wall "
                         "(child process)")
    for column in ("dataset", "loopml model", "loopml s", "FLAML best", "AutoGluon best"):
        models.add_column(column)
    colour = {"win": "green", "tie": "yellow", "loss": "red"}
    for row in report["quality"]:
        lo, metric = row.get("loopml") or {}, row["metric"]
        ok = bool(lo) and "error" not in lo
        rows = lo.get("rows", {}) if ok else {}
        verdict = row.get("verdict")
        table.add_row(
            row["dataset"], row["task"],
            f"{rows.get('train', 0) + rows.get('validation', 0):,} / {rows.get('test', 0):,}"
            if rows else "—",
            metric + (" ↓" if DIRECTION[metric] < 0 else " ↑"),
            _tool_cell(row, "loopml"), _tool_cell(row, "flaml"), _tool_cell(row, "autogluon"),
            LABEL.get(row.get("better_peer") or "", "—"),
            "—" if row.get("gap") is None else f"{row['gap']:+.2%}",
            f"[{colour[verdict]}]{verdict}[/]" if verdict else "—",
            "—" if row.get("within_time") is None else
            ("yes" if row["within_time"] else "[red]no[/]"))
        models.add_row(
            row["dataset"], _model(lo),
            f"{lo['ingest_s']:.0f} + {lo['train_s']:.0f} = {lo['wall_s']:.0f} "
            f"({lo['process_s']:.0f})" if ok else "—",
            _model(row.get("flaml")), _model(row.get("autogluon")))
    console.print(table)
    console.print(models)
    extra = Table(title="Other test metrics (same predictions)")
    for column in ("dataset", *(LABEL[t] for t in TOOLS)):
        extra.add_column(column)
    for row in report["quality"]:
        cells = []
        for tool in TOOLS:
            entry = row.get(tool)
            cells.append("—" if not entry or "error" in entry else ", ".join(
                f"{k} {_fmt(k, v)}" for k, v in entry["test_metrics"].items() if v is not None))
        extra.add_row(row["dataset"], *cells)
    console.print(extra)
    failed = [f"{row['dataset']}/{LABEL[t]}: {row[t]['error']}" for row in report["quality"]
              for t in TOOLS if row.get(t) and "error" in row[t]]
    for line in failed:
        console.print(f"[red]failed[/] {line}")
    totals = report["totals"]
    console.print(
        f"against the better peer: {totals['win']} win, {totals['tie']} tie (within 1 %), "
        f"{totals['loss']} loss, {totals['no_verdict']} without a verdict; loopml within "
        f"1.1 × budget on {totals['within_time']} of {totals['timed']} (gap = loopml's "
        "shortfall relative to the better peer's score; negative = loopml better)")


def print_speedup(speed: dict[str, Any], candidates: list[str]) -> None:
    """Print the 1-vs-2-worker search speed-up table and its summary line."""
    from rich.table import Table

    console = _console()
    if speed:
        table = Table(title=f"Search speed-up on {speed['dataset']}: {speed['trials']} trials, "
                            f"candidates {', '.join(candidates)}")
        for column in ("n_jobs", "search s", "trials (complete/pruned)", "work (Σ trial s)",
                       "efficiency", "mean trial s by candidate", "progress polls",
                       "worker start s"):
            table.add_column(column, justify="right")
        for run in speed["runs"]:
            s = run["search"]
            table.add_row(
                str(run["n_jobs"]), f"{s['seconds']:.1f}",
                f"{s['total']} ({s['complete']}/{s['pruned']})", f"{s['trial_seconds_sum']:.1f}",
                f"{s['efficiency']:.0%}",
                ", ".join(f"{k.replace('hist_gradient_boosting', 'hgb')} "
                          f"{v['mean_trial_s']:.2f}×{v['trials']}"
                          for k, v in sorted(s["by_candidate"].items())),
                f"{run['progress_polls']['calls']} / {run['progress_polls']['seconds']:.1f} s",
                "—" if run["worker_start_s"] is None else f"{run['worker_start_s']:.1f}")
        console.print(table)
        one, two = (r["search"] for r in speed["runs"])
        console.print(f"speed-up 1 → 2 workers: {speed['speedup']:.2f}× (target ≥ 1.8×: "
                      f"{'met' if speed['met'] else 'MISSED'}); the trials' summed time went "
                      f"from {one['trial_seconds_sum']:.1f} s to {two['trial_seconds_sum']:.1f} s "
                      f"({speed['trial_work_ratio']:.2f}×) with the workers "
                      f"{two['efficiency']:.0%} busy"
                      + (f"; thread variables {speed['threads_env']}" if speed["threads_env"]
                         else ""))

