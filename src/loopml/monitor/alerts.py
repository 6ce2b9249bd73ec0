"""Alert rules over a window's verdict, and the webhook that announces new alerts.

A rule is crossed by one window at most once per kind (the store keeps one alert per
window and kind), so a monitor run every minute does not repeat itself. Kinds:

- ``drift``: the share of drifted features reached ``monitor.drift.share``;
- ``prediction_drift``: the model's outputs drifted from its test-set outputs;
- ``quality``: missing values, out-of-range numbers, unseen categories or unreadable values
  beyond ``monitor.quality``;
- ``performance``: the realised metric (labels arrived) is worse than the model card's
  test metric by ``monitor.performance.max_drop`` or more, beyond noise: the better end of
  the window's 95% bootstrap interval is still that much worse;
- ``performance_estimated``: the same drop, estimated from the model's calibrated
  confidence before the labels are in (classifiers).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.monitor.settings import MonitorSection
    from loopml.store.monitoring import AlertRecord

WEBHOOK_TIMEOUT_S = 5.0


def rules_for(verdict: dict[str, Any], settings: MonitorSection) -> list[dict[str, Any]]:
    """Return the alerts (kind, severity, message, details) one window's verdict crosses.

    >>> from loopml.monitor.settings import MonitorSection
    >>> rules_for({"drift": {"dataset_drift": True, "share": 0.5, "drifted": ["age"],
    ...            "monitored": 2}}, MonitorSection())[0]["message"]
    '1 of 2 features drifted (50%): age'
    """
    found: list[dict[str, Any]] = []
    drift = verdict.get("drift") or {}
    if drift.get("dataset_drift"):
        names = list(drift.get("drifted") or [])
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        share = float(drift.get("share") or 0.0)
        found.append({"kind": "drift", "severity": "critical" if share >= 0.5 else "warning",
                      "message": f"{len(names)} of {drift.get('monitored')} features drifted "
                                 f"({share:.0%}): {shown}",
                      "details": {"share": share, "drifted": names, "rule": drift.get("rule")}})
    prediction = drift.get("prediction") or {}
    if prediction.get("drifted"):
        found.append({"kind": "prediction_drift", "severity": "warning",
                      "message": f"the model's outputs drifted ({prediction.get('decided_by')})",
                      "details": {k: prediction.get(k) for k in
                                  ("statistic", "p_value", "psi", "wasserstein_norm",
                                   "js_distance", "decided_by")}})
    issues = (verdict.get("quality") or {}).get("issues") or []
    if issues:
        found.append({"kind": "quality", "severity": "warning",
                      "message": "; ".join(issues[:5]) + (f"; and {len(issues) - 5} more"
                                                          if len(issues) > 5 else ""),
                      "details": {"issues": issues}})
    performance = verdict.get("performance") or {}
    limit = settings.performance.max_drop
    metric = performance.get("metric")
    drop = performance.get("drop")
    sure = performance.get("drop_low")
    if drop is not None and sure is not None and sure >= limit:
        value = (performance.get("realised") or {}).get(metric)
        found.append({"kind": "performance", "severity": "critical",
                      "message": f"{metric} {value:.3f} on {performance.get('labeled_rows')} "
                                 f"labelled rows, {drop:.3f} below the model card's "
                                 f"{performance.get('reference'):.3f} (at least {sure:.3f} "
                                 f"with 95% confidence; limit {limit})",
                      "details": {"metric": metric, "value": value, "drop": drop,
                                  "drop_low": sure, "interval": performance.get("interval"),
                                  "reference": performance.get("reference"),
                                  "labeled_rows": performance.get("labeled_rows")}})
    estimated_drop = performance.get("estimated_drop")
    if estimated_drop is not None and estimated_drop >= limit:
        value = (performance.get("estimated") or {}).get(metric)
        found.append({"kind": "performance_estimated", "severity": "warning",
                      "message": f"estimated {metric} {value:.3f} (from the model's calibrated "
                                 f"confidence, before labels), {estimated_drop:.3f} below the "
                                 f"model card's {performance.get('reference'):.3f}",
                      "details": {"metric": metric, "value": value, "drop": estimated_drop,
                                  "reference": performance.get("reference")}})
    return found


def alert_payload(alert: AlertRecord) -> dict[str, Any]:
    """Return the JSON body the webhook receives for ``alert``."""
    return {"source": "loopml", "alert": {
        "id": alert.id, "model": alert.model, "version": alert.version, "window": alert.window,
        "window_start": alert.start_key, "kind": alert.kind, "severity": alert.severity,
        "message": alert.message, "details": alert.details,
        "created_at": alert.created_at.isoformat()}}


def send_webhook(url: str, alert: AlertRecord, *, timeout: float = WEBHOOK_TIMEOUT_S) -> str:
    """POST ``alert`` as JSON to ``url``; return how it ended (never raises).

    A webhook that is down must not stop monitoring: the outcome is stored with the alert
    (``loopml alerts list`` shows it) instead.
    """
    import urllib.error
    import urllib.request

    from loopml.evaluate.card import json_safe

    body = json.dumps(json_safe(alert_payload(alert)), allow_nan=False).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "loopml-monitor"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (http/s only)
            return f"sent (HTTP {answer.status})"
    except urllib.error.HTTPError as exc:
        return f"failed: HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"failed: {str(reason)[:200]}"
