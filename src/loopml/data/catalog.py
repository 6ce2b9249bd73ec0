"""The dataset catalog: add versions, read them back, validate, split, and record lineage."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.data import contract as contracts
from loopml.data.sources import Source
from loopml.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from loopml.artifacts import ArtifactStore
    from loopml.data.contract import Contract
    from loopml.data.pii import PiiFinding
    from loopml.data.snapshot import Progress
    from loopml.data.splits import SplitSpec
    from loopml.data.validate import ValidationReport
    from loopml.store import Store
    from loopml.store.datasets import SplitRecord, VersionRecord
    from loopml.workspace import Workspace


@dataclass(frozen=True)
class AddResult:
    version: VersionRecord
    created: bool
    pii_found: list[PiiFinding] = field(default_factory=list)
    contract_created: bool = False


PII_KEY_MIN_BYTES = 16
_DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_dataset_name(name: object) -> str:
    """Return ``name`` if it is a usable dataset name: letters, digits, '.', '_', '-'.

    >>> check_dataset_name("credit-2024")
    'credit-2024'
    """
    if not isinstance(name, str) or not _DATASET_NAME.fullmatch(name):
        raise InvalidInput(f"dataset name {name!r} is not allowed: use letters, digits, '.', "
                           "'_' and '-' (at most 128, starting with a letter or digit)")
    return name


def workspace_pii_key(workspace: Workspace) -> bytes:
    """Return the secret that keys PII hashing: LOOPML_PII_KEY, or a file in the workspace.

    Hashing with a secret key (HMAC) keeps hashed phone numbers or ids from being
    reversed by hashing every possible value. Share the key between machines that
    must produce the same hashes.
    """
    from loopml.secret import read_or_create_secret

    key = read_or_create_secret(workspace.home / "pii.key", env=os.environ.get("LOOPML_PII_KEY"),
                                env_name="LOOPML_PII_KEY", min_length=PII_KEY_MIN_BYTES)
    return key or b""  # never None: a missing file is created


class Catalog:
    """Datasets of one workspace: a metadata store and an artifact store."""

    def __init__(self, store: Store, artifacts: ArtifactStore, *, pii_key: bytes = b"") -> None:
        self.store = store
        self.artifacts = artifacts
        self.pii_key = pii_key

    @classmethod
    def from_workspace(cls, workspace: Workspace) -> Catalog:
        store, artifacts = workspace.open()
        return cls(store, artifacts, pii_key=workspace_pii_key(workspace))

    # -- adding ----------------------------------------------------------------------------
    def add(
        self,
        source: Source,
        *,
        name: str,
        project: str = "default",
        target: str | None = None,
        pii: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> AddResult:
        """Snapshot ``source`` as a version of dataset ``name``; the same content is one version.

        Nothing is recorded unless every step succeeds: reading, checks, profile, contract.
        """
        from loopml.data import pii as pii_module
        from loopml.data import report
        from loopml.data.profile import profile_parquet
        from loopml.data.snapshot import write_snapshot

        check_dataset_name(name)
        with tempfile.TemporaryDirectory(prefix=f"loopml-ingest-{os.getpid()}-") as tmp:
            snap = write_snapshot(source, Path(tmp, "snapshot.parquet"), pii_policies=pii,
                                  pii_key=self.pii_key, progress=progress)
            if target is not None and target not in snap.schema.names:
                raise InvalidInput(f"{source.location}: target column {target!r} is not in the "
                                   f"data (columns: {', '.join(snap.schema.names)})")
            existing = self._find(project, name, snap.content_hash)
            if existing is not None:
                return AddResult(existing, created=False, pii_found=snap.pii_found)
            # Detected and declared personal columns (not dropped ones): their values are
            # masked in the profile, report and contract.
            pii_kinds = {column: kind for column, kind in pii_module.sensitive_columns(
                {f.column: f.kind for f in snap.pii_found}, snap.pii_applied).items()
                if snap.pii_applied.get(column) != "drop" and column in snap.schema.names}
            profile = profile_parquet(snap.path, snap.schema, pii=pii_kinds)
            has_contract = self.store.datasets.contract(project, name) is not None
            contract_yaml = None
            if not has_contract:
                inferred = contracts.infer(name, snap.schema, profile, target=target,
                                           pii=pii_kinds)
                contract_yaml = contracts.to_yaml(
                    inferred, origin=f"inferred from {source.describe()}"
                )
            html = report.render(
                f"Dataset {name} ({project})", profile,
                meta={"rows": snap.num_rows, "columns": len(snap.schema),
                      "version": snap.content_hash[:12], "source": source.describe()},
                pii=pii_kinds,
            )
            snapshot_blob = self.artifacts.put_file(snap.path)
            profile_blob = self.artifacts.put_bytes(json.dumps(profile).encode())
            report_blob = self.artifacts.put_bytes(html.encode())
            version, created = self.store.datasets.add_version(
                project=project, name=name, content_hash=snap.content_hash,
                num_rows=snap.num_rows, num_columns=len(snap.schema),
                schema=[{"name": f.name, "type": str(f.type)} for f in snap.schema],
                source=source.describe(), snapshot_sha256=snapshot_blob.sha256,
                snapshot_size=snapshot_blob.size, profile_sha256=profile_blob.sha256,
                report_sha256=report_blob.sha256,
                pii={"found": {f.column: f.kind for f in snap.pii_found},
                     "applied": snap.pii_applied, "target": target},
                contract_yaml=contract_yaml,
            )
        # Of two first versions added at once, only one contract is stored: say whose.
        contract_created = created and contract_yaml is not None and \
            self.store.datasets.contract(project, name) == contract_yaml
        return AddResult(version, created=created, pii_found=snap.pii_found,
                         contract_created=contract_created)

    def _find(self, project: str, name: str, content_hash: str) -> VersionRecord | None:
        for version in self.store.datasets.list_versions(name, project=project):
            if version.content_hash == content_hash:
                return version
        return None

    # -- reading ---------------------------------------------------------------------------
    def get(self, ref: str, *, project: str | None = None) -> VersionRecord:
        """Return the version ``NAME``, ``NAME@SEQ`` or ``NAME@HASHPREFIX``."""
        return self.store.datasets.get_version(ref, project=project)

    def list(self, name: str | None = None, *, project: str | None = None
             ) -> list[VersionRecord]:
        return self.store.datasets.list_versions(name, project=project)

    def profile(self, version: VersionRecord) -> dict[str, Any]:
        return json.loads(self.artifacts.get_bytes(version.profile_sha256))

    def report_html(self, version: VersionRecord) -> str:
        if version.report_sha256 is None:
            raise NotFound(f"dataset {version.ref} has no stored report")
        return self.artifacts.get_bytes(version.report_sha256).decode()

    def write_report(self, version: VersionRecord, folder: Path | None = None, *,
                     path: Path | None = None) -> Path:
        """Write a version's report under ``folder``/PROJECT/ (or at ``path``); return its path.

        The project is part of the path, so dataset ``shared`` of two projects gets two
        files. The file is replaced whole (temp file, then rename), never half-written; a
        link at ``path`` is replaced, never written through.
        """
        from loopml.data.report import report_filename

        if path is None:
            path = Path(folder or ".") / report_filename(version.project, version.dataset,
                                                          version.seq)
            path.parent.mkdir(parents=True, exist_ok=True)
        elif path.is_dir():
            raise InvalidInput(f"{path} is a folder: give a file name, e.g. {path}/report.html")
        elif not path.parent.is_dir():
            raise InvalidInput(f"{path}: folder {path.parent} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.report_html(version))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def load(self, ref: str | VersionRecord, *, project: str | None = None) -> pd.DataFrame:
        """Return a version's data as a pandas DataFrame (sha256-checked on the way)."""
        import pandas as pd

        version = ref if not isinstance(ref, str) else self.get(ref, project=project)
        with tempfile.TemporaryDirectory(prefix=f"loopml-load-{os.getpid()}-") as tmp:
            path = self.artifacts.get_to_path(version.snapshot_sha256, Path(tmp, "data.parquet"))
            return pd.read_parquet(path)

    # -- contracts -------------------------------------------------------------------------
    def contract_yaml(self, ref: str, *, project: str | None = None) -> str:
        version = self.get(ref, project=project)
        text = self.store.datasets.contract(version.project, version.dataset)
        if text is None:
            raise NotFound(f"dataset {version.dataset!r} has no contract")
        return text

    def contract(self, ref: str, *, project: str | None = None) -> Contract:
        return contracts.from_yaml(self.contract_yaml(ref, project=project),
                                   origin=f"contract of {ref}")

    def set_contract(self, ref: str, text: str, *, origin: str, project: str | None = None
                     ) -> Contract:
        """Check and store an edited contract for a dataset."""
        version = self.get(ref, project=project)
        parsed = contracts.from_yaml(text, origin=origin)
        if parsed.dataset != version.dataset:
            raise InvalidInput(f"{origin}: the contract is for dataset {parsed.dataset!r}, "
                               f"not {version.dataset!r}")
        # A contract may name columns this version lacks: later versions may add them.
        self.store.datasets.set_contract(version.project, version.dataset, text)
        return parsed

    def validate(self, source: Source, *, against: str, contract: Contract | None = None,
                 project: str | None = None) -> ValidationReport:
        """Check ``source`` against a dataset's contract (or the given one)."""
        from loopml.data.validate import validate

        return validate(source, contract or self.contract(against, project=project))

    # -- splits and lineage ----------------------------------------------------------------
    def split(self, ref: str, spec: SplitSpec, *, project: str | None = None,
              frame: pd.DataFrame | None = None) -> SplitRecord:
        """Split a version reproducibly and record the split with it.

        ``frame`` is the version's data when the caller has it loaded already.
        """
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        from loopml.data.splits import assign, counts

        version = self.get(ref, project=project)
        spec.check([c["name"] for c in version.schema])
        if spec.column and frame is None:
            frame = self.load(version)
        labels = assign(frame[[spec.column]] if spec.column else None, version.num_rows, spec)
        buffer = io.BytesIO()
        pq.write_table(pa.table({"split": labels}), buffer)
        blob = self.artifacts.put_bytes(buffer.getvalue())
        return self.store.datasets.record_split(
            version.id, spec=asdict(spec), spec_key=spec.key(), counts=counts(labels),
            assignment_sha256=blob.sha256,
        )

    def load_split(self, ref: str, spec: SplitSpec, *, project: str | None = None,
                   frame: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
        """Return {train, validation, test} frames of a version (splitting it if needed).

        The snapshot is read once; pass ``frame`` if it is loaded already.
        """
        import io

        import pyarrow.parquet as pq

        from loopml.data.splits import NAMES

        version = self.get(ref, project=project)
        frame = self.load(version) if frame is None else frame
        recorded = {s.spec_key: s for s in self.store.datasets.splits(version.id)}
        record = recorded.get(spec.key()) or self.split(ref, spec, project=project, frame=frame)
        labels = pq.read_table(io.BytesIO(
            self.artifacts.get_bytes(record.assignment_sha256))).column("split").to_numpy()
        return {name: frame[labels == i].reset_index(drop=True) for i, name in enumerate(NAMES)}

    def log_input(self, run_id: str, ref: str, *, role: str = "train",
                  project: str | None = None) -> VersionRecord:
        """Record that run ``run_id`` used dataset version ``ref`` (lineage)."""
        version = self.get(ref, project=project)
        self.store.datasets.record_input(self.store.runs.resolve(run_id), version.id, role=role)
        return version

    def users(self, version: VersionRecord) -> list[tuple[str, str, str]]:
        """Return (run id, run name, role) of the runs that used a version."""
        return self.store.datasets.users(version.id)
