"""The workspace secret that signs stored models (HMAC), so only their own pickles are loaded."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from loopml.errors import InvalidInput
from loopml.secret import read_or_create_secret

if TYPE_CHECKING:
    from loopml.workspace import Workspace

ENV = "LOOPML_SIGNING_KEY"
FILE = "signing.key"


def signing_key(workspace: Workspace, *, create: bool = True) -> bytes:
    """Return the secret that signs this workspace's models: LOOPML_SIGNING_KEY or a key file.

    Workspaces that share models (a PostgreSQL store read by several machines) must share
    the secret: copy ``signing.key`` or set the same LOOPML_SIGNING_KEY everywhere.
    """
    path = workspace.home / FILE
    secret = read_or_create_secret(path, env=os.environ.get(ENV), env_name=ENV, create=create)
    if secret is None:
        raise InvalidInput(f"no model signing key at {path}: models of this workspace cannot "
                           f"be verified; copy signing.key from the workspace that wrote them "
                           f"or set {ENV}")
    return secret
