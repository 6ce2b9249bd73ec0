"""The one exception tree of loopml.

Every error a user can cause is a :class:`LoopmlError` whose message says what was
wrong, what was expected and how to fix it. The CLI prints the message as one line
and exits with code 2; the server maps the classes to HTTP codes. Nothing below
``cli.py``/``serve/`` knows about exit or status codes.

    LoopmlError
    ├── InvalidInput        a value, file, column or field the user gave is not usable
    ├── NotFound            a run, project, artifact … that does not exist
    ├── AlreadyExists       a name that must be unique is taken
    ├── ContractViolation   data that breaks its data contract
    ├── GateFailed          a model that does not pass a promotion gate
    ├── ExportFailed        a model that cannot be converted (to ONNX): names the step and why
    └── StoreError          the metadata or artifact store cannot do what was asked
        ├── StoreUnavailable       the store URI cannot be opened
        ├── SchemaMismatch         the workspace schema is older or newer than this loopml
        ├── ConstraintError        a write broke a constraint (e.g. its run was deleted)
        ├── ConflictError          a compare-and-set lost to another writer (run it again)
        ├── ArtifactCorrupted      stored bytes do not match their sha256 address
        └── UntrustedArtifact      a pickle whose signature does not verify: never loaded
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ArtifactCorrupted",
    "ConflictError",
    "ConstraintError",
    "ContractViolation",
    "ExportFailed",
    "GateFailed",
    "InvalidInput",
    "LoopmlError",
    "NotFound",
    "SchemaMismatch",
    "StoreError",
    "StoreUnavailable",
    "UntrustedArtifact",
]


class LoopmlError(Exception):
    """Base of every error loopml raises on purpose."""


class InvalidInput(LoopmlError, ValueError):
    """A value the user supplied cannot be used as given."""


class NotFound(LoopmlError, LookupError):
    """The thing asked for does not exist."""


class AlreadyExists(LoopmlError):
    """A unique name is already taken."""


class ContractViolation(LoopmlError):
    """Data does not satisfy its data contract."""


class GateFailed(LoopmlError):
    """A model did not pass a promotion gate."""


class ExportFailed(LoopmlError):
    """A model cannot be converted to another format; the message names the step and why."""


class StoreError(LoopmlError):
    """The metadata store or the artifact store failed."""


class StoreUnavailable(StoreError):
    """The store URI cannot be opened or reached."""


class SchemaMismatch(StoreError):
    """The workspace was written by an older or newer schema than this loopml knows."""


class ConstraintError(StoreError):
    """A write broke a database constraint: retrying the same write cannot succeed."""


class ConflictError(StoreError):
    """Another process moved the same record first (a monitor's cursor): nothing was written."""


class ArtifactCorrupted(StoreError):
    """The bytes stored under a sha256 address no longer hash to that address."""


class UntrustedArtifact(StoreError):
    """Stored bytes that would run code when loaded (a pickle) carry no valid signature."""
