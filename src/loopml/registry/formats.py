"""The signed pickle envelope: how a Python model object is stored in the artifact store.

A pickle runs code when it is loaded, so loopml never unpickles bytes it did not write:
every stored model carries an HMAC-SHA256 signature made with the workspace secret when
it was written, and it is verified before a single byte is unpickled. The envelope also
names the loopml version and the format version that wrote it, so a model from an
incompatible loopml is a clear error instead of an unpickling traceback.

Layout: ``MAGIC``, one line of JSON (the header), then the joblib payload::

    LOOPML-MODEL
    {"format": 1, "loopml": "0.1.0", "python": "3.11", "class": "...", "mac": "<hex>"}
    <payload bytes>

The signature covers the header (without ``mac``) and the payload.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import sys
from typing import Any

from loopml.errors import InvalidInput, UntrustedArtifact

MAGIC = b"LOOPML-MODEL\n"
_HEX64 = re.compile(r"[0-9a-f]{64}")
FORMAT = 1


def _mac(key: bytes, header: dict[str, Any], payload: bytes) -> str:
    signed = json.dumps({k: v for k, v in header.items() if k != "mac"}, sort_keys=True)
    return hmac.new(key, signed.encode() + b"\n" + payload, hashlib.sha256).hexdigest()


def dump_model(model: object, *, key: bytes) -> bytes:
    """Return ``model`` pickled in a signed envelope.

    >>> blob = dump_model({"a": 1}, key=b"k" * 32)
    >>> read_model(blob, key=b"k" * 32)
    {'a': 1}
    """
    import joblib

    from loopml import __version__

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    payload = buffer.getvalue()
    header: dict[str, Any] = {
        "format": FORMAT, "loopml": __version__,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
    }
    header["mac"] = _mac(key, header, payload)
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def read_header(blob: bytes, *, origin: str = "model") -> tuple[dict[str, Any], bytes]:
    """Return the envelope's header and payload, without verifying or unpickling anything."""
    if not blob.startswith(MAGIC):
        raise UntrustedArtifact(f"{origin} is not a model written by loopml (no signed "
                                "envelope); loopml does not unpickle unsigned bytes")
    line, sep, payload = blob[len(MAGIC):].partition(b"\n")
    try:
        header = json.loads(line) if sep else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or not _HEX64.fullmatch(str(header.get("mac"))):
        raise UntrustedArtifact(f"{origin}: the model envelope's header is damaged")
    return header, payload


def read_model(blob: bytes, *, key: bytes, origin: str = "model") -> Any:
    """Return the model in a signed envelope, after checking its signature and format.

    Raises :class:`~loopml.errors.UntrustedArtifact` when the signature does not verify
    (written with another workspace secret, or altered) and
    :class:`~loopml.errors.InvalidInput` when another loopml format wrote it.
    """
    header, payload = read_header(blob, origin=origin)
    if not hmac.compare_digest(_mac(key, header, payload), header["mac"]):
        raise UntrustedArtifact(
            f"{origin}: the signature does not verify: the model was altered or written by "
            "another workspace (its secret signs models; copy signing.key from that "
            "workspace or set LOOPML_SIGNING_KEY to the same secret)")
    if header.get("format") != FORMAT:
        raise InvalidInput(
            f"{origin} was written by loopml {header.get('loopml')} in model format "
            f"{header.get('format')}; this loopml ({_version()}) reads format {FORMAT}: "
            f"retrain it or load it with loopml {header.get('loopml')}")
    import joblib

    try:
        return joblib.load(io.BytesIO(payload))
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        raise InvalidInput(
            f"{origin} ({header.get('class')}, written by loopml {header.get('loopml')} on "
            f"Python {header.get('python')}) cannot be loaded here: {type(exc).__name__}: "
            f"{exc}; install the versions it was trained with, or retrain") from exc


def _version() -> str:
    from loopml import __version__

    return __version__
