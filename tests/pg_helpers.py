"""A throwaway PostgreSQL server for tests and benchmarks: `initdb` + `pg_ctl` in a temporary folder.

Debian's `postgresql` package (which .ci/run installs) puts the server binaries in /usr/lib/postgresql/VERSION/bin,
off PATH. initdb refuses to run as root, so as root the cluster is created and run as the `postgres` user in a
folder it owns. The server listens on 127.0.0.1 only, on a free port, with a password (scram) so URLs look like a
user's: postgresql+psycopg://fmkit:PASSWORD@127.0.0.1:PORT/fmkit.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PASSWORD = "s3cret-test-pw"


def find_bindir() -> Path | None:
    """The folder holding initdb/pg_ctl, newest Debian version first; None when PostgreSQL is not installed."""
    on_path = shutil.which("initdb")
    candidates = ([str(Path(on_path).resolve().parent)] if on_path else []) + sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True)
    for folder in candidates:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def unavailable_reason() -> str | None:
    """Why a throwaway server cannot run here (None when it can)."""
    if find_bindir() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql; .ci/run does)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed (pip install 'fmkit[postgres]')"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run initdb as"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayPostgres:
    """One PostgreSQL cluster in a temporary folder; `stop()` / `start()` simulate an outage, `close()` removes it."""

    def __init__(self) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError(unavailable_reason())
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="fmkit-pg-"))
        self.data = self.root / "data"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_postgres:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "fmkit", "--auth=scram-sha-256", f"--pwfile={pwfile}",
                  "-E", "UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as fh:
            # TCP on localhost only; the socket in our own folder (the default /var/run/postgresql is not ours).
            fh.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.root}'\n"
                     "fsync = off\nsynchronous_commit = on\nfull_page_writes = off\n")
        self.start()
        self.sql("CREATE DATABASE fmkit", database="postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://fmkit:{PASSWORD}@127.0.0.1:{self.port}/fmkit"

    def fresh_database(self, name: str) -> str:
        """A new empty database on this server; its SQLAlchemy URL."""
        self.sql(f'CREATE DATABASE "{name}"', database="postgres")
        return f"postgresql+psycopg://fmkit:{PASSWORD}@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash as far as clients can tell: every connection drops at once."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def sql(self, statement: str, database: str = "fmkit") -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="fmkit", password=PASSWORD, dbname=database,
                             autocommit=True) as conn:
            cur = conn.execute(statement)
            return list(cur.fetchall()) if cur.description else []

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("fast")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, cmd, done.stdout, done.stderr)
