"""Drift statistics on raw samples and on bin counts, each equal to scipy's on the same data.

Every function has a sample form (two arrays of values) and a counts form (the counts of two
samples over the same bins or categories); the counts form is what a window sketch holds and is
exact when every value of a bin is the bin's representative value (integers, categories), and
an approximation at the bins' resolution otherwise.

- ``ks_2samp`` / ``ks_2samp_counts``: two-sample Kolmogorov-Smirnov, statistic and p-value as
  ``scipy.stats.ks_2samp(method="asymp")``.
- ``wasserstein`` / ``wasserstein_counts``: ``scipy.stats.wasserstein_distance`` (the counts form
  equals it with ``u_weights``/``v_weights`` on the bins' representative values).
- ``chi2`` / ``chi2_counts``: chi-squared on the 2 x k table of counts, as
  ``scipy.stats.chi2_contingency(correction=False)``; categories empty on both sides dropped.
- ``js_distance`` / ``js_distance_counts``: ``scipy.spatial.distance.jensenshannon`` in base 2,
  so it lies in [0, 1].
- ``psi`` / ``psi_counts``: population stability index, with shares below ``PSI_EPSILON``
  raised to it so an empty bin on one side gives a large but finite term.
- ``adjust_pvalues``: Holm or Benjamini-Hochberg correction across features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike

__all__ = [
    "PSI_EPSILON",
    "StatResult",
    "adjust_pvalues",
    "chi2",
    "chi2_counts",
    "js_distance",
    "js_distance_counts",
    "ks_2samp",
    "ks_2samp_counts",
    "psi",
    "psi_counts",
    "wasserstein",
    "wasserstein_counts",
]

PSI_EPSILON = 1e-4  # the share an empty bin counts as in PSI (as Evidently and most texts use)


class StatResult(NamedTuple):
    """A test's statistic, p-value and degrees of freedom (KS: None)."""

    statistic: float
    p_value: float
    dof: int | None = None


def _counts(values: ArrayLike, what: str) -> np.ndarray:
    import numpy as np

    from loopml.errors import InvalidInput

    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise InvalidInput(f"{what} must be finite counts >= 0, got {array[:10].tolist()}...")
    return array


