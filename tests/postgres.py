"""A private PostgreSQL server for the tests, from Debian's packages: its own data directory,
port and socket folder under a temp dir, stopped at the end of the session. As root it runs
as the ``postgres`` user (the server refuses to run as root)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from testkit.net import free_port

USER = "microcred"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: scripts/setup.sh --tests installs "
                           "Debian's postgresql")
    return Path(found[-1]).parent


class PostgresServer:
    def __init__(self, root: Path) -> None:
        self.bin = _bin_dir()
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "server.log"
        self.port = free_port()
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                check=False)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}{log}")

    def start(self) -> PostgresServer:
        for folder in (self.data, self.sockets):
            folder.mkdir(parents=True)
        self.log.touch()
        if self._as_root:
            for path in (self.data.parent, self.data, self.sockets, self.log):
                shutil.chown(path, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        options = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg  # noqa: PLC0415 - only the PostgreSQL tests need it

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def restore(self, dump: Path) -> str:
        """A fresh database holding a plain-SQL ``pg_dump``; its URL."""
        location = self.new_database()
        result = subprocess.run(
            [str(self.bin / "psql"), "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1",
             "--file", str(dump), location], capture_output=True, text=True, timeout=120,
            check=False)
        if result.returncode != 0:
            raise RuntimeError(f"restoring {dump} failed: {result.stdout}{result.stderr}")
        return location

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
