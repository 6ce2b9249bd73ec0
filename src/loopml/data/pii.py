"""Find columns that look like personal data, and apply a policy (drop, hash, keep) to them.

Detection looks at the column name and at a sample of values: e-mail addresses, phone
numbers, payment card numbers (with a valid Luhn checksum), and national-id patterns
(US SSN, UK National Insurance number). A column is flagged when most sampled values
match, so an ordinary numeric or categorical column is not.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

POLICIES = ("drop", "hash", "keep")
SAMPLE = 500
SHARE = 0.8  # share of sampled values that must match a value pattern

_NAME_PATTERNS = {
    "email": r"e[-_]?mail",
    "phone": r"phone|mobile|cell(_|$)|tel(ephone)?($|_)",
    "national_id": r"ssn|social[-_]?security|national[-_]?id|nino|passport|tax[-_]?id",
    "card_number": r"card[-_]?(number|no|num)|credit[-_]?card|\bpan\b|iban",
    "name": r"(first|last|full|sur|given)[-_]?name",
    "address": r"street|address|postcode|zip[-_]?code",
    "birth_date": r"birth|dob",
}
# A column named like these is personal data only if it holds text: `years_at_address` or
# `name_length` are numbers about a person, not the address or the name itself.
_TEXT_ONLY_KINDS = ("email", "name", "address")
_VALUE_PATTERNS = {
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    # US social security number, UK National Insurance number
    "national_id": re.compile(
        r"\d{3}-\d{2}-\d{4}|[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]"
    ),
    "phone": re.compile(r"\+?\(?\d{1,4}\)?([ .-]?\(?\d{2,4}\)?){2,5}"),
}


@dataclass(frozen=True)
class PiiFinding:
    column: str
    kind: str
    reason: str  # "name" or "values"


def luhn_valid(digits: str) -> bool:
    """Return whether a digit string passes the Luhn checksum of payment cards.

    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    """
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_like(value: str) -> bool:
    digits = re.sub(r"[ -]", "", value)
    return digits.isdigit() and 13 <= len(digits) <= 19 and luhn_valid(digits)


def detect(batch: pa.RecordBatch) -> list[PiiFinding]:
    """Return the columns of ``batch`` that look like personal data."""
    import pyarrow as pa

    findings = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        lowered = field.name.lower()
        is_text = pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        by_name = next((kind for kind, pattern in _NAME_PATTERNS.items()
                        if re.search(pattern, lowered)
                        and (is_text or kind not in _TEXT_ONLY_KINDS)), None)
        if by_name:
            findings.append(PiiFinding(field.name, by_name, "name"))
            continue
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
                or pa.types.is_integer(field.type)):
            continue
        sample = [str(v) for v in column.drop_null().slice(0, SAMPLE).to_pylist()]
        if not sample:
            continue
        kind = _kind_of_values(sample, numeric=pa.types.is_integer(field.type))
        if kind:
            findings.append(PiiFinding(field.name, kind, "values"))
    return findings


def _matches(kind: str, value: str) -> bool:
    text = value.strip()
    if kind == "card_number":
        return _card_like(text)
    if _VALUE_PATTERNS[kind].fullmatch(text) is None:
        return False
    if kind == "phone":  # a phone number has enough digits and some punctuation or a '+'
        return sum(c.isdigit() for c in text) >= 9 and not text.isdigit()
    return True


def _kind_of_values(sample: list[str], *, numeric: bool) -> str | None:
    # Plain integers are only ever flagged as card numbers (the Luhn check makes that safe).
    kinds = ("card_number",) if numeric else ("card_number", *_VALUE_PATTERNS)
    for kind in kinds:
        if sum(_matches(kind, v) for v in sample) >= SHARE * len(sample):
            return kind
    return None


def check_policies(policies: Mapping[str, str], columns: list[str]) -> dict[str, str]:
    """Return ``policies`` after checking every column exists and every policy is known."""
    for column, policy in policies.items():
        if policy not in POLICIES:
            raise InvalidInput(f"pii policy for column {column!r} is {policy!r}; use one of "
                               f"{', '.join(POLICIES)}")
        if column not in columns:
            raise InvalidInput(f"pii policy names column {column!r}, which the data does not "
                               f"have (columns: {', '.join(columns)})")
    return dict(policies)


def apply(batch: pa.RecordBatch, policies: Mapping[str, str], *, key: bytes) -> pa.RecordBatch:
    """Drop or hash the columns the policies name; hashing is HMAC-SHA256 with ``key``."""
    import pyarrow as pa

    if not any(p != "keep" for p in policies.values()):
        return batch
    if "hash" in policies.values() and not key:
        raise InvalidInput("hashing PII needs a secret key (LOOPML_PII_KEY or the workspace's "
                           "pii.key); without one, hashed values could be reversed")
    names, arrays = [], []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        policy = policies.get(field.name, "keep")
        if policy == "drop":
            continue
        if policy == "hash":
            column = pa.array(
                [None if v is None else hmac.new(key, str(v).encode(), hashlib.sha256).hexdigest()
                 for v in column.to_pylist()],
                type=pa.string(),
            )
        names.append(field.name)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def mask(value: object, kind: str) -> str:
    """Return a value of a personal-data column in a form safe to show in messages and reports.

    What stays visible depends on the kind: the start of a phone number (a country or area
    code), the last two digits of an id or a card, the first letter of a name, an address or
    an e-mail; never more than a fifth of a long value, nothing of a short one.

    >>> mask("+1 555-867-5309", "phone")
    "'+1 5…09' (phone, masked)"
    >>> mask("Ada Lovelace", "name"), mask("123-45-6789", "national_id")
    ("'A…' (name, masked)", "'…89' (national_id, masked)")
    >>> mask("ab", "name")
    "'…' (name, masked)"
    """
    text = str(value)
    if len(text) < 6:
        shown = "…"
    elif kind == "phone" and len(text) >= 10:
        shown = f"{text[:4]}…{text[-2:]}"
    elif kind in ("national_id", "card_number", "phone", "birth_date"):
        shown = f"…{text[-2:]}"
    else:
        shown = f"{text[:1]}…"
    return f"'{shown}' ({kind}, masked)"


def sensitive_columns(found: Mapping[str, str], policies: Mapping[str, str]) -> dict[str, str]:
    """Return {column: kind} of every column whose values must be masked when shown.

    Detected columns and columns the user gave a policy count, whatever the policy: even
    a column stored hashed arrives raw in the next file to validate.

    >>> sensitive_columns({"email": "email"}, {"phone": "hash", "ref": "drop"})
    {'email': 'email', 'phone': 'phone', 'ref': 'personal data'}
    """
    out = dict(found)
    for column in policies:
        out.setdefault(column, _kind_from_name(column) or "personal data")
    return out


def unapproved_columns(info: Mapping[str, object]) -> dict[str, str]:
    """Return {column: kind} of detected PII columns the user gave no policy (from a version).

    ``info`` is a dataset version's ``pii`` record: ``{"found": …, "applied": …}``. Such
    columns are kept raw in the snapshot but never become model features on their own.

    >>> unapproved_columns({"found": {"email": "email", "phone": "phone"},
    ...                     "applied": {"phone": "keep"}})
    {'email': 'email'}
    """
    found = dict(info.get("found") or {})  # type: ignore[call-overload]
    applied = dict(info.get("applied") or {})  # type: ignore[call-overload]
    return {column: kind for column, kind in found.items() if column not in applied}


def _kind_from_name(column: str) -> str | None:
    lowered = column.lower()
    return next((kind for kind, pattern in _NAME_PATTERNS.items()
                 if re.search(pattern, lowered)), None)


_PLAIN_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def looks_personal(value: object) -> str | None:
    """Return the kind of personal data one value looks like (e-mail, phone …), or None.

    Plain numbers are numbers, unless they are long enough to be a valid card number.

    >>> looks_personal("jane@example.com"), looks_personal("1234567.89"), looks_personal("n/a")
    ('email', None, None)
    """
    text = str(value).strip()
    if _PLAIN_NUMBER.fullmatch(text):
        return "card_number" if _card_like(text) else None
    return next((kind for kind in ("card_number", *_VALUE_PATTERNS) if _matches(kind, text)),
                None)


def shown(value: object, kind: str | None = None) -> str:
    """Return a value as a message may quote it: masked if its column is personal or it looks so.

    >>> shown("n/a"), shown("+1 555-867-5309"), shown("Ada Lovelace", "name")
    ("'n/a'", "'+1 5…09' (phone, masked)", "'A…' (name, masked)")
    """
    kind = kind or looks_personal(value)
    return mask(value, kind) if kind else repr(value)
