"""Registered models: versions (artifacts by sha256, signature, lineage), aliases, alias history.

Versions are immutable once written except for their ONNX export (recorded once, when it
passed parity). Moving an alias is a compare-and-set: the caller says which version it
expects the alias to point at now (the one its gates ran against), and the move is refused
when another writer moved it meanwhile. Every attempt, moved or refused, is one row of
``alias_events``, written in the same transaction as the move.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopml.errors import ConstraintError, InvalidInput, NotFound
from loopml.store.runs import check_key
from loopml.store.schema import (
    AliasEvent,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    utcnow,
)
from loopml.store.upsert import insert_ignore

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopml.store.database import Store

_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
_FORBIDDEN_IN_NAME = ("@", "/")  # and control or format characters (escapes, bidi marks)


@dataclass(frozen=True)
class ModelVersionRecord:
    name: str
    version: int
    source: str  # train | run | import
    run_id: str | None
    task: str
    native_sha256: str | None
    native_size: int | None
    onnx_sha256: str | None
    onnx_size: int | None
    flavour: str  # native | onnx
    card_sha256: str | None
    card_html_sha256: str | None
    signature: dict[str, Any]
    lineage: dict[str, Any]
    metrics: dict[str, Any]
    export: dict[str, Any] | None
    created_by: str
    created_at: datetime
    id: int
    aliases: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        """The reference users type: ``name@version``."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class AliasEventRecord:
    name: str
    alias: str
    from_version: int | None
    to_version: int
    outcome: str  # moved | forced | refused
    actor: str
    reason: str | None
    report: dict[str, Any] | None
    at: datetime
    id: int


def check_model_name(name: object) -> str:
    """Return ``name`` if it can name a registered model.

    >>> check_model_name("credit")
    'credit'
    """
    text = check_key(name, what="model")
    bad = [c for c in _FORBIDDEN_IN_NAME if c in text] or \
        [c for c in text if unicodedata.category(c) in ("Cc", "Cf")]
    if bad or text != text.strip():
        raise InvalidInput(f"model name {text[:60]!r}: must not contain {bad[0]!r}" if bad else
                           f"model name {text[:60]!r}: no leading or trailing spaces")
    return text


def check_alias(alias: object) -> str:
    """Return ``alias`` if it can name an alias: a letter, then letters, digits, ``_ . -``.

    >>> check_alias("champion")
    'champion'
    """
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidInput(f"alias {str(alias)[:70]!r}: expected a letter followed by up to 63 "
                           "letters, digits, '_', '.' or '-' (e.g. champion, challenger)")
    if alias == "latest":
        raise InvalidInput("alias 'latest' is reserved: NAME@latest is always the newest "
                           "version; choose another name")
    return alias


def parse_model_ref(ref: object) -> tuple[str, str | None]:
    """Split ``NAME[@VERSION|@ALIAS]``; the part after the last ``@`` may be absent.

    >>> parse_model_ref("credit@champion"), parse_model_ref("credit")
    (('credit', 'champion'), ('credit', None))
    """
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput(f"model reference {ref!r}: expected NAME, NAME@VERSION or NAME@ALIAS")
    name, sep, rest = ref.strip().rpartition("@")
    if not sep:
        return check_model_name(ref.strip()), None
    if not rest:
        raise InvalidInput(f"model reference {ref!r}: nothing after '@' (expected a version "
                           "number or an alias such as champion)")
    return check_model_name(name), rest


def _record(row: Any, aliases: tuple[str, ...] = ()) -> ModelVersionRecord:
    return ModelVersionRecord(
        name=row.name, version=row.version, source=row.source, run_id=row.run_id,
        task=row.task, native_sha256=row.native_sha256, native_size=row.native_size,
        onnx_sha256=row.onnx_sha256, onnx_size=row.onnx_size, flavour=row.flavour,
        card_sha256=row.card_sha256, card_html_sha256=row.card_html_sha256,
        signature=json.loads(row.signature_json), lineage=json.loads(row.lineage_json),
        metrics=json.loads(row.metrics_json),
        export=json.loads(row.export_json) if row.export_json else None,
        created_by=row.created_by, created_at=row.created_at, id=row.id, aliases=aliases)


