"""A throwaway PostgreSQL server for the test suite, from the machine's own binaries.

``.ci/run`` installs Debian's ``postgresql``; this module finds ``initdb``/``pg_ctl``,
creates a cluster in a temporary folder (as the ``postgres`` user when running as root,
since PostgreSQL refuses to run as root), starts it on a free loopback port and stops it
at the end of the session.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.initdb = find_bin("initdb")
        self.pg_ctl = find_bin("pg_ctl")
        self.dir: Path | None = None
        self.port = 0

    @property
    def available(self) -> bool:
        return bool(self.initdb and self.pg_ctl)

    def _as_owner(self, args: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return args

    def start(self) -> str:
        """Start the server; return a SQLAlchemy URL of its `postgres` database."""
        self.dir = Path(tempfile.mkdtemp(prefix="loopml-pg-"))
        data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = _free_port()
        subprocess.run(
            self._as_owner([self.initdb, "-D", str(data), "-U", "postgres", "--auth=trust",
                            "--no-sync", "-E", "UTF8"]),
            check=True, capture_output=True,
        )
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        subprocess.run(
            self._as_owner([self.pg_ctl, "-D", str(data), "-o", options, "-l",
                            str(self.dir / "server.log"), "-w", "-t", "60", "start"]),
            check=True, capture_output=True,
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.dir is None:
            return
        subprocess.run(
            self._as_owner([self.pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate",
                            "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
