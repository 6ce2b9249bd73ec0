"""`loopml.load_model`: a stored model back as a Python object, verified before unpickling."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput, NotFound, UntrustedArtifact

if TYPE_CHECKING:
    from loopml.workspace import Workspace

MODEL_ARTIFACT = "model.loopml"
LEGACY_ARTIFACT = "model.joblib"  # unsigned, from before the signed envelope: never loaded


def load_model(ref: str, *, workspace: Workspace | None = None) -> Any:
    """Return the model stored by a training run, ready for ``predict``/``predict_proba``.

    ``ref`` is a run id or a unique prefix of one (``loopml runs list`` shows them);
    ``name@version`` and ``name@alias`` come with the model registry. The artifact's
    sha256 is checked on read and its signature (HMAC with the workspace secret) before
    it is unpickled.

    Examples
    --------
    >>> model = loopml.load_model("3f2a")          # doctest: +SKIP
    >>> model.predict(frame.head())                # doctest: +SKIP
    """
    from loopml.registry.formats import read_header, read_model
    from loopml.registry.signing import signing_key
    from loopml.tracking import TrackingClient
    from loopml.workspace import Workspace

    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput(f"model reference {ref!r}: expected a run id (or a unique prefix)")
    if "@" in ref:
        raise InvalidInput(f"model reference {ref!r}: named model versions are not available "
                           "yet; pass the id of the training run (loopml runs list)")
    workspace = workspace or Workspace.from_env()
    client = TrackingClient(*workspace.open(create=False))  # reading never creates one
    try:
        run_id = client.store.runs.resolve(ref.strip())
        names = {a.name for a in client.store.artifacts.list(run_id)}
        if MODEL_ARTIFACT not in names and LEGACY_ARTIFACT in names:
            raise UntrustedArtifact(
                f"run {run_id[:12]} stored its model as an unsigned pickle ({LEGACY_ARTIFACT}, "
                "written by an earlier loopml); loopml loads only signed models: retrain it")
        if MODEL_ARTIFACT not in names:
            raise NotFound(f"run {run_id[:12]} stored no model (training runs store "
                           f"{MODEL_ARTIFACT}; trial runs do not): pass the training run's id")
        blob = client.load_artifact(run_id, MODEL_ARTIFACT)
    finally:
        client.close()
    origin = f"model of run {run_id[:12]}"
    read_header(blob, origin=origin)  # not a loopml envelope: refused before any key is read
    return read_model(blob, key=signing_key(workspace, create=False), origin=origin)
