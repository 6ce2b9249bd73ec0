"""The model card: one self-contained HTML page with plots, and the same content as JSON."""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#222;padding:0 1rem} h1{font-size:1.6rem} h2{font-size:1.15rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem} table{border-collapse:collapse;
font-size:.85rem;margin:.5rem 0} td,th{padding:.2rem .6rem;text-align:left;border-bottom:1px
solid #eee} th{color:#555;font-weight:600} .grid{display:flex;flex-wrap:wrap;gap:1rem}
.meta{color:#555} code{background:#f4f4f4;padding:0 .25rem}
"""


def _png(draw: Any, size: tuple[float, float] = (4.2, 3.2)) -> str:
    """Return an <img> tag holding the PNG that ``draw(axes)`` makes.

    A bare ``Figure`` with its own Agg canvas: no pyplot, so the caller's matplotlib
    backend and open figures stay as they were.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    draw(axes)
    axes.spines[["top", "right"]].set_visible(False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return (f"<img alt='plot' src='data:image/png;base64,"
            f"{base64.b64encode(buffer.getvalue()).decode()}'>")


def _plain(text: Any) -> str:
    """Return ``text`` safe as a matplotlib label: ``$`` would start math mode.

    >>> _plain("price $ usd $")
    'price \\\\$ usd \\\\$'
    """
    return str(text).replace("$", r"\$")


def _table(rows: list[dict[str, Any]] | list[list[Any]], headers: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = ""
    for row in rows:
        cells = row if isinstance(row, list) else [row.get(h) for h in headers]
        body += "<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in cells) + "</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _text(value: Any) -> str:
    """Return user text for HTML: escaped, control characters written as escapes.

    >>> _text("<b>rf</b>\\x1b[31m")
    '&lt;b&gt;rf&lt;/b&gt;\\\\x1b[31m'
    """
    text = value if isinstance(value, str) else str(value)
    return html.escape("".join(c if c.isprintable() else c.encode("unicode_escape").decode()
                               for c in text))


def json_safe(value: Any) -> Any:
    """Return ``value`` with NaN and infinities as None, so it is valid JSON.

    >>> json_safe({"auc": float("nan"), "rows": [1.0, float("inf")]})
    {'auc': None, 'rows': [1.0, None]}
    """
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        return json_safe(value.item())
    return value


def card_json(card: dict[str, Any]) -> bytes:
    """Return the card as strict JSON (undefined metrics are null; their reasons are in it)."""
    return json.dumps(json_safe(card), indent=2, default=str, allow_nan=False).encode()


def render_card(card: dict[str, Any]) -> str:
    """Return the HTML model card of ``card`` (the JSON content)."""
    evaluation = card["evaluation"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Model card: "
             f"{html.escape(card['name'])}</title><style>{_STYLE}</style></head><body>",
             f"<h1>Model card — {html.escape(card['name'])}</h1>",
             f"<p class='meta'>{html.escape(card['task'])} · target <code>"
             f"{html.escape(card['target'])}</code> · model <b>"
             f"{html.escape(card['model']['candidate'])}</b> · metric {card['metric']} · "
             f"run <code>{card.get('run_id') or '-'}</code> · data <code>"
             f"{html.escape(card['data']['ref'])}</code> "
             f"({(card['data'].get('content_hash') or '')[:12]})</p>"]
    undefined = evaluation.get("undefined", {})
    parts.append("<h2>Test metrics</h2>" + _table(
        [[k, v, undefined.get(k)] for k, v in evaluation["metrics"].items()],
        ["metric", "value", "note"]))
    rows_seen = (card.get("data") or {}).get("rows_seen")
    if rows_seen:  # which rows fitted the model, which rows the metrics above come from
        parts.append(f"<p class='meta'>Rows: {_text(rows_seen)}</p>")
    if "threshold" in evaluation:
        # after a selection the threshold is chosen on the kept model's out-of-fold answers
        where = "the out-of-fold predictions of the selection" if \
            card["model"].get("selection") else "the validation rows"
        parts.append(f"<p>Decision threshold <b>{evaluation['threshold']:.3f}</b>, chosen on "
                     f"{where} (maximises F1, or accuracy when that is the metric).</p>")
    plots = []
    curves = evaluation.get("curves")
    if curves:
        plots.append(_png(lambda ax: (ax.plot(curves["roc"]["fpr"], curves["roc"]["tpr"]),
                                      ax.plot([0, 1], [0, 1], ls=":", c="grey"),
                                      ax.set(title="ROC", xlabel="false positive rate",
                                             ylabel="true positive rate"))))
        plots.append(_png(lambda ax: (ax.plot(curves["pr"]["recall"],
                                              curves["pr"]["precision"]),
                                      ax.set(title="Precision-recall", xlabel="recall",
                                             ylabel="precision"))))
        plots.append(_png(lambda ax: (ax.plot(curves["calibration"]["predicted"],
                                              curves["calibration"]["observed"], marker="o"),
                                      ax.plot([0, 1], [0, 1], ls=":", c="grey"),
                                      ax.set(title="Calibration", xlabel="predicted",
                                             ylabel="observed"))))
    if evaluation.get("confusion_matrix"):
        matrix = evaluation["confusion_matrix"]
        classes = evaluation["classes"]

        def draw_confusion(ax: Any) -> None:
            ax.imshow(matrix, cmap="Blues")
            for i, row in enumerate(matrix):
                for j, value in enumerate(row):
                    ax.text(j, i, str(value), ha="center", va="center")
            ax.set(title="Confusion (rows: true)", xticks=range(len(classes)),
                   yticks=range(len(classes)), xticklabels=[_plain(c) for c in classes],
                   yticklabels=[_plain(c) for c in classes])

        plots.append(_png(draw_confusion, (3.6, 3.2)))
    if evaluation.get("residuals"):
        res = evaluation["residuals"]
        plots.append(_png(lambda ax: (ax.bar(res["edges"][:-1], res["counts"],
                                             width=res["edges"][1] - res["edges"][0],
                                             align="edge"),
                                      ax.set(title="Residuals (true − predicted)"))))
    parts.append("<div class='grid'>" + "".join(plots) + "</div>")

    explanations = evaluation["explanations"]
    importance = list(explanations["importance"].items())[:15]
    rows_used = explanations.get("sample_rows")
    on_rows = f" · on {_fmt(rows_used)} test rows, {_fmt(explanations.get('repeats'))} " \
        "shuffles each" if rows_used is not None else ""
    cut = explanations.get("sampled_for_time")
    on_rows += f" ({_text(cut)}: train.time_budget_s)" if cut else ""
    parts.append(f"<h2>What drives predictions</h2><p class='meta'>{explanations['method']}: "
                 f"{html.escape(explanations['unit'])}{on_rows}</p>")
    if importance:
        parts.append(_png(lambda ax: (ax.barh([_plain(k) for k, _ in reversed(importance)],
                                              [v for _, v in reversed(importance)],
                                              color="#54a24b"),
                                      ax.set(title="Global importance")), (6, 3.6)))
    for number, row in enumerate(explanations.get("rows", [])[:3]):
        top = sorted(row["contributions"].items(), key=lambda kv: -abs(kv[1]))[:6]
        parts.append(f"<p>Row {number}: expected value {row['expected_value']:.3f}; "
                     + ", ".join(f"{html.escape(k)} {v:+.3f}" for k, v in top) + "</p>")

    if evaluation.get("fairness"):
        parts.append("<h2>Fairness by sensitive group</h2>")
        for column, result in evaluation["fairness"].items():
            rows = [[g, v["count"], v["selection_rate"], v["tpr"], v["fpr"]]
                    for g, v in result["groups"].items()]
            parts.append(f"<p><b>{html.escape(column)}</b>: demographic-parity difference "
                         f"{_fmt(result['demographic_parity_difference'])}, equalized-odds "
                         f"difference {_fmt(result['equalized_odds_difference'])}</p>")
            parts.append(_table(rows, ["group", "rows", "selection rate", "TPR", "FPR"]))
            groups = result["groups"]
            parts.append(_png(lambda ax, g=groups: (
                ax.bar([_plain(k) for k in g], [v["selection_rate"] for v in g.values()],
                       color="#e45756"),
                ax.set(title="Selection rate by group")), (4, 2.6)))

    if evaluation.get("slices"):
        parts.append(f"<h2>{html.escape(card['metric'])} by slice</h2><div class='grid'>")
        for column, rows in evaluation["slices"].items():
            parts.append(f"<div><b>{html.escape(column)}</b>" + _table(
                [[r["value"], r["count"], r[card["metric"]]] for r in rows],
                ["value", "rows", card["metric"]]) + "</div>")
        parts.append("</div>")

    parts.extend(_ensemble_section(card))
    parts.extend(_training_sections(card))
    parts.extend(_timings_section(card.get("timings")))
    parts.append("</body></html>")
    return "".join(parts)


def _training_sections(card: dict[str, Any]) -> list[str]:
    """Return the search, configuration and feature sections (cards of trained models)."""
    parts: list[str] = []
    search = card.get("search")
    if search is None:  # a model evaluated after import: no search, no features
        return parts
    parts.append(f"<h2>Search</h2><p>{search['complete']} complete trials of {search['total']} "
                 f"({search['pruned']} pruned) over {', '.join(search['candidates'])}; "
                 f"backend {search['backend']}, {search['workers']} worker(s), "
                 f"{search['seconds']:.1f} s; validation: {html.escape(search['validation'])}."
                 "</p>")
    history = [t for t in search["trials"] if t["value"] is not None]
    if history:
        parts.append(_png(lambda ax: (
            ax.scatter([t["number"] for t in history], [t["value"] for t in history], s=12),
            ax.set(title="Trial scores", xlabel="trial", ylabel=card["metric"])), (6, 3)))
    if not card["model"].get("ensemble"):  # an ensemble's params are its members'
        parts.append("<h2>Best configuration</h2>" + _table(
            [[k, v] for k, v in card["model"]["params"].items()], ["param", "value"]))
    features = card["features"]
    parts.append("<h2>Data and features</h2>" + _table(
        [["numeric", ", ".join(features["numeric"])],
         ["categorical", ", ".join(features["categorical"])],
         ["datetime", ", ".join(features["datetime"])],
         ["not used", ", ".join(f"{k} ({v})" for k, v in features["dropped"].items())],
         ["rows", json.dumps(card["data"]["rows"])]], ["", ""]))
    parts.append("<h2>Configuration</h2><pre>" + html.escape(
        json.dumps(card["config"], indent=2, default=str)) + "</pre>")
    return parts


def _ensemble_section(card: dict[str, Any]) -> list[str]:
    """Return how the final model was selected and, for an ensemble, its members."""
    members = card["model"].get("ensemble") or []
    selection = card["model"].get("selection") or {}
    if not members and not selection:
        return []
    parts = ["<h2>Members</h2>" if members else "<h2>Selection</h2>"]
    if selection:
        parts.append(f"<p>{_selection_line(selection, card.get('metric'))}</p>")
    if members:
        rows = []
        for member in members:
            params = member.get("params") or {}
            shown = ", ".join(f"{_text(k)}={_text(_param(v))}" for k, v in params.items())
            weight = member.get("weight")
            weight = f"{weight:.3f}" if isinstance(weight, int | float) else _fmt(weight)
            rows.append(f"<tr><td>{_fmt(member.get('trial'))}</td>"
                        f"<td>{_text(member.get('candidate', ''))}</td><td>{weight}</td>"
                        f"<td>{_fmt(member.get('cv_score'))}</td><td>{shown or '—'}</td></tr>")
        head = "".join(f"<th>{h}</th>" for h in ("trial", "candidate", "weight", "CV score",
                                                  "params"))
        parts.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
    onnx = card["model"].get("onnx")
    if isinstance(onnx, dict):
        parts.append(f"<p>ONNX: {_onnx_line(onnx)}</p>")
    return parts


def _onnx_line(onnx: dict[str, Any]) -> str:
    """Return whether the ensemble converts to one ONNX graph, as the training run found."""
    if not onnx.get("checked"):
        return f"not checked ({_text(onnx.get('reason', ''))})"
    if onnx.get("exports"):
        return (f"every member converts; one graph of {_fmt(onnx.get('bytes'))} bytes, built "
                f"in {_fmt(onnx.get('seconds'))} s (served and exported like any model)")
    return f"no ONNX form, the model is served natively: {_text(onnx.get('error', ''))}"


def _selection_line(selection: dict[str, Any], metric: Any) -> str:
    """Return the selection in one sentence: method, library, both scores, what was kept."""
    kept = selection.get("kept")
    best = selection.get("best_single_trial")
    best = f" (trial {_fmt(best)})" if best is not None else ""
    verdict = (f"the ensemble was kept: it beat the best single trial{best} out of fold"
               if kept == "ensemble" else
               f"the best single trial{best} was kept: the ensemble did not beat it"
               if kept == "single" else f"kept: {_text(kept)}")
    rows = selection.get("rows")
    over = f" on {_fmt(rows)} out-of-fold rows" if rows is not None else ""
    line = (f"{_text(selection.get('method', 'ensemble selection'))}: "
            f"{_fmt(selection.get('rounds'))} rounds over a library of "
            f"{_fmt(selection.get('library'))} trials{over}; cross-validated "
            f"{_text(metric or 'score')} of the ensemble "
            f"{_fmt(selection.get('ensemble_cv_score'))}, of the best single trial "
            f"{_fmt(selection.get('best_single_cv_score'))}; {verdict}.")
    dropped = selection.get("dropped_for_budget")
    if dropped:
        line += (" Left out of the library because their refit would not fit in the budget: "
                 f"trial(s) {', '.join(_fmt(t) for t in dropped)}.")
    return line


def _param(value: Any) -> str:
    """Return a parameter value as short text: floats to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _timings_section(timings: dict[str, Any] | None) -> list[str]:
    """Return the wall time of each phase and what the budget reserved (else nothing)."""
    if not timings:
        return []
    budget_keys = ("budget", "reserved", "stopped_for_reserve", "stop_asked_at")
    phases = [[_text(k), v] for k, v in timings.items()
              if k not in budget_keys and isinstance(v, int | float) and
              not isinstance(v, bool)]
    parts = ["<h2>Timings</h2>"]
    if phases:
        total = sum(v for _, v in phases)
        rows = "".join(f"<tr><td>{k}</td><td>{v:.2f}</td></tr>" for k, v in phases)
        parts.append(f"<table><tr><th>phase</th><th>seconds</th></tr>{rows}"
                     f"<tr><td><b>all phases</b></td><td><b>{total:.2f}</b></td></tr></table>")
    budget = timings.get("budget")
    if isinstance(budget, int | float) and not isinstance(budget, bool):
        line = f"Budget {budget:g} s for the whole command"
        reserved = timings.get("reserved")
        if isinstance(reserved, int | float):
            line += f"; {reserved:.1f} s reserved for refit, evaluation and the card"
        asked = timings.get("stop_asked_at")
        if isinstance(asked, int | float):
            line += f"; the search was asked to stop at {asked:.1f} s"
        if timings.get("stopped_for_reserve"):
            line += " (it stopped to leave the reserve)"
        parts.append(f"<p>{line}.</p>")
    return parts if len(parts) > 1 else []
