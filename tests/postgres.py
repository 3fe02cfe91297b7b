"""A private PostgreSQL server for the tests: the Debian package's binaries, a throw-away cluster.

The tests never use a PostgreSQL the machine happens to run: each test session
(each xdist worker) starts its own server the first time a test asks for a
database, from `initdb` into a temporary folder, listening on 127.0.0.1 on an
ephemeral port with its unix socket in that folder and trust authentication,
and stops it (no process left, folder removed) when the session ends.
PostgreSQL refuses to run as root, so as root the cluster belongs to, and the
server runs as, the `postgres` system user the Debian package creates.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from server.processes import free_port

SERVICE_USER = "postgres"  # created by Debian's postgresql-common; owns the cluster when the tests run as root
DEBIAN_ROOT = Path("/usr/lib/postgresql")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed, or the server did not start; the message says which."""


def _version_key(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", folder.name)) or (0,)


def postgres_bindir() -> Path:
    """Where `initdb` and `postgres` are: $PG_BINDIR, Debian's newest /usr/lib/postgresql/<ver>/bin, or PATH."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    if DEBIAN_ROOT.is_dir():
        candidates += [v / "bin" for v in sorted(DEBIAN_ROOT.iterdir(), key=_version_key, reverse=True)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise PostgresUnavailable("no PostgreSQL server binaries (initdb, postgres) in $PG_BINDIR, "
                              f"{DEBIAN_ROOT}/<version>/bin or PATH: install the Debian package `postgresql`")


def _run_as() -> dict[str, object]:
    """Popen arguments that drop root to the service user; nothing when not root."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root, and there is no {SERVICE_USER!r} user to run PostgreSQL as "
                                  "(the Debian package `postgresql` creates it)") from None
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


@dataclass
class PostgresServer:
    """One throw-away cluster and its server; `admin_url` reaches its `postgres` database as superuser."""

    port: int = field(default_factory=free_port)
    folder: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def log_path(self) -> Path:
        assert self.folder is not None
        return self.folder / "postgres.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, seconds: float = 60.0) -> PostgresServer:
        bindir, drop = postgres_bindir(), _run_as()
        # Not under pytest's tmp folder: that is private to root, and the service user must reach its cluster.
        self.folder = Path(tempfile.mkdtemp(prefix="churn-test-postgres-"))
        data, sockets = self.folder / "data", self.folder / "socket"
        sockets.mkdir()
        if drop:
            for path in (self.folder, sockets):
                os.chown(path, int(drop["user"]), int(drop["group"]))  # type: ignore[call-overload]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        initdb = subprocess.run(
            [str(bindir / "initdb"), "--pgdata", str(data), "--username", "postgres", "--auth", "trust",
             "--encoding", "UTF8", "--locale", "C", "--no-sync"],
            capture_output=True, text=True, cwd=self.folder, env=env, timeout=120, **drop)  # type: ignore[call-overload]
        if initdb.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({initdb.returncode}): {initdb.stderr.strip()}")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
                 "-k", str(sockets), "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, env=env, start_new_session=True, **drop)
        self._wait_ready(seconds)
        return self

    def _wait_ready(self, seconds: float) -> None:
        import psycopg

        deadline = time.monotonic() + seconds
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise PostgresUnavailable(f"postgres exited ({self.process.returncode}):\n{self.log()}")
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise PostgresUnavailable(f"postgres not accepting connections after {seconds:.0f} s "
                                              f"({exc}):\n{self.log()}") from None
            time.sleep(0.1)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: sessions ended, clean stop), then SIGKILL to anything left; folder removed."""
        if self.process is not None:
            process, self.process = self.process, None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # a backend that outlived the postmaster
            if process.poll() is None:
                process.wait(timeout=10)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


_session_server: PostgresServer | None = None


def session_postgres() -> PostgresServer:
    """This test session's server, started on first use; `stop_session_postgres` (or exit) stops it."""
    global _session_server
    if _session_server is None:
        _session_server = PostgresServer().start()
        atexit.register(stop_session_postgres)
    return _session_server


def stop_session_postgres() -> None:
    global _session_server
    if _session_server is not None:
        server, _session_server = _session_server, None
        server.stop()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on this session's private server, dropped afterwards; yields its URL."""
    import psycopg

    server = session_postgres()
    name = f"churn_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.url(name)
    finally:
        with psycopg.connect(server.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
