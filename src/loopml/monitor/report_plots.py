"""The monitoring report's figures: distributions against the reference, series over windows.

A figure is the inline PNG ``<img>`` of :func:`loopml.evaluate.card._png` (None when the data
cannot be drawn); the helpers after them place windows on a time axis, one series per version.
Names reach the plots without control characters, cut to a label's length.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from loopml.evaluate.card import _plain, _png
from loopml.monitor.report_data import (
    _clean,
    _epoch_ms,
    _finite,
    _float,
    _label,
    _list,
    _short,
)

_PALETTE = ("#4c78a8", "#e45756", "#54a24b", "#b279a2", "#f58518", "#72b7b2", "#9d755d")


def _distribution(name: str, reference: dict[str, Any], sketch: dict[str, Any]) -> str | None:
    """Return an <img> comparing the reference's and the window's binned shares, or None."""
    if reference.get("categories") is not None:
        return _categorical(name, reference, sketch)
    edges = [_float(e) for e in _list(reference.get("edges"))]
    ref_counts = [_float(c) for c in _list(reference.get("counts"))]
    win_counts = [_float(c) for c in _list(sketch.get("counts"))]
    bins = len(edges) - 1
    if bins < 1 or any(math.isnan(e) or math.isinf(e) for e in edges):
        return None
    if len(ref_counts) == bins:  # no outer bins given
        ref_counts = [0.0, *ref_counts, 0.0]
    if len(win_counts) == bins:
        win_counts = [0.0, *win_counts, 0.0]
    if len(ref_counts) != bins + 2 or len(win_counts) != bins + 2:
        return None
    ref_share, win_share = _shares(ref_counts), _shares(win_counts)
    if ref_share is None or win_share is None:
        return None
    if any(b < a for a, b in zip(edges, edges[1:], strict=False)):
        return None
    display = _display_bins(edges, ref_share, win_share)
    outside_ref, outside_win = ref_share[0] + ref_share[-1], win_share[0] + win_share[-1]
    dates = bool(reference.get("datetime"))

    def draw(ax: Any) -> None:
        if display is not None:
            x, ref_bars, win_bars = display
            if dates:  # epoch seconds as matplotlib's dates (days since 1970)
                x = [e / 86400 for e in x]
            ax.stairs(ref_bars, x, fill=True, alpha=0.35, color="#4c78a8", label="reference")
            ax.stairs(win_bars, x, color="#e45756", lw=1.5, label="window")
            _axis(ax, dates=dates)
        else:  # every value on one point: the reference's bins side by side
            ax.bar(range(bins), ref_share[1:-1], alpha=0.35, color="#4c78a8", label="reference")
            ax.step(range(bins), win_share[1:-1], where="mid", color="#e45756", label="window")
        ax.set_yticks([])
        title = _plain(_short(name))
        if outside_ref or outside_win:
            title += f"\noutside the reference range: {outside_win:.1%} (ref {outside_ref:.1%})"
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)

    return _image(draw, (3.4, 2.3))


def _axis(ax: Any, *, dates: bool) -> None:
    """Set few, readable ticks on a distribution plot's x axis (dates or plain numbers)."""
    from matplotlib import dates as mdates
    from matplotlib import ticker

    if dates:
        locator = mdates.AutoDateLocator(maxticks=5)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        return
    ax.xaxis.set_major_locator(ticker.MaxNLocator(4))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(
        lambda value, _: f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"))


def _display_bins(edges: list[float], ref_share: list[float], win_share: list[float],
                  bins: int = 30) -> tuple[list[float], list[float], list[float]] | None:
    """Return equal-width display bins and both sides' shares on them, or None.

    The reference's bins hold equal masses, so they are narrow where values crowd and one
    of them can be a single point (the minimum): drawn as densities they would spike. Each
    side's distribution function is taken as linear inside a bin, read at ``bins`` equal
    steps over the central 99% of both sides' values, and differenced.

    >>> x, ref, win = _display_bins([0, 1, 2], [0, .5, .5, 0], [0, 0, 1, 0], bins=2)
    >>> [round(v, 3) for v in x], [round(v, 3) for v in ref], [round(v, 3) for v in win]
    ([0.01, 1.002, 1.995], [0.496, 0.496], [0.002, 0.993])
    """
    import numpy as np

    xp = np.asarray(edges, dtype=float)
    lows, highs, cdfs = [], [], []
    for share in (ref_share, win_share):
        # Distribution function at the edges: the mass below, then each bin's.
        cdf = share[0] + np.concatenate([[0.0], np.cumsum(share[1:-1])])
        cdfs.append(cdf)
        inside = cdf[-1] - cdf[0]
        if inside <= 0:
            continue
        lows.append(np.interp(cdf[0] + 0.005 * inside, cdf, xp))
        highs.append(np.interp(cdf[0] + 0.995 * inside, cdf, xp))
    if not lows:
        return None
    low, high = min(lows), max(highs)
    if not high > low:
        return None
    x = np.linspace(low, high, bins + 1)
    ref_bars, win_bars = (np.diff(np.interp(x, xp, cdf)) for cdf in cdfs)
    return x.tolist(), ref_bars.tolist(), win_bars.tolist()


def _categorical(name: str, reference: dict[str, Any], sketch: dict[str, Any]) -> str | None:
    categories = [_short(_clean(c), 24) for c in _list(reference.get("categories"))]
    k = len(categories)
    ref_counts = [_float(c) for c in _list(reference.get("category_counts"))]
    win_counts = [_float(c) for c in _list(sketch.get("counts", sketch.get("category_counts")))]
    if len(ref_counts) < k or len(win_counts) < k:
        return None
    # Everything beyond the known categories: the sketch counts it in its "other" entry (which
    # holds the contract-unseen values too); a sketch without one has only its unseen count.
    ref_all = ref_counts[:k] + [sum(_finite(c) for c in ref_counts[k:])]
    other = sum(_finite(c) for c in win_counts[k:]) if len(win_counts) > k \
        else _finite(_float(sketch.get("unseen")))
    win_all = win_counts[:k] + [other]
    ref_share, win_share = _shares(ref_all), _shares(win_all)
    if ref_share is None or win_share is None:
        return None
    order = sorted(range(k), key=lambda i: -max(ref_share[i], win_share[i]))
    top, rest = order[:12], order[12:]
    labels = [categories[i] for i in top] + ["other / unseen"]
    ref_bar = [ref_share[i] for i in top] + [ref_share[k] + sum(ref_share[i] for i in rest)]
    win_bar = [win_share[i] for i in top] + [win_share[k] + sum(win_share[i] for i in rest)]
    if not ref_bar[-1] and not win_bar[-1]:
        labels, ref_bar, win_bar = labels[:-1], ref_bar[:-1], win_bar[:-1]

    def draw(ax: Any) -> None:
        y = list(range(len(labels)))
        ax.barh([v - 0.2 for v in y], ref_bar, height=0.4, color="#4c78a8", alpha=0.6,
                label="reference")
        ax.barh([v + 0.2 for v in y], win_bar, height=0.4, color="#e45756", label="window")
        ax.set_yticks(y, [_plain(label) for label in labels])
        ax.invert_yaxis()
        ax.set_title(_plain(_short(name)), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)

    return _image(draw, (3.4, 0.9 + 0.2 * len(labels)))


def _image(draw: Any, size: tuple[float, float]) -> str:
    """Return the card's inline PNG of ``draw``, quiet about glyphs the font lacks."""
    with warnings.catch_warnings():
        # Names in any script reach the labels; a missing glyph draws a box, not an error.
        warnings.filterwarnings("ignore", message="Glyph .* missing", category=UserWarning)
        return _png(draw, size)


def _time_axis(windows: list[dict[str, Any]]) -> list[float]:
    """Return each window's place on the x axis: its start in days (since 1970) when every
    window has one, so gaps in time show as gaps; else its position in the list.
    """
    starts = [_epoch_ms(w.get("start")) for w in windows]
    if starts and all(s is not None for s in starts):
        return [s / 86_400_000 for s in starts]
    return [float(i) for i in range(len(windows))]


def _by_version(windows: list[dict[str, Any]], xs: list[float], values: list[float]
                ) -> list[tuple[str, list[float], list[float]]]:
    """Return one series per version (label suffix, x, y), each in time order.

    Windows of two versions can share a day (the day one replaced the other), so each
    version gets its own line instead of one line zigzagging between them.
    """
    groups: dict[str, list[tuple[float, float]]] = {}
    for window, x, y in zip(windows, xs, values, strict=True):
        groups.setdefault(str(window.get("version")), []).append((x, y))
    several = len(groups) > 1
    out = []
    for version, points in groups.items():
        points.sort(key=lambda point: point[0])
        out.append((f" (v{_clean(version)})" if several else "", [p[0] for p in points],
                    [p[1] for p in points]))
    return out


def _window_axis(ax: Any, windows: list[dict[str, Any]], xs: list[float]) -> None:
    """Label at most 8 of the windows' places on the x axis with their names."""
    labels: dict[float, str] = {}
    for window, x in zip(windows, xs, strict=True):
        labels.setdefault(x, _label(window))
    places = sorted(labels)
    chosen = places[::max(1, math.ceil(len(places) / 8))]
    ax.set_xticks(chosen, [_plain(_short(labels[x], 16)) for x in chosen], rotation=30,
                  ha="right", fontsize=7)


def _shares(counts: list[float]) -> list[float] | None:
    clean = [_finite(c) for c in counts]
    total = sum(clean)
    return None if total <= 0 else [c / total for c in clean]