def _pair(reference: ArrayLike, current: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    from loopml.errors import InvalidInput

    a, b = _counts(reference, "reference counts"), _counts(current, "current counts")
    if a.shape != b.shape:
        raise InvalidInput(f"the two count vectors must have the same bins, got {a.size} "
                           f"and {b.size} entries")
    return a, b


def _sample(values: ArrayLike, what: str) -> np.ndarray:
    import numpy as np

    from loopml.errors import InvalidInput

    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[~np.isnan(array)]
    if array.size == 0:
        raise InvalidInput(f"{what} has no values: a statistic needs at least one on each side")
    return array


# --- Kolmogorov-Smirnov -----------------------------------------------------------------------

def ks_2samp_counts(reference: ArrayLike, current: ArrayLike) -> StatResult:
    """Return the two-sample KS statistic and asymptotic p-value of two count vectors.

    The bins are ordered; the statistic is the largest gap between the two empirical CDFs at
    the bins' right edges, as ``scipy.stats.ks_2samp(method="asymp")`` gives for samples whose
    values are the bins' representatives.

    >>> r = ks_2samp_counts([5, 5, 0], [0, 5, 5])
    >>> round(r.statistic, 3)
    0.5
    """
    import numpy as np

    a, b = _pair(reference, current)
    n1, n2 = a.sum(), b.sum()
    if n1 <= 0 or n2 <= 0:
        return StatResult(math.nan, math.nan)
    # Only bins holding a value are places where scipy evaluates the CDFs.
    keep = (a + b) > 0
    gap = np.cumsum(a[keep]) / n1 - np.cumsum(b[keep]) / n2
    statistic = float(max(np.max(gap), np.clip(-np.min(gap), 0, 1)))
    return StatResult(statistic, _ks_pvalue(statistic, int(round(n1)), int(round(n2))))


def ks_2samp(reference: ArrayLike, current: ArrayLike) -> StatResult:
    """Return the two-sample KS statistic and asymptotic p-value of two samples (NaN dropped).

    >>> r = ks_2samp([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    >>> r.statistic, r.p_value
    (0.0, 1.0)
    """
    import numpy as np

    a, b = np.sort(_sample(reference, "the reference")), np.sort(_sample(current, "the current"))
    both = np.concatenate([a, b])
    gap = np.searchsorted(a, both, side="right") / a.size \
        - np.searchsorted(b, both, side="right") / b.size
    statistic = float(max(np.max(gap), np.clip(-np.min(gap), 0, 1)))
    return StatResult(statistic, _ks_pvalue(statistic, a.size, b.size))


KS_LIMIT_ROWS = 20_000  # effective sizes from here on take Kolmogorov's limit distribution


def _ks_pvalue(statistic: float, n1: int, n2: int) -> float:
    """Smirnov's asymptotic two-sided p-value, as scipy's ``ks_2samp(method="asymp")``.

    From an effective size of ``KS_LIMIT_ROWS`` on, the limit distribution
    (``kolmogorov(D * sqrt(n))``) replaces ``kstwo`` at n: within 1% of it (relative) there,
    and ~40 ms a call cheaper (large windows are decided by effect sizes anyway).
    """
    import numpy as np

    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    if en >= KS_LIMIT_ROWS:
        from scipy.special import kolmogorov

        return float(np.clip(kolmogorov(statistic * np.sqrt(np.round(en))), 0, 1))
    from scipy.stats import kstwo

    return float(np.clip(kstwo.sf(statistic, np.round(en)), 0, 1))


# --- Wasserstein ------------------------------------------------------------------------------

def wasserstein_counts(values: ArrayLike, reference: ArrayLike, current: ArrayLike) -> float:
    """Return the Wasserstein-1 distance of two count vectors over the same sorted ``values``.

    Equals ``scipy.stats.wasserstein_distance(values, values, reference, current)``.

    >>> wasserstein_counts([0.0, 1.0, 2.0], [1, 0, 0], [0, 0, 1])
    2.0
    """
    import numpy as np

    from loopml.errors import InvalidInput

    a, b = _pair(reference, current)
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.shape != a.shape:
        raise InvalidInput(f"one value per bin expected: {x.size} values for {a.size} bins")
    if a.sum() <= 0 or b.sum() <= 0:
        return math.nan
    if np.any(np.diff(x) < 0):
        order = np.argsort(x, kind="mergesort")
        x, a, b = x[order], a[order], b[order]
    gap = np.cumsum(a)[:-1] / a.sum() - np.cumsum(b)[:-1] / b.sum()
    return float(np.sum(np.abs(gap) * np.diff(x)))


def wasserstein(reference: ArrayLike, current: ArrayLike) -> float:
    """Return the Wasserstein-1 distance of two samples (NaN dropped).

    >>> wasserstein([0.0, 1.0, 3.0], [5.0, 6.0, 8.0])
    5.0
    """
    import numpy as np

    a, b = np.sort(_sample(reference, "the reference")), np.sort(_sample(current, "the current"))
    both = np.sort(np.concatenate([a, b]), kind="mergesort")
    gap = np.searchsorted(a, both[:-1], side="right") / a.size \
        - np.searchsorted(b, both[:-1], side="right") / b.size
    return float(np.sum(np.abs(gap) * np.diff(both)))


# --- chi-squared ------------------------------------------------------------------------------

def chi2_counts(reference: ArrayLike, current: ArrayLike) -> StatResult:
    """Return chi-squared, p-value and degrees of freedom of the 2 x k table of counts.

    Categories empty on both sides are dropped (they carry no information and would make an
    expected count zero); with fewer than two categories left the statistic is 0 and p is 1.
    Equals ``scipy.stats.chi2_contingency([reference, current], correction=False)``.

    >>> chi2_counts([10, 10], [10, 10])
    StatResult(statistic=0.0, p_value=1.0, dof=1)
    """
    import numpy as np
    from scipy.stats import chi2 as chi2_dist

    a, b = _pair(reference, current)
    keep = (a + b) > 0
    a, b = a[keep], b[keep]
    n1, n2 = a.sum(), b.sum()
    if n1 <= 0 or n2 <= 0:
        return StatResult(math.nan, math.nan, None)
    if a.size < 2:
        return StatResult(0.0, 1.0, 0)
    total = n1 + n2
    column = a + b
    expected_a, expected_b = column * (n1 / total), column * (n2 / total)
    statistic = float(np.sum((a - expected_a) ** 2 / expected_a)
                      + np.sum((b - expected_b) ** 2 / expected_b))
    dof = int(a.size - 1)
    return StatResult(statistic, float(chi2_dist.sf(statistic, dof)), dof)


def chi2(reference: Sequence[object], current: Sequence[object]) -> StatResult:
    """Return chi-squared of two samples of categories (None and NaN dropped).

    >>> chi2(["a", "b"], ["a", "b"]).p_value
    1.0
    """
    a, b, _ = _category_counts(reference, current)
    return chi2_counts(a, b)


def _category_counts(reference: Sequence[object], current: Sequence[object]
                     ) -> tuple[list[int], list[int], list[str]]:
    from collections import Counter

    def clean(values: Sequence[object]) -> Counter[str]:
        return Counter(str(v) for v in values
                       if v is not None and not (isinstance(v, float) and math.isnan(v)))

    ca, cb = clean(reference), clean(current)
    keys = sorted(ca.keys() | cb.keys())
    return [ca[k] for k in keys], [cb[k] for k in keys], keys


# --- Jensen-Shannon ---------------------------------------------------------------------------

def js_distance_counts(reference: ArrayLike, current: ArrayLike) -> float:
    """Return the Jensen-Shannon distance (base 2, in [0, 1]) of two count vectors.

    Equals ``scipy.spatial.distance.jensenshannon(reference, current, base=2)``.

    >>> js_distance_counts([1, 0], [0, 1])
    1.0
    """
    import numpy as np
    from scipy.special import rel_entr

    a, b = _pair(reference, current)
    if a.sum() <= 0 or b.sum() <= 0:
        return math.nan
    p, q = a / a.sum(), b / b.sum()
    m = (p + q) / 2.0
    divergence = (np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))) / 2.0
    return float(np.sqrt(max(divergence, 0.0) / np.log(2.0)))