def _version_select() -> Any:
    from sqlalchemy import select

    return select(RegisteredModel.name, *[c for c in ModelVersion.__table__.columns
                                          if c.name != "model_id"]) \
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)


class Models:
    """Read and write the model registry in one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # --- versions ---------------------------------------------------------------------

    def add_version(self, name: str, *, source: str, run_id: str | None, task: str,
                    native_sha256: str | None, native_size: int | None,
                    signature: dict[str, Any], lineage: dict[str, Any],
                    metrics: dict[str, Any], created_by: str,
                    card_sha256: str | None = None, card_html_sha256: str | None = None,
                    onnx_sha256: str | None = None, onnx_size: int | None = None,
                    flavour: str = "native", export: dict[str, Any] | None = None
                    ) -> tuple[ModelVersionRecord, bool]:
        """Record the next version of ``name`` (created on first use); return it and if new.

        A run registered twice under one name returns its existing version. Safe under
        concurrent writers: the model's row is locked until commit, so two registrations
        never pick the same number.
        """
        from sqlalchemy import func, insert, select

        check_model_name(name)
        now = utcnow()
        with self._store.write() as conn:
            insert_ignore(conn, RegisteredModel.__table__, [{"name": name, "created_at": now}])
            model_id = conn.execute(select(RegisteredModel.id).where(
                RegisteredModel.name == name).with_for_update()).scalar_one()
            if run_id is not None:
                existing = conn.execute(_version_select().where(
                    ModelVersion.model_id == model_id, ModelVersion.run_id == run_id)
                ).one_or_none()
                if existing is not None:
                    return _record(existing), False
            number = (conn.execute(select(func.max(ModelVersion.version)).where(
                ModelVersion.model_id == model_id)).scalar_one() or 0) + 1
            conn.execute(insert(ModelVersion), {
                "model_id": model_id, "version": number, "source": source, "run_id": run_id,
                "task": task, "native_sha256": native_sha256, "native_size": native_size,
                "onnx_sha256": onnx_sha256, "onnx_size": onnx_size, "flavour": flavour,
                "card_sha256": card_sha256, "card_html_sha256": card_html_sha256,
                "signature_json": json.dumps(signature, sort_keys=True),
                "lineage_json": json.dumps(lineage, sort_keys=True, default=str),
                "metrics_json": json.dumps(metrics, sort_keys=True),
                "export_json": json.dumps(export, sort_keys=True) if export else None,
                "created_by": created_by[:250], "created_at": now,
            })
            row = conn.execute(_version_select().where(
                ModelVersion.model_id == model_id, ModelVersion.version == number)).one()
            return _record(row), True

    def set_export(self, name: str, version: int, *, export: dict[str, Any],
                   onnx_sha256: str | None, onnx_size: int | None, flavour: str,
                   card_html_sha256: str | None = None) -> ModelVersionRecord:
        """Record a version's ONNX export (parity, profile) and the flavour that serves it."""
        from sqlalchemy import update

        if flavour not in ("native", "onnx"):
            raise InvalidInput(f"flavour {flavour!r}: expected native or onnx")
        values: dict[str, Any] = {"export_json": json.dumps(export, sort_keys=True),
                                  "onnx_sha256": onnx_sha256, "onnx_size": onnx_size,
                                  "flavour": flavour}
        if card_html_sha256 is not None:
            values["card_html_sha256"] = card_html_sha256
        with self._store.write() as conn:
            record = self._get(conn, name, version)
            conn.execute(update(ModelVersion).where(ModelVersion.id == record.id).values(**values))
        return self.get(name, str(version))

    def set_card(self, name: str, version: int, *, card_sha256: str, card_html_sha256: str,
                 metrics: dict[str, Any]) -> None:
        """Give a version without a card (an imported model) its first card and metrics."""
        from sqlalchemy import update

        with self._store.write() as conn:
            record = self._get(conn, name, version)
            conn.execute(update(ModelVersion).where(ModelVersion.id == record.id,
                                                    ModelVersion.card_sha256.is_(None))
                         .values(card_sha256=card_sha256, card_html_sha256=card_html_sha256,
                                 metrics_json=json.dumps(metrics, sort_keys=True)))

    def set_card_html(self, name: str, version: int, card_html_sha256: str) -> None:
        """Point a version at a re-rendered HTML card (e.g. with its gate report added)."""
        from sqlalchemy import update

        with self._store.write() as conn:
            record = self._get(conn, name, version)
            conn.execute(update(ModelVersion).where(ModelVersion.id == record.id)
                         .values(card_html_sha256=card_html_sha256))

    def get(self, name: str, selector: str | None = None) -> ModelVersionRecord:
        """Return version ``selector`` of ``name``: a number, an alias, or None (the latest)."""
        with self._store.read() as conn:
            return self._resolve(conn, name, selector)

    def resolve(self, ref: str) -> ModelVersionRecord:
        """Return the version ``NAME``, ``NAME@VERSION`` or ``NAME@ALIAS`` names."""
        return self.get(*parse_model_ref(ref))

    def _model_id(self, conn: Connection, name: str) -> int:
        from sqlalchemy import select

        model_id = conn.execute(select(RegisteredModel.id).where(
            RegisteredModel.name == name)).scalar_one_or_none()
        if model_id is None:
            raise NotFound(f"no registered model named {name!r} (see `loopml models list`)")
        return model_id

    def _get(self, conn: Connection, name: str, version: int) -> ModelVersionRecord:
        model_id = self._model_id(conn, name)
        row = conn.execute(_version_select().where(ModelVersion.model_id == model_id,
                                                   ModelVersion.version == version)
                           ).one_or_none()
        if row is None:
            raise NotFound(f"model {name!r} has no version {version} "
                           f"(see `loopml models show {name}`)")
        return _record(row, self._aliases_of(conn, row.id))

    def _resolve(self, conn: Connection, name: str, selector: str | None
                 ) -> ModelVersionRecord:
        from sqlalchemy import func, select

        model_id = self._model_id(conn, name)
        if selector is None or selector == "latest":
            number = conn.execute(select(func.max(ModelVersion.version)).where(
                ModelVersion.model_id == model_id)).scalar_one()
            if number is None:
                raise NotFound(f"model {name!r} has no versions yet")
            return self._get(conn, name, number)
        if selector.isdigit():
            return self._get(conn, name, int(selector))
        check_alias(selector)
        version_id = conn.execute(select(ModelAlias.version_id).where(
            ModelAlias.model_id == model_id, ModelAlias.alias == selector)).scalar_one_or_none()
        if version_id is None:
            known = sorted(self._aliases(conn, model_id))
            raise NotFound(f"model {name!r} has no alias {selector!r} (aliases: "
                           f"{', '.join(known) or 'none yet'}; set one with `loopml models "
                           f"promote {name} VERSION --to {selector}`)")
        row = conn.execute(_version_select().where(ModelVersion.id == version_id)).one()
        return _record(row, self._aliases_of(conn, row.id))

    def _aliases(self, conn: Connection, model_id: int) -> dict[str, int]:
        from sqlalchemy import select

        rows = conn.execute(select(ModelAlias.alias, ModelVersion.version)
                            .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
                            .where(ModelAlias.model_id == model_id))
        return {alias: version for alias, version in rows}

    def _aliases_of(self, conn: Connection, version_id: int) -> tuple[str, ...]:
        from sqlalchemy import select

        return tuple(sorted(conn.execute(select(ModelAlias.alias).where(
            ModelAlias.version_id == version_id)).scalars()))

    def versions(self, name: str) -> list[ModelVersionRecord]:
        """Return every version of ``name``, newest first, each with its aliases."""
        with self._store.read() as conn:
            model_id = self._model_id(conn, name)
            aliases = self._aliases(conn, model_id)
            rows = conn.execute(_version_select().where(ModelVersion.model_id == model_id)
                                .order_by(ModelVersion.version.desc())).all()
        by_version: dict[int, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        return [_record(row, tuple(sorted(by_version.get(row.version, [])))) for row in rows]

    def aliases(self, name: str) -> dict[str, int]:
        """Return ``{alias: version}`` of model ``name``."""
        with self._store.read() as conn:
            return self._aliases(conn, self._model_id(conn, name))

    def list_models(self) -> list[dict[str, Any]]:
        """Return each model with its version count, latest version and aliases."""
        from sqlalchemy import func, select

        with self._store.read() as conn:
            rows = conn.execute(
                select(RegisteredModel.id, RegisteredModel.name, RegisteredModel.created_at,
                       func.count(ModelVersion.id), func.max(ModelVersion.version),
                       func.max(ModelVersion.created_at))
                .join(ModelVersion, ModelVersion.model_id == RegisteredModel.id, isouter=True)
                .group_by(RegisteredModel.id, RegisteredModel.name, RegisteredModel.created_at)
                .order_by(RegisteredModel.name)).all()
            return [{"name": name, "created_at": created, "versions": count,
                     "latest": latest, "updated_at": updated,
                     "aliases": self._aliases(conn, model_id)}
                    for model_id, name, created, count, latest, updated in rows]

    # --- aliases ----------------------------------------------------------------------

    def move_alias(self, name: str, alias: str, version: int, *, expected: int | None,
                   actor: str, reason: str | None, outcome: str,
                   report: dict[str, Any] | None = None) -> AliasEventRecord:
        """Point ``alias`` at ``version`` if it still points at ``expected``; record the attempt.

        ``expected`` is the version the caller's gates compared against (None: the alias
        must not exist yet). When another writer moved the alias meanwhile nothing moves,
        the attempt is recorded as refused, and ConstraintError says so. ``outcome`` is
        ``moved`` or ``forced`` for a move, ``refused`` to record a refusal only.
        """
        from sqlalchemy import delete, insert, select

        check_alias(alias)
        if outcome not in ("moved", "forced", "refused"):
            raise InvalidInput(f"outcome {outcome!r}: expected moved, forced or refused")
        conflict = False
        with self._store.write() as conn:
            model_id = conn.execute(select(RegisteredModel.id).where(
                RegisteredModel.name == name).with_for_update()).scalar_one_or_none()
            if model_id is None:
                raise NotFound(f"no registered model named {name!r} (see `loopml models list`)")
            target = self._get(conn, name, version)
            current = self._aliases(conn, model_id).get(alias)
            if outcome != "refused" and current != expected:
                conflict, outcome = True, "refused"
                reason = (f"{alias} moved from {_v(expected)} to {_v(current)} while the gates "
                          f"ran; nothing moved" + (f" (reason given: {reason})" if reason else ""))
            if outcome in ("moved", "forced"):
                conn.execute(delete(ModelAlias).where(ModelAlias.model_id == model_id,
                                                      ModelAlias.alias == alias))
                conn.execute(insert(ModelAlias), {"model_id": model_id, "alias": alias,
                                                  "version_id": target.id,
                                                  "moved_at": utcnow()})
            event = {"model_id": model_id, "alias": alias, "from_version": current,
                     "to_version": version, "outcome": outcome, "actor": actor[:250],
                     "reason": reason, "at": utcnow(),
                     "report_json": json.dumps(report, sort_keys=True) if report else None}
            event_id = conn.execute(insert(AliasEvent).returning(AliasEvent.id), event
                                    ).scalar_one()
        if conflict:
            raise ConstraintError(f"{name}@{alias} was moved to {_v(current)} by someone else "
                                  f"while the gates for version {version} ran against "
                                  f"{_v(expected)}; nothing moved: run promote again")
        return AliasEventRecord(name=name, alias=alias, from_version=current,
                                to_version=version, outcome=outcome, actor=event["actor"],
                                reason=reason, report=report, at=event["at"], id=event_id)

    def history(self, name: str, alias: str | None = None) -> list[AliasEventRecord]:
        """Return the alias events of ``name`` (of one alias if given), oldest first."""
        from sqlalchemy import select

        with self._store.read() as conn:
            model_id = self._model_id(conn, name)
            query = select(AliasEvent).where(AliasEvent.model_id == model_id)
            if alias is not None:
                query = query.where(AliasEvent.alias == check_alias(alias))
            rows = conn.execute(query.order_by(AliasEvent.id)).all()
        return [AliasEventRecord(
            name=name, alias=row.alias, from_version=row.from_version,
            to_version=row.to_version, outcome=row.outcome, actor=row.actor, reason=row.reason,
            report=json.loads(row.report_json) if row.report_json else None, at=row.at,
            id=row.id) for row in rows]


def _v(version: int | None) -> str:
    return "nowhere" if version is None else f"version {version}"

