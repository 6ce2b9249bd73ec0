"""`loopml.load_model`: a stored model back as a Python object, verified before unpickling."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput, NotFound, UntrustedArtifact

if TYPE_CHECKING:
    from loopml.artifacts import ArtifactStore
    from loopml.store import Store
    from loopml.store.models import ModelVersionRecord
    from loopml.workspace import Workspace

MODEL_ARTIFACT = "model.loopml"
LEGACY_ARTIFACT = "model.joblib"  # unsigned, from before the signed envelope: never loaded
FLAVOURS = ("native", "onnx")


def load_model(ref: str, *, workspace: Workspace | None = None, flavour: str | None = None,
               trust: bool = False) -> Any:
    """Return a stored model, ready for ``predict``/``predict_proba``.

    ``ref`` is ``NAME@VERSION``, ``NAME@ALIAS`` (``credit@champion``), ``NAME`` (its latest
    version), a training run's id (or a unique prefix of one), or the path of a model file
    (``.loopml``, ``.onnx``; a plain pickle only with ``trust=True``). ``flavour`` picks
    ``native`` (the Python object) or ``onnx`` (an onnxruntime session behind the same
    methods); by default the native one where there is one.

    Before anything is unpickled, the bytes must hash to the sha256 the store recorded and
    carry a signature made with this workspace's secret. ``trust=True`` loads a model *file*
    without that signature (a pickle made elsewhere): only for files you made yourself. A
    model in the store is always verified, ``trust`` or not: whoever can write the store and
    the artifact folder must not get code run by swapping a pickle in.

    Examples
    --------
    >>> model = loopml.load_model("credit@champion")   # doctest: +SKIP
    >>> model.predict(frame.head())                    # doctest: +SKIP
    """
    from loopml.tracking import TrackingClient
    from loopml.workspace import Workspace

    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput(f"model reference {ref!r}: expected NAME@VERSION, NAME@ALIAS, a "
                           "run id or a model file")
    if flavour is not None and flavour not in FLAVOURS:
        raise InvalidInput(f"flavour {flavour!r}: expected one of {', '.join(FLAVOURS)}")
    workspace = workspace or Workspace.from_env()
    path = Path(ref)
    if path.suffix in (".loopml", ".onnx", ".pkl", ".pickle", ".joblib") and path.is_file():
        return load_model_file(path, workspace=workspace, trust=trust)
    client = TrackingClient(*workspace.open(create=False))  # reading never creates one
    try:
        record = _registered(client.store, ref.strip())
        if record is not None:
            return load_version(record, client.artifacts, workspace=workspace,
                                flavour=flavour)
        if flavour == "onnx":
            raise InvalidInput(f"{ref!r} is a run, not a registered model: ONNX flavours belong "
                               "to model versions (loopml models export NAME@VERSION)")
        blob, origin = _run_model(client, ref.strip())
    finally:
        client.close()
    return _unpickle(blob, workspace=workspace, origin=origin, trust=False)


def load_version(record: ModelVersionRecord, artifacts: ArtifactStore, *,
                 workspace: Workspace, flavour: str | None = None) -> Any:
    """Return the model of a registry version in ``flavour`` (default: native if any)."""
    flavour = flavour or ("native" if record.native_sha256 else "onnx")
    if flavour == "native":
        if record.native_sha256 is None:
            raise NotFound(f"{record.ref} was imported as ONNX and has no native flavour: "
                           "load it with flavour='onnx'")
        # get_bytes checks the bytes hash to the address the registry recorded
        blob = artifacts.get_bytes(record.native_sha256)
        return _unpickle(blob, workspace=workspace, origin=f"model {record.ref}", trust=False)
    if record.onnx_sha256 is None:
        raise NotFound(f"{record.ref} has no ONNX flavour: export it with `loopml models export "
                       f"{record.ref} --format onnx`")
    from loopml.optimize.runtime import OnnxModel

    return OnnxModel.from_bytes(artifacts.get_bytes(record.onnx_sha256))


def load_model_file(path: Path, *, workspace: Workspace, trust: bool = False) -> Any:
    """Return the model in file ``path``: an envelope (verified), ONNX, or a trusted pickle."""
    blob = path.read_bytes()
    if path.suffix == ".onnx":
        from loopml.optimize.runtime import OnnxModel

        return OnnxModel.from_bytes(blob)
    return _unpickle(blob, workspace=workspace, origin=f"model file {path}", trust=trust)


def _registered(store: Store, ref: str) -> ModelVersionRecord | None:
    """Return the registry version ``ref`` names, or None when it names no model."""
    if "@" in ref:
        return store.models.resolve(ref)
    try:
        return store.models.get(ref)
    except NotFound:
        return None  # not a model name: a run id


def _run_model(client: Any, ref: str) -> tuple[bytes, str]:
    run_id = client.store.runs.resolve(ref)
    names = {a.name for a in client.store.artifacts.list(run_id)}
    if MODEL_ARTIFACT not in names and LEGACY_ARTIFACT in names:
        raise UntrustedArtifact(
            f"run {run_id[:12]} stored its model as an unsigned pickle ({LEGACY_ARTIFACT}, "
            "written by an earlier loopml); loopml loads only signed models: retrain it, or "
            "download it and load the file with trust=True if you made it")
    if MODEL_ARTIFACT not in names:
        raise NotFound(f"run {run_id[:12]} stored no model (training runs store "
                       f"{MODEL_ARTIFACT}; trial runs do not): pass the training run's id")
    return client.load_artifact(run_id, MODEL_ARTIFACT), f"model of run {run_id[:12]}"


def _unpickle(blob: bytes, *, workspace: Workspace, origin: str, trust: bool) -> Any:
    from loopml.registry.formats import MAGIC, read_header, read_model
    from loopml.registry.signing import signing_key

    if trust:
        import io

        import joblib

        payload = read_header(blob, origin=origin)[1] if blob.startswith(MAGIC) else blob
        return joblib.load(io.BytesIO(payload))
    read_header(blob, origin=origin)  # not a loopml envelope: refused before any key is read
    return read_model(blob, key=signing_key(workspace, create=False), origin=origin)
