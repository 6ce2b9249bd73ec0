"""`loopml serve NAME@ALIAS`: the model behind a real-time HTTP API (FastAPI on uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli.common import HomeOption, whole_number


def serve(
    ref: Annotated[str, typer.Argument(help="NAME@ALIAS (followed as it moves) or NAME@VERSION.")],
    host: Annotated[str, typer.Option(help="Interface to bind; anything but loopback turns "
                                           "auth on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(parser=whole_number(0, 65535), help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(parser=whole_number(1, 64),
                                         help="Server processes.")] = 1,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve without tokens even when "
                                                            "bound beyond loopback.")] = False,
    max_batch_size: Annotated[int, typer.Option(parser=whole_number(1, 1_000_000),
                                                help="Rows per model call.")] = 256,
    max_latency_ms: Annotated[float, typer.Option(help="How long a batch may wait to fill "
                                                       "(0: only what is queued).")] = 0.0,
    max_queue_rows: Annotated[int, typer.Option(parser=whole_number(1, 100_000_000),
                                                help="Rows waiting before 503.")] = 20_000,
    max_rows: Annotated[int, typer.Option(parser=whole_number(1, 10_000_000),
                                          help="Rows in one request.")] = 10_000,
    log_dir: Annotated[str | None, typer.Option(help="Prediction log folder (default: "
                                                     "HOME/predictions).")] = None,
    flavour: Annotated[str | None, typer.Option(help="native or onnx (default: the one the "
                                                     "registry chose).")] = None,
    home: HomeOption = None,
) -> None:
    """Serve a registered model: /v1 predict and feedback, Open Inference Protocol V2, metrics."""
    import json
    import os

    import uvicorn

    from loopml.errors import InvalidInput
    from loopml.registry.registry import Registry
    from loopml.serve.app import SETTINGS_ENV
    from loopml.serve.auth import auth_required
    from loopml.workspace import Workspace

    if max_latency_ms < 0 or max_latency_ms > 10_000:
        raise InvalidInput(f"--max-latency-ms {max_latency_ms}: expected 0 to 10000")
    if flavour not in (None, "native", "onnx"):
        raise InvalidInput(f"--flavour {flavour!r}: expected native or onnx")
    workspace = Workspace.from_env(home)
    with Registry.open(workspace) as registry:  # a bad reference is an error before binding
        record = registry.get(ref)
    settings = {"ref": ref, "max_batch_size": max_batch_size, "max_latency_ms": max_latency_ms,
                "max_queue_rows": max_queue_rows, "max_rows": max_rows, "flavour": flavour,
                "auth": auth_required(host, no_auth=no_auth), "log_dir": log_dir,
                "home": str(workspace.home)}
    os.environ[SETTINGS_ENV] = json.dumps(settings)
    os.environ.setdefault("LOOPML_STORE_URI", workspace.store_uri)
    os.environ.setdefault("LOOPML_ARTIFACTS_URI", workspace.artifacts_uri)
    typer.echo(f"serving {record.ref} ({record.flavour}) on http://{host}:{port} "
               f"(auth {'on' if settings['auth'] else 'off'}; docs at /docs)", err=True)
    uvicorn.run("loopml.serve.app:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level="warning", access_log=False)
