"""The registry as one object: what `loopml models …` and the Python API call.

It holds the open stores of one workspace and turns each verb (register, show, promote,
export, bundle, import, evaluate) into calls of the modules that do the work. It keeps no
state between calls beyond the connections; :meth:`close` releases them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.data import Catalog
    from loopml.store.models import AliasEventRecord, ModelVersionRecord
    from loopml.tracking import TrackingClient
    from loopml.workspace import Workspace


class Registry:
    """The model registry of a workspace.

    Examples
    --------
    >>> registry = Registry.open(Workspace.from_env())     # doctest: +SKIP
    >>> registry.get("credit@champion").version             # doctest: +SKIP
    3
    """

    def __init__(self, workspace: Workspace, client: TrackingClient, catalog: Catalog) -> None:
        self.workspace = workspace
        self.client = client
        self.catalog = catalog

    @classmethod
    def open(cls, workspace: Workspace, *, create: bool = False) -> Registry:
        """Connect to ``workspace``'s stores (reading never creates a workspace)."""
        from loopml.data import Catalog
        from loopml.tracking import TrackingClient

        client = TrackingClient(*workspace.open(create=create))
        # The registry reads datasets (contracts, test rows), never adds one: no PII key.
        return cls(workspace, client, Catalog(client.store, client.artifacts))

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def models(self) -> Any:
        return self.client.store.models

    # --- reading ----------------------------------------------------------------------

    def get(self, ref: str) -> ModelVersionRecord:
        """Return the version ``NAME``, ``NAME@VERSION`` or ``NAME@ALIAS`` names."""
        return self.models.resolve(ref)

    def list(self) -> list[dict[str, Any]]:
        return self.models.list_models()

    def versions(self, name: str) -> list[ModelVersionRecord]:
        return self.models.versions(name)

    def history(self, name: str, alias: str | None = None) -> list[AliasEventRecord]:
        return self.models.history(name, alias)

    def card(self, record: ModelVersionRecord) -> dict[str, Any] | None:
        """Return the version's model card (JSON), or None when it has none."""
        import json

        if record.card_sha256 is None:
            return None
        return json.loads(self.client.artifacts.get_bytes(record.card_sha256))

    def load(self, record: ModelVersionRecord, *, flavour: str | None = None) -> Any:
        """Return the version's model object, verified (sha256, then signature)."""
        from loopml.registry.load import load_version

        return load_version(record, self.client.artifacts, workspace=self.workspace,
                            flavour=flavour)

    # --- writing ----------------------------------------------------------------------

    def register(self, run_id: str, *, name: str) -> tuple[ModelVersionRecord, bool]:
        """Register training run ``run_id`` as the next version of ``name``."""
        from loopml.registry.signing import signing_key
        from loopml.registry.versions import register_run

        return register_run(self.client, self.catalog, run_id, name=name,
                            key=signing_key(self.workspace, create=False))
