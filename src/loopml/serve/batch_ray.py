"""`loopml predict --backend ray`: the same job on Ray Data, streamed back in file order.

The file is read by Ray Data with the column types the local reader settled on, scored by
an actor pool that loads the model once per worker, and written by the local job's writer,
so the output equals the local one byte for byte.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput, LoopmlError
from loopml.serve.batch import _RAISED, _TypeChange
from loopml.serve.batch_scorer import _Scorer

if TYPE_CHECKING:
    import pyarrow as pa

    from loopml.serve.batch import _Job
    from loopml.serve.batch_io import _Writer


def score_on_ray(job: _Job, writer: _Writer, schema: pa.Schema) -> int:
    """Return the rows written after Ray Data scored them, streamed back in file order."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise InvalidInput("backend 'ray' needs Ray: pip install 'loopml[ray]'") from exc

    started = _start_ray()
    context = ray.data.DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.enable_progress_bars)
    context.execution_options.preserve_order = True  # the output keeps the file's order
    context.enable_progress_bars = False  # the caller shows progress
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        scored = _read(job, schema).map_batches(
            _RayScorer, batch_size=job.chunk_rows, batch_format="pyarrow",
            fn_constructor_kwargs={"payload": _payload(job.model),
                                   "keep": job.scorer.keep, "source": str(job.source)},
            # one CPU is left to the read tasks
            compute=ray.data.ActorPoolStrategy(size=max(1, cpus - 1)))
        total, done = job.total_rows(), 0
        for batch in scored.iter_batches(batch_size=None, batch_format="pyarrow"):
            writer.write(batch)
            done += batch.num_rows
            if job.on_progress is not None:
                job.on_progress(done, total)
        return done
    except (LoopmlError, _TypeChange, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise _error_from(job, exc) from exc
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = saved
        if started:
            ray.shutdown()

def _read(job: _Job, schema: pa.Schema) -> Any:
    import ray.data

    if job.format == "parquet":
        return ray.data.read_parquet(str(job.source), columns=schema.names)
    options = job.csv_options(schema.names)
    # every column typed as the local reader typed it: the same values, the same file
    options["convert_options"].column_types = {f.name: f.type for f in schema}
    stream = {"compression": "gzip"} if job.source.name.lower().endswith(".gz") else {}
    return ray.data.read_csv(str(job.source), file_extensions=None,
                             arrow_open_stream_args=stream, **options)

def _error_from(job: _Job, exc: BaseException) -> BaseException:
    """Return the error to raise for a failed Ray job: loopml's own, a retry, or ``exc``."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, LoopmlError):
            # Ray's copy carries the worker's traceback in its text; keep the message
            return type(cause)(*cause.args)
        cause = getattr(cause, "cause", None) or cause.__cause__ or cause.__context__
    # Ray Data passes a UDF's error on as text only (UserCodeException, no cause)
    raised = _RAISED.findall(str(exc))
    if raised:
        from loopml import errors

        kind = getattr(errors, raised[-1][0], None)
        if isinstance(kind, type) and issubclass(kind, LoopmlError):
            return kind(raised[-1][1])
    change = job.type_change(str(exc))
    if change is None and job.format == "csv":
        # Ray's reader hides pyarrow's message: find a column whose type changes here
        before = dict(job.types)
        job._scan_types()
        changed = [c for c, kind in job.types.items() if before.get(c) != kind]
        change = _TypeChange(changed[0], job.types[changed[0]]) if changed else None
    return change if change is not None else exc



class _RayScorer:
    """Ray Data's callable class: the model is loaded once per worker, then scores batches."""

    def __init__(self, payload: tuple[str, Any], keep: list[str], source: str) -> None:
        kind, model = payload
        if kind == "onnx":
            from loopml.optimize.runtime import OnnxModel

            model = OnnxModel.from_bytes(model)
        self.scorer = _Scorer(model, keep=keep, source=source)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.scorer(batch)


def _payload(model: Any) -> tuple[str, Any]:
    """Return what a Ray worker needs to rebuild ``model``: ONNX bytes, or the model itself."""
    if not hasattr(model, "session"):
        return "native", model
    # an onnxruntime session cannot be pickled; the bytes it was made from can
    blob = getattr(model, "blob", None) or getattr(model.session, "_model_bytes", None)
    if not isinstance(blob, bytes):
        raise InvalidInput("this ONNX model cannot be sent to Ray workers (its bytes are not "
                           "kept); load it from the registry or with OnnxModel.from_bytes")
    return "onnx", blob


def _start_ray() -> bool:
    """Return whether Ray was started here: joins RAY_ADDRESS's cluster, else a local one."""
    import logging

    import ray

    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS") or None
    ray.init(address=address, num_cpus=None if address else os.cpu_count() or 2,
             include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    return True


