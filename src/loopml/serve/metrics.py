"""The server's Prometheus metrics, in a registry of its own (no process-global collectors)."""

from __future__ import annotations

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServerMetrics:
    """Request count and latency by route and status, batch sizes, queue depth, errors by
    kind, dropped log records, and the version being served."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("loopml_requests", "Requests answered", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("loopml_request_latency_seconds", "Time to answer a request",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_rows = Histogram("loopml_batch_rows", "Rows per model call",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue_rows = Gauge("loopml_queue_rows", "Rows waiting for the model",
                                registry=self.registry)
        self.errors = Counter("loopml_errors", "Requests refused or failed, by kind", ["kind"],
                              registry=self.registry)
        self.log_dropped = Counter("loopml_log_dropped_records",
                                   "Prediction log records dropped (the log queue was full)",
                                   registry=self.registry)
        self.version = Gauge("loopml_model_version", "The model version being served",
                             ["model"], registry=self.registry)

    def on_batch(self, rows: int, waiting: int) -> None:
        self.batch_rows.observe(rows)
        self.queue_rows.set(waiting)

    def render(self) -> tuple[bytes, str]:
        """Return the text exposition format and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def observe(metrics: ServerMetrics, route: str, status: int, seconds: float,
            error: str | None = None) -> None:
    metrics.requests.labels(route, str(status)).inc()
    metrics.latency.labels(route).observe(seconds)
    if error is not None:
        metrics.errors.labels(error).inc()