def js_distance(reference: Sequence[object], current: Sequence[object]) -> float:
    """Return the Jensen-Shannon distance (base 2) of two samples of categories.

    >>> js_distance(["a"], ["a"])
    0.0
    """
    a, b, _ = _category_counts(reference, current)
    return js_distance_counts(a, b)


# --- PSI --------------------------------------------------------------------------------------

def psi_counts(reference: ArrayLike, current: ArrayLike, *,
               epsilon: float = PSI_EPSILON) -> float:
    """Return the population stability index of two count vectors over the same bins.

    PSI = sum over bins of (current share - reference share) x ln(current / reference); shares
    below ``epsilon`` count as ``epsilon`` (bins empty on both sides add nothing).

    >>> psi_counts([50, 50], [50, 50])
    0.0
    """
    import numpy as np

    a, b = _pair(reference, current)
    if a.sum() <= 0 or b.sum() <= 0:
        return math.nan
    p = np.maximum(a / a.sum(), epsilon)
    q = np.maximum(b / b.sum(), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def psi(reference: ArrayLike, current: ArrayLike, *, bins: int = 10,
        epsilon: float = PSI_EPSILON) -> float:
    """Return the PSI of two numeric samples on ``bins`` quantile bins of the reference.

    >>> psi([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], bins=2)
    0.0
    """
    import numpy as np

    a, b = _sample(reference, "the reference"), _sample(current, "the current")
    edges = np.unique(np.quantile(a, np.linspace(0, 1, bins + 1)))
    inner = edges[1:-1]  # outer bins open: current values outside the reference's range count
    ca = np.bincount(np.searchsorted(inner, a, side="right"), minlength=inner.size + 1)
    cb = np.bincount(np.searchsorted(inner, b, side="right"), minlength=inner.size + 1)
    return psi_counts(ca, cb, epsilon=epsilon)


# --- corrections ------------------------------------------------------------------------------

def adjust_pvalues(p_values: ArrayLike, method: str) -> np.ndarray:
    """Return p-values adjusted for testing many features at once (NaN kept, not counted).

    ``holm``: Holm-Bonferroni step-down (controls the family-wise error rate); ``bh``:
    Benjamini-Hochberg (controls the false discovery rate, as
    ``scipy.stats.false_discovery_control``); ``none``: unchanged.

    >>> adjust_pvalues([0.01, 0.04, 0.03], "holm").round(4).tolist()
    [0.03, 0.06, 0.06]
    """
    import numpy as np

    from loopml.errors import InvalidInput

    p = np.asarray(p_values, dtype=np.float64).ravel().copy()
    if method not in ("holm", "bh", "none"):
        raise InvalidInput(f"monitor.drift.correction must be holm, bh or none, got {method!r}")
    known = ~np.isnan(p)
    values = p[known]
    if np.any((values < 0) | (values > 1)):
        raise InvalidInput(f"p-values must lie in [0, 1], got {values.tolist()[:10]}")
    m = values.size
    if method == "none" or m == 0:
        return p
    order = np.argsort(values, kind="mergesort")
    ranked = values[order]
    if method == "holm":
        adjusted = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:
        adjusted = ranked * m / np.arange(1, m + 1)
        adjusted = np.minimum.accumulate(adjusted[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(adjusted, 0, 1)
    p[known] = out
    return p
