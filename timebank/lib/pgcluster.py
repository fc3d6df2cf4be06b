"""Throw-away PostgreSQL clusters for harnesses and tests: a private primary, and streaming standbys of it.

    cluster = PgCluster(workdir, database="timebank_x")   # initdb in workdir/pg, its own free port
    cluster.init()                                          # initdb, start, CREATE DATABASE
    standby = cluster.standby(workdir)                      # pg_basebackup -R into workdir/standby, started
    ...
    standby.stop(); cluster.stop()                          # then remove workdir

Each cluster listens on 127.0.0.1 at a free port (never the shared server's 5432) with its Unix socket in its own
directory and trust authentication, so nothing outside the temporary directory is touched. initdb refuses to run
as root, so as root every server command runs as the `postgres` user (runuser). Used by bench/crash.py (which
SIGKILLs its cluster) and tests/test_read_replica.py (a primary and a hot standby).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SHARED_PORT = 5432  # the shared server the tests and CI use: never ours, never killed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    if port == SHARED_PORT:
        return free_port()
    return port


def pg_bindir() -> Path | None:
    """The newest PostgreSQL server binaries: /usr/lib/postgresql/*/bin, else PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name.split(".")[0]))
    for bindir in reversed(versions):
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def missing_tools(*extra: str) -> str | None:
    """Why a private cluster cannot be started here, or None. `extra`: more programs needed beside initdb and
    pg_ctl, looked for in the same directory (e.g. "pg_basebackup")."""
    bindir = pg_bindir()
    if bindir is None:
        return "initdb/pg_ctl not found in /usr/lib/postgresql/*/bin or PATH"
    for program in ("psql", *extra):
        if not (bindir / program).exists() and shutil.which(program) is None:
            return f"{program} not found in {bindir} or PATH"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root and runuser is missing (initdb refuses to run as root)"
    return None


class PgCluster:
    """A throw-away PostgreSQL cluster owned by this process. Only its own postmaster is ever stopped or killed.

    `settings` are passed to the server as `-c name=value` at every start."""

    def __init__(
        self, workdir: Path, *, name: str = "pg", database: str = "timebank", settings: dict[str, str] | None = None
    ) -> None:
        bindir = pg_bindir()
        assert bindir is not None
        self.bindir = bindir
        self.dir = workdir / name
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.database = database
        self.settings = dict(settings or {})
        self.port = free_port()
        assert self.port != SHARED_PORT
        self.as_root = os.geteuid() == 0
        self.kills = 0

    def _program(self, name: str) -> str:
        found = self.bindir / name
        return str(found) if found.exists() else (shutil.which(name) or name)

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self.as_root else list(args)

    def _run(self, *args: str) -> str:
        done = call(self._cmd(*args))
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}\n{done.stderr}\n{self.tail_log()}")
        return done.stdout

    def tail_log(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def _make_dir(self) -> None:
        self.dir.mkdir(parents=True)
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
            os.chmod(self.dir.parent, 0o755)  # noqa: S103 - the postgres user must reach its directory

    def init(self) -> None:
        """initdb (trust authentication, replication allowed from 127.0.0.1), start, and create the database."""
        self._make_dir()
        self._run(self._program("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        self.start()
        self.sql(f"CREATE DATABASE {self.database}", database="postgres")

    def standby(self, workdir: Path, *, name: str = "standby") -> PgCluster:
        """A hot standby of this (running) cluster in workdir/name: `pg_basebackup -R` (a base backup that writes
        primary_conninfo and standby.signal), then started on its own port, streaming from this one."""
        replica = PgCluster(workdir, name=name, database=self.database, settings=self.settings)
        replica._make_dir()
        replica._run(
            self._program("pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"),
            *("-D", str(replica.data), "-R", "-X", "stream", "-c", "fast"),
        )
        replica.start()
        return replica

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def sql(self, query: str, *, database: str | None = None) -> str:
        """Run one statement through psql; its unaligned output, stripped."""
        done = call(
            [
                *(self._program("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"),
                *("-d", database or self.database, "-v", "ON_ERROR_STOP=1", "-At", "-c", query),
            ]
        )
        if done.returncode != 0:
            raise RuntimeError(f"{query}: {done.stderr}")
        return done.stdout.strip()

    def start(self) -> None:
        opts = " ".join(
            [
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c max_connections=100",
                *(f"-c {key}={value}" for key, value in self.settings.items()),
            ]
        )
        self._run(
            self._program("pg_ctl"),
            *("-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "120", "start"),
        )

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill9(self) -> None:
        """SIGKILL the postmaster and every backend, as a crash of the database machine would."""
        pid = self.postmaster_pid()
        assert pid is not None, "our postmaster is not running"
        victims = [pid, *children_of(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(alive(v) for v in victims) and time.monotonic() < deadline:
            time.sleep(0.05)
        # As the subreaper we inherited the postmaster and its backends: reap them, or the zombie's pid in
        # postmaster.pid would look like a running server to the restart.
        for victim in victims:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(victim, 0)
        self.kills += 1

    def stop(self) -> None:
        if self.postmaster_pid() is not None and alive(self.postmaster_pid() or 0):
            call(self._cmd(self._program("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"))


def call(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run one of the PostgreSQL programs (arguments of our own making); never raises on its exit status."""
    return subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command may hold spaces and parentheses: the parent pid is the second field after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
