#!/usr/bin/env python3
"""Bring up a throwaway Kafka broker, PostgreSQL server and Keycloak for tests, then tear them down.

The machines this project runs on have no Docker. This launcher builds both services from
registries the machines can reach:

* Apache Kafka (single combined broker+controller KRaft node) from Maven Central jars, built
  with ``mvn -f infra/kafka/pom.xml package`` into ``infra/kafka/target/kafka-libs``;
* PostgreSQL from Debian's packages (``apt-get install postgresql`` when missing), as a
  temporary cluster on a free loopback port;
* Keycloak (the OpenID Connect provider the console's single sign-on is tested against) from the
  ``org.keycloak:keycloak-quarkus-dist`` zip on Maven Central, with the realm ``infra/keycloak/realm-gateway.json``
  imported (``scripts/realinfra_keycloak.py``). It starts first and comes up while the others do.

Subcommands::

    realinfra.py run [--kafka-only|--postgres-only|--keycloak-only] [--no-keycloak] -- CMD ARGS...
        Start the services, run CMD with GATEWAY_TEST_KAFKA_BOOTSTRAP,
        GATEWAY_TEST_KAFKA_CREDENTIALS, GATEWAY_TEST_POSTGRES_DSN and GATEWAY_TEST_OIDC_ISSUER,
        GATEWAY_TEST_OIDC_CLIENT_ID, GATEWAY_TEST_OIDC_CLIENT_SECRET exported, always tear down,
        exit with CMD's exit code. ``--kafka-only`` and ``--postgres-only`` start no Keycloak.

    realinfra.py up [--kafka-only|--postgres-only|--keycloak-only] [--no-keycloak] [--state-file PATH]
        Start the services, print ``export ...`` lines, write a JSON state file and stay in the
        foreground until Ctrl-C or SIGTERM, then tear down. Meanwhile SIGUSR1 restarts the broker
        (``kill -9``, then the same broker on the same port and data) and SIGUSR2 restarts PostgreSQL
        (immediate stop, 5 s down, then start): fault-injection tests restart their own services this way, with
        ``REALINFRA_POSTGRES_DURABLE=1`` (without it an immediate stop may forget acknowledged commits). Each
        restart done is counted in the state file (``kafka_restarts``, ``postgres_restarts``).

The broker authenticates every client (SASL/SCRAM-SHA-512 over TLS; the controller listener uses SASL/PLAIN
over TLS for the broker alone) and authorises every request with KRaft's ``StandardAuthorizer``: nothing is
allowed without an ACL, except to the super user ``admin``. Its TLS certificate (EC P-256, for 127.0.0.1,
valid two days) is made for each run with the JDK's ``keytool``. SCRAM users are created when the storage is
formatted (``StorageTool format --add-scram``), with passwords drawn for this run: ``admin``, ``gateway`` and
one per partner code in ``gateway/registry/partners.yaml``. They are exported as
``GATEWAY_TEST_KAFKA_CREDENTIALS``, a JSON object ``{"security_protocol", "sasl_mechanism", "ssl_cafile",
"users": {name: password}}`` (``ssl_cafile``: the certificate clients trust). ACLs are left to the tests (they
know their topic prefixes).

Common options: ``--kafka-timeout SECONDS`` (default 120, for slow 2-core machines) and
``--keep-files`` (keep data and logs for debugging). Extra JVM flags for the broker can be
appended through ``REALINFRA_KAFKA_JVM_OPTS`` (e.g. ``-XX:TieredStopAtLevel=4`` for benchmarks).
PostgreSQL runs with ``fsync=off`` for test speed; ``REALINFRA_POSTGRES_DURABLE=1`` keeps the durable
defaults (for benchmarks of durable commits). Extra server settings can be appended through
``REALINFRA_POSTGRES_OPTS`` (e.g. ``-c shared_preload_libraries=pg_stat_statements`` to see which statements
a benchmark's database time goes to).

Teardown runs on normal exit, on errors and on SIGINT/SIGTERM/SIGHUP. If the launcher itself is
killed with SIGKILL, Kafka and the command still receive SIGTERM (parent-death signal) and the
next launcher run stops the orphaned PostgreSQL cluster and deletes its directory.

Only the standard library is used, so any Python 3.11+ interpreter can run it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import fcntl
import glob
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from realinfra_keycloak import (
    Keycloak,
    KeycloakError,
    ensure_keycloak,
    spawn_keycloak,
    stop_keycloak,
    wait_for_keycloak,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_INFRA_DIR = REPO_ROOT / "infra" / "kafka"
KAFKA_POM = KAFKA_INFRA_DIR / "pom.xml"
KAFKA_LOG4J_CONFIG = KAFKA_INFRA_DIR / "log4j2.properties"
KAFKA_TARGET_DIR = KAFKA_INFRA_DIR / "target"
KAFKA_LIBS_DIR = KAFKA_TARGET_DIR / "kafka-libs"
KAFKA_STAMP_FILE = KAFKA_LIBS_DIR / ".pom.sha256"

BASE_DIR_PREFIX = "gateway-realinfra-"
LAUNCHER_PID_FILE = "launcher.pid"
KAFKA_PID_FILE = "kafka.pid"
KEYCLOAK_PID_FILE = "keycloak.pid"
POSTGRES_RESTART_DOWN_S = 5.0
"""How long a PostgreSQL restart asked for with SIGUSR2 keeps the server down (clients see an outage)."""

KAFKA_ENV_VAR = "GATEWAY_TEST_KAFKA_BOOTSTRAP"
KAFKA_CREDENTIALS_ENV_VAR = "GATEWAY_TEST_KAFKA_CREDENTIALS"
POSTGRES_ENV_VAR = "GATEWAY_TEST_POSTGRES_DSN"
KAFKA_EXTRA_OPTS_ENV_VAR = "REALINFRA_KAFKA_JVM_OPTS"
POSTGRES_DURABLE_ENV_VAR = "REALINFRA_POSTGRES_DURABLE"
POSTGRES_EXTRA_OPTS_ENV_VAR = "REALINFRA_POSTGRES_OPTS"

POSTGRES_DATABASE = "gateway_test"
POSTGRES_ROLE = "gateway"
POSTGRES_OS_USER = "postgres"

KAFKA_NODE_ID = 1
KAFKA_READY_TIMEOUT_S = 120.0
KAFKA_STOP_TIMEOUT_S = 30.0
POSTGRES_START_TIMEOUT_S = 60
CHILD_STOP_TIMEOUT_S = 15.0
CHILD_INTERRUPT_GRACE_S = 5.0

KAFKA_JVM_OPTS = (
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
)

PARTNERS_FILE = REPO_ROOT / "gateway" / "registry" / "partners.yaml"
KAFKA_ADMIN_USER = "admin"
"""The super user: the broker itself (inter-broker and controller listeners) and whoever creates ACLs."""
KAFKA_GATEWAY_USER = "gateway"
KAFKA_SASL_MECHANISM = "SCRAM-SHA-512"
KAFKA_SECURITY_PROTOCOL = "SASL_SSL"
KAFKA_STARTED_LINE = "Kafka Server started"
"""What KafkaRaftServer logs once the broker serves requests (metadata and ACLs loaded)."""

PR_SET_PDEATHSIG = 1

_STARTED_AT = time.monotonic()
_LIBC: ctypes.CDLL | None
try:  # Loaded up front: forked children only call into it.
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


class InfraError(RuntimeError):
    """A service could not be built, started or checked."""


class Interrupted(BaseException):
    """Raised from a signal handler so that ``finally`` blocks tear everything down."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# --------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    """Print one progress line to stderr, prefixed with the time since start."""
    elapsed = time.monotonic() - _STARTED_AT
    print(f"[realinfra +{elapsed:5.1f}s] {message}", file=sys.stderr, flush=True)


def is_root() -> bool:
    """Return True when running with uid 0."""
    return os.geteuid() == 0


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free TCP ports on 127.0.0.1."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(port: int, timeout: float = 1.0) -> bool:
    """Return True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a text file, or a note when it is missing."""
    try:
        content = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(content[-lines:])


def run_checked(cmd: Sequence[str], what: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing output; raise InfraError with that output if it fails."""
    result = subprocess.run(list(cmd), capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise InfraError(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n{output}")
    return result


def set_parent_death_signal() -> None:
    """Ask Linux to SIGTERM this (child) process if the launcher dies without cleaning up."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


# --------------------------------------------------------------------------- signals


class SignalGuard:
    """Turn the first SIGINT/SIGTERM/SIGHUP into :class:`Interrupted`; ignore later ones."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.received: int | None = None

    def install(self) -> None:
        """Install the handler for every signal in SIGNALS."""
        for signum in self.SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: types.FrameType | None) -> None:
        if self.received is not None:
            log(f"{signal.Signals(signum).name} received again; still tearing down")
            return
        self.received = signum
        raise Interrupted(signum)


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class Postgres:
    """A running throwaway PostgreSQL cluster."""

    bin_dir: Path
    root: Path
    port: int
    password: str
    started: bool = False
    ready: bool = False

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def dsn(self) -> str:
        return f"postgresql+asyncpg://{POSTGRES_ROLE}:{self.password}@127.0.0.1:{self.port}/{POSTGRES_DATABASE}"


def find_postgres_bin() -> Path | None:
    """Return the newest /usr/lib/postgresql/<version>/bin holding pg_ctl, if any."""
    candidates = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")]
    if not candidates:
        return None

    def version(bin_dir: Path) -> tuple[int, ...]:
        digits = bin_dir.parent.name.split(".")
        return tuple(int(d) for d in digits if d.isdigit())

    return max(candidates, key=version)


def ensure_postgres_bin() -> Path:
    """Return PostgreSQL's bin directory, installing Debian's package when missing."""
    bin_dir = find_postgres_bin()
    if bin_dir is not None:
        return bin_dir
    if not is_root():
        raise InfraError("PostgreSQL is not installed; run: sudo apt-get install -y postgresql")
    log("PostgreSQL not found; installing it with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_checked(["apt-get", "update"], "apt-get update", env=env)
    run_checked(["apt-get", "install", "-y", "postgresql"], "apt-get install postgresql", env=env)
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise InfraError("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/pg_ctl exists")
    return bin_dir


def as_postgres_user(cmd: Sequence[str]) -> list[str]:
    """Prefix a command so it runs as the ``postgres`` OS user when we are root."""
    if is_root():
        return ["runuser", "-u", POSTGRES_OS_USER, "--", *cmd]
    return list(cmd)


def prepare_postgres_root(root: Path) -> None:
    """Create the cluster directory, owned by the user that will run the server."""
    root.mkdir(mode=0o700)
    if is_root():
        shutil.chown(root, user=POSTGRES_OS_USER, group=None)
        root.parent.chmod(0o711)


def init_postgres_cluster(pg: Postgres) -> None:
    """Run initdb: trust on the unix socket, SCRAM passwords over TCP."""
    initdb = [str(pg.bin_dir / "initdb"), "-D", str(pg.data_dir), "-U", POSTGRES_OS_USER]
    settings = ["--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C"]
    run_checked(as_postgres_user([*initdb, *settings, "--no-sync"]), "initdb")


def start_postgres_server(pg: Postgres) -> None:
    """Start the server with pg_ctl on 127.0.0.1 only, durability traded for speed unless
    ``REALINFRA_POSTGRES_DURABLE=1`` (benchmarks of durable commits)."""
    server_opts = f"-p {pg.port} -k {pg.root} -c listen_addresses=127.0.0.1"
    if os.environ.get(POSTGRES_DURABLE_ENV_VAR) != "1":
        server_opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if extra := os.environ.get(POSTGRES_EXTRA_OPTS_ENV_VAR, "").strip():
        server_opts += f" {extra}"
    pg_ctl = [str(pg.bin_dir / "pg_ctl"), "-D", str(pg.data_dir), "-l", str(pg.log_file)]
    wait = ["-w", "-t", str(POSTGRES_START_TIMEOUT_S)]
    pg.started = True  # From here on teardown must try to stop it.
    try:
        run_checked(as_postgres_user([*pg_ctl, "-o", server_opts, *wait, "start"]), "pg_ctl start")
    except InfraError as exc:
        raise InfraError(f"{exc}\n--- {pg.log_file} (tail) ---\n{tail(pg.log_file)}") from None


def start_postgres(infra: Infra) -> None:
    """Create, start and populate a throwaway PostgreSQL cluster."""
    bin_dir = ensure_postgres_bin()
    started_at = time.monotonic()
    pg = Postgres(
        bin_dir=bin_dir,
        root=infra.base_dir / "pg",
        port=free_ports(1)[0],
        password=secrets.token_hex(16),
    )
    infra.postgres = pg
    prepare_postgres_root(pg.root)
    init_postgres_cluster(pg)
    start_postgres_server(pg)
    create_postgres_database(pg)
    pg.ready = True
    log(f"postgres ready in {time.monotonic() - started_at:.1f}s on 127.0.0.1:{pg.port}")


def psql(pg: Postgres, sql: str) -> None:
    """Run SQL as the superuser over the cluster's unix socket."""
    connection = ["-h", str(pg.root), "-p", str(pg.port), "-U", POSTGRES_OS_USER, "-d", "postgres"]
    cmd = [str(pg.bin_dir / "psql"), *connection, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql]
    run_checked(as_postgres_user(cmd), "psql")


def create_postgres_database(pg: Postgres) -> None:
    """Create the password-protected test role and the database it owns."""
    psql(pg, f"CREATE ROLE {POSTGRES_ROLE} LOGIN CREATEDB PASSWORD '{pg.password}'")
    psql(pg, f"CREATE DATABASE {POSTGRES_DATABASE} OWNER {POSTGRES_ROLE}")


def stop_postgres(pg: Postgres) -> None:
    """Stop the cluster (fast, then immediate, then SIGKILL as a last resort)."""
    if not pg.started:
        return
    started_at = time.monotonic()
    pg_ctl = str(pg.bin_dir / "pg_ctl")
    for mode in ("fast", "immediate"):
        cmd = as_postgres_user([pg_ctl, "-D", str(pg.data_dir), "-m", mode, "-w", "-t", "30", "stop"])
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode == 0 or not (pg.data_dir / "postmaster.pid").exists():
            log(f"postgres stopped in {time.monotonic() - started_at:.1f}s")
            pg.started = False
            return
    kill_postmaster(pg.data_dir / "postmaster.pid")
    pg.started = False


def kill_postmaster(pid_file: Path) -> None:
    """SIGKILL the postmaster named in postmaster.pid, if it is still there."""
    pid = read_pid(pid_file)
    if pid is not None and process_alive(pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        log(f"postgres did not stop; killed postmaster {pid}")


# --------------------------------------------------------------------------- Kafka build


def pom_digest() -> str:
    """Hash of the Kafka POM, used to decide whether the jar folder is current."""
    return hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()


def kafka_libs_current(digest: str) -> bool:
    """True when target/kafka-libs holds jars built from the current POM."""
    try:
        stamp = KAFKA_STAMP_FILE.read_text().strip()
    except OSError:
        return False
    return stamp == digest and any(KAFKA_LIBS_DIR.glob("kafka_2.13-*.jar"))


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """Serialise concurrent builds of the jar folder."""
    KAFKA_TARGET_DIR.mkdir(parents=True, exist_ok=True)
    with (KAFKA_TARGET_DIR / ".build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_kafka_libs() -> Path:
    """Build the Kafka jar folder with Maven unless it is already current; return it."""
    with build_lock():
        digest = pom_digest()
        if kafka_libs_current(digest):
            log("kafka jars up to date")
            return KAFKA_LIBS_DIR
        mvn = shutil.which("mvn")
        if mvn is None:
            raise InfraError("Maven (mvn) is not on PATH; it is needed to fetch Kafka's jars")
        started_at = time.monotonic()
        log("building kafka jars with maven")
        shutil.rmtree(KAFKA_LIBS_DIR, ignore_errors=True)  # Drop jars of older versions.
        run_checked([mvn, "-B", "-q", "-f", str(KAFKA_POM), "package"], "maven build of infra/kafka")
        if not any(KAFKA_LIBS_DIR.glob("kafka_2.13-*.jar")):
            raise InfraError(f"maven succeeded but {KAFKA_LIBS_DIR} holds no kafka_2.13 jar")
        KAFKA_STAMP_FILE.write_text(digest + "\n")
        log(f"kafka jars built in {time.monotonic() - started_at:.1f}s")
        return KAFKA_LIBS_DIR


# --------------------------------------------------------------------------- Kafka run


@dataclass
class Kafka:
    """A single-node KRaft Kafka broker (``process`` is set once it has been spawned)."""

    root: Path
    port: int
    controller_port: int
    users: dict[str, str]
    """SCRAM user name -> password, drawn for this run."""
    keystore_password: str = ""
    process: subprocess.Popen[bytes] | None = None
    ready: bool = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def keystore(self) -> Path:
        return self.root / "broker.p12"

    @property
    def certificate(self) -> Path:
        return self.root / "broker-cert.pem"

    @property
    def credentials(self) -> str:
        """The JSON exported as GATEWAY_TEST_KAFKA_CREDENTIALS."""
        return json.dumps({
            "security_protocol": KAFKA_SECURITY_PROTOCOL,
            "sasl_mechanism": KAFKA_SASL_MECHANISM,
            "ssl_cafile": str(self.certificate),
            "users": self.users,
        })

    @property
    def properties_file(self) -> Path:
        return self.root / "server.properties"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def console_log(self) -> Path:
        return self.logs_dir / "console.log"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"


def kafka_cluster_id() -> str:
    """A 22-character url-safe base64 UUID, as ``kafka-storage random-uuid`` prints.

    Like Kafka's own generator, draw again when the id starts with ``-``: the storage tool would read it
    as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def partner_codes() -> list[str]:
    """Partner codes of the registry (``- code: x`` lines; the launcher reads no YAML library)."""
    codes = []
    for line in PARTNERS_FILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("- code:"):
            codes.append(stripped.removeprefix("- code:").strip().strip("\"'"))
    if not codes:
        raise InfraError(f"no partner codes found in {PARTNERS_FILE}")
    return codes


def kafka_users() -> dict[str, str]:
    """A fresh password for the admin, the gateway and every partner of the registry."""
    names = dict.fromkeys([KAFKA_ADMIN_USER, KAFKA_GATEWAY_USER, *partner_codes()])
    return {name: secrets.token_urlsafe(24) for name in names}


def jaas(module: str, user: str, password: str, **extra: str) -> str:
    """A one-line JAAS entry as Kafka's ``*.sasl.jaas.config`` properties take it."""
    options = " ".join(f'{key}="{value}"' for key, value in {"username": user, "password": password, **extra}.items())
    return f"{module} required {options};"


def kafka_properties(kafka: Kafka) -> dict[str, str]:
    """Broker+controller properties for a one-node cluster on loopback, with SASL and ACLs.

    Clients use SCRAM-SHA-512 over TLS on the CLIENT listener (also the inter-broker one). The controller
    listener takes SASL/PLAIN over TLS with a static JAAS entry: KRaft controllers cannot check SCRAM
    credentials, which live in the metadata log they serve. Only ``admin`` (the broker itself) is a super user.
    """
    listeners = f"CLIENT://127.0.0.1:{kafka.port},CONTROLLER://127.0.0.1:{kafka.controller_port}"
    admin_password = kafka.users[KAFKA_ADMIN_USER]
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    return {
        "process.roles": "broker,controller",
        "node.id": str(KAFKA_NODE_ID),
        "controller.quorum.voters": f"{KAFKA_NODE_ID}@127.0.0.1:{kafka.controller_port}",
        "listeners": listeners,
        "advertised.listeners": f"CLIENT://127.0.0.1:{kafka.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "CLIENT",
        "listener.security.protocol.map": "CLIENT:SASL_SSL,CONTROLLER:SASL_SSL",
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(kafka.keystore),
        "ssl.keystore.password": kafka.keystore_password,
        "ssl.key.password": kafka.keystore_password,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(kafka.certificate),
        "ssl.endpoint.identification.algorithm": "https",
        "sasl.enabled.mechanisms": KAFKA_SASL_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": KAFKA_SASL_MECHANISM,
        "listener.name.client.sasl.enabled.mechanisms": KAFKA_SASL_MECHANISM,
        "listener.name.client.scram-sha-512.sasl.jaas.config": jaas(scram, KAFKA_ADMIN_USER, admin_password),
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": jaas(
            plain, KAFKA_ADMIN_USER, admin_password, **{f"user_{KAFKA_ADMIN_USER}": admin_password}
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{KAFKA_ADMIN_USER}",
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(kafka.root / "data"),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
    }


def write_kafka_config(kafka: Kafka) -> None:
    """Write server.properties (readable by this user only: it holds passwords) and create the log dir."""
    kafka.logs_dir.mkdir()
    lines = [f"{key}={value}" for key, value in kafka_properties(kafka).items()]
    kafka.properties_file.touch(mode=0o600)
    kafka.properties_file.write_text("\n".join(lines) + "\n", encoding="utf-8")


def java_executable() -> str:
    """Path of the ``java`` launcher (JAVA_HOME first, then PATH)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise InfraError("java is not on PATH (Java 17+ is needed to run Kafka)")
    return java


def java_command(kafka: Kafka, libs: Path, main_class: str, *args: str) -> list[str]:
    """A ``java`` command line running ``main_class`` from the jar folder."""
    extra = os.environ.get(KAFKA_EXTRA_OPTS_ENV_VAR, "").split()
    jvm_opts = [
        *KAFKA_JVM_OPTS,
        f"-Dkafka.logs.dir={kafka.logs_dir}",
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J_CONFIG}",
        *extra,
    ]
    return [java_executable(), *jvm_opts, "-cp", f"{libs}/*", main_class, *args]


def make_kafka_certificate(kafka: Kafka) -> None:
    """A self-signed certificate for 127.0.0.1 in a PKCS12 keystore, and its PEM that clients (and the broker,
    towards its controller) trust. The keystore password goes through a file, never a command line."""
    keytool = Path(java_executable()).resolve().parent / "keytool"
    kafka.keystore_password = secrets.token_urlsafe(24)
    password_file = kafka.root / "keystore.password"
    password_file.touch(mode=0o600)
    password_file.write_text(kafka.keystore_password, encoding="utf-8")
    store = ["-keystore", str(kafka.keystore), "-storetype", "PKCS12", "-storepass:file", str(password_file)]
    try:
        run_checked([str(keytool), "-genkeypair", "-alias", "broker", "-keyalg", "EC", "-groupname", "secp256r1",
                     "-sigalg", "SHA256withECDSA", "-dname", "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1",
                     "-validity", "2", "-keypass:file", str(password_file), *store, "-noprompt"], "keytool -genkeypair")
        run_checked([str(keytool), "-exportcert", "-rfc", "-alias", "broker", "-file", str(kafka.certificate), *store],
                    "keytool -exportcert")
    finally:
        password_file.unlink(missing_ok=True)


def format_kafka_storage(kafka: Kafka, libs: Path) -> None:
    """Format the KRaft log directory (static quorum, so without --standalone) with every SCRAM user.

    The passwords reach the JVM through an argument file (``java @file``, readable by this user only), not
    on a command line any local user can list.
    """
    command = java_command(kafka, libs, "kafka.tools.StorageTool", "format", "-t", kafka_cluster_id(),
                           "-c", str(kafka.properties_file))
    for name, password in kafka.users.items():
        command += ["--add-scram", f"{KAFKA_SASL_MECHANISM}=[name={name},password={password}]"]
    java, classpath_at = command[0], command.index("-cp")
    args_file = kafka.root / "format.args"
    args_file.touch(mode=0o600)
    args_file.write_text("\n".join(command[classpath_at:]) + "\n", encoding="utf-8")
    try:
        run_checked([java, *command[1:classpath_at], f"@{args_file}"], "kafka storage format")
    except InfraError as exc:
        message = str(exc)
        for password in kafka.users.values():
            message = message.replace(password, "***")
        raise InfraError(message) from None
    finally:
        args_file.unlink(missing_ok=True)


def prepare_child() -> None:
    """In the forked child: restore signal delivery and die with the launcher."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SignalGuard.SIGNALS)
    set_parent_death_signal()


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold back SIGINT/SIGTERM/SIGHUP so a spawned process is recorded before any handler runs."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SignalGuard.SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SignalGuard.SIGNALS)


def spawn_kafka(kafka: Kafka, libs: Path) -> None:
    """Start ``kafka.Kafka`` in its own session, output to logs/console.log."""
    cmd = java_command(kafka, libs, "kafka.Kafka", str(kafka.properties_file))
    with kafka.console_log.open("wb") as console, signals_deferred():
        kafka.process = subprocess.Popen(  # noqa: S603
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=prepare_child,  # safe: the launcher runs no threads
        )
    (kafka.root.parent / KAFKA_PID_FILE).write_text(f"{kafka.process.pid}\n")


def start_kafka(infra: Infra, timeout: float) -> None:
    """Build jars if needed, format storage, start the broker and wait until it is ready."""
    libs = ensure_kafka_libs()
    started_at = time.monotonic()
    port, controller_port = free_ports(2)
    kafka = Kafka(root=infra.base_dir / "kafka", port=port, controller_port=controller_port, users=kafka_users())
    infra.kafka = kafka
    kafka.root.mkdir()
    make_kafka_certificate(kafka)
    write_kafka_config(kafka)
    format_kafka_storage(kafka, libs)
    log(f"kafka storage formatted in {time.monotonic() - started_at:.1f}s")
    spawn_kafka(kafka, libs)
    wait_for_kafka(kafka, timeout)
    kafka.ready = True
    log(f"kafka ready in {time.monotonic() - started_at:.1f}s on {kafka.bootstrap}")


def kafka_failure(kafka: Kafka, reason: str) -> InfraError:
    """An InfraError carrying the tails of Kafka's logs."""
    return InfraError(
        f"kafka {reason}"
        f"\n--- {kafka.console_log} (tail) ---\n{tail(kafka.console_log)}"
        f"\n--- {kafka.server_log} (tail) ---\n{tail(kafka.server_log)}"
    )


def wait_for_kafka(kafka: Kafka, timeout: float) -> None:
    """Poll until the port is open and the broker logged that it started.

    Every request on the SASL listener needs authentication first, so instead of a metadata round trip the
    launcher waits for KafkaRaftServer's "started" line, logged once the broker has caught up with the
    metadata log and the authorizer has loaded the ACLs.
    """
    assert kafka.process is not None
    deadline = time.monotonic() + timeout
    last_error = "port not open yet"
    while time.monotonic() < deadline:
        if kafka.process.poll() is not None:
            raise kafka_failure(kafka, f"exited with code {kafka.process.returncode} while starting")
        if port_open(kafka.port):
            with contextlib.suppress(FileNotFoundError):
                if KAFKA_STARTED_LINE in kafka.server_log.read_text(encoding="utf-8", errors="replace"):
                    return
            last_error = "broker has not logged that it started"
        time.sleep(0.5)
    raise kafka_failure(kafka, f"not ready after {timeout:.0f}s ({last_error})")


def stop_kafka(kafka: Kafka) -> None:
    """SIGTERM the broker (controlled shutdown); SIGKILL it after a timeout."""
    process = kafka.process
    if process is None or process.poll() is not None:
        return
    started_at = time.monotonic()
    process.terminate()
    try:
        process.wait(timeout=KAFKA_STOP_TIMEOUT_S)
        log(f"kafka stopped in {time.monotonic() - started_at:.1f}s")
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        log(f"kafka did not stop within {KAFKA_STOP_TIMEOUT_S:.0f}s; killed")


# --------------------------------------------------------------------------- Keycloak


def spawn_keycloak_early(infra: Infra) -> None:
    """Fetch and build Keycloak if needed and start it; it comes up while PostgreSQL and Kafka do."""
    try:
        installation = ensure_keycloak(log)
    except KeycloakError as exc:
        raise InfraError(str(exc)) from None
    port, management_port = free_ports(2)
    keycloak = Keycloak(root=infra.base_dir / "keycloak", port=port, management_port=management_port)
    infra.keycloak = keycloak
    with signals_deferred():
        spawn_keycloak(keycloak, installation, prepare_child)
    assert keycloak.process is not None
    (infra.base_dir / KEYCLOAK_PID_FILE).write_text(f"{keycloak.process.pid}\n")


def wait_keycloak_ready(keycloak: Keycloak) -> None:
    """Wait until Keycloak serves the realm; log how long it took from its start."""
    try:
        took = wait_for_keycloak(keycloak)
    except KeycloakError as exc:
        raise InfraError(str(exc)) from None
    log(f"keycloak ready {took:.1f}s after its start, issuer {keycloak.issuer}")


# --------------------------------------------------------------------------- orchestration


@dataclass
class Infra:
    """Everything started by one launcher invocation, registered as soon as it exists."""

    base_dir: Path
    kafka: Kafka | None = None
    postgres: Postgres | None = None
    keycloak: Keycloak | None = None

    def env(self) -> dict[str, str]:
        """Environment variables describing the services that are ready."""
        env: dict[str, str] = {}
        if self.kafka is not None and self.kafka.ready:
            env[KAFKA_ENV_VAR] = self.kafka.bootstrap
            env[KAFKA_CREDENTIALS_ENV_VAR] = self.kafka.credentials
        if self.postgres is not None and self.postgres.ready:
            env[POSTGRES_ENV_VAR] = self.postgres.dsn
        if self.keycloak is not None and self.keycloak.ready:
            env.update(self.keycloak.env())
        return env


def best_effort(action: Callable[[], None]) -> None:
    """Run one teardown step; log its failure instead of aborting the remaining steps."""
    try:
        action()
    except Exception as exc:
        log(f"teardown error: {exc!r}")


def teardown(infra: Infra, keep_files: bool) -> None:
    """Stop Keycloak, Kafka and PostgreSQL and remove their files; never raises."""
    kafka, postgres, keycloak = infra.kafka, infra.postgres, infra.keycloak
    if keycloak is not None:
        best_effort(lambda: stop_keycloak(keycloak, log))
    if kafka is not None:
        best_effort(lambda: stop_kafka(kafka))
    if postgres is not None:
        best_effort(lambda: stop_postgres(postgres))
    if keep_files:
        (infra.base_dir / LAUNCHER_PID_FILE).unlink(missing_ok=True)
        log(f"kept files in {infra.base_dir}")
    else:
        shutil.rmtree(infra.base_dir, ignore_errors=True)


def read_pid(path: Path) -> int | None:
    """The integer on the first line of ``path``, or None."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid: int) -> bool:
    """True when a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_mentions(pid: int, text: str) -> bool:
    """True when the process's command line contains ``text`` (guards against pid reuse)."""
    try:
        return text in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def reap_stale_run(base_dir: Path) -> None:
    """Stop what a launcher killed with SIGKILL left behind, then delete its files."""
    log(f"cleaning up after a launcher that died: {base_dir}")
    kafka_pid = read_pid(base_dir / KAFKA_PID_FILE)
    if kafka_pid is not None and process_mentions(kafka_pid, str(base_dir)):
        with contextlib.suppress(OSError):
            os.kill(kafka_pid, signal.SIGKILL)
    keycloak_pid = read_pid(base_dir / KEYCLOAK_PID_FILE)  # kc.sh, leader of a group holding the JVM too
    if keycloak_pid is not None and process_mentions(keycloak_pid, str(base_dir / "keycloak")):
        with contextlib.suppress(OSError):
            os.killpg(keycloak_pid, signal.SIGKILL)
    bin_dir = find_postgres_bin()
    if bin_dir is not None and (base_dir / "pg" / "data" / "postmaster.pid").exists():
        stale = Postgres(bin_dir=bin_dir, root=base_dir / "pg", port=0, password="", started=True)
        stop_postgres(stale)
    shutil.rmtree(base_dir, ignore_errors=True)


def reap_stale_runs() -> None:
    """Clean up the temporary directories of launchers that are no longer running."""
    for base_dir in Path(tempfile.gettempdir()).glob(f"{BASE_DIR_PREFIX}*"):
        launcher_pid = read_pid(base_dir / LAUNCHER_PID_FILE)
        if base_dir.is_dir() and launcher_pid is not None and not process_alive(launcher_pid):
            reap_stale_run(base_dir)


def make_base_dir() -> Path:
    """Create this run's temporary directory, marked with the launcher's pid."""
    base_dir = Path(tempfile.mkdtemp(prefix=BASE_DIR_PREFIX))
    (base_dir / LAUNCHER_PID_FILE).write_text(f"{os.getpid()}\n")
    return base_dir


@contextlib.contextmanager
def infrastructure(options: Options) -> Iterator[Infra]:
    """Start the requested services; always stop them and remove their files on exit."""
    reap_stale_runs()
    infra = Infra(base_dir=make_base_dir())
    try:
        if options.keycloak:
            spawn_keycloak_early(infra)
        if options.postgres:
            start_postgres(infra)
        if options.kafka:
            start_kafka(infra, options.kafka_timeout)
        if infra.keycloak is not None:
            wait_keycloak_ready(infra.keycloak)
        yield infra
    finally:
        teardown(infra, options.keep_files)


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Options:
    """Parsed command-line options."""

    command: str
    kafka: bool
    postgres: bool
    keycloak: bool
    kafka_timeout: float
    keep_files: bool
    state_file: Path
    child_argv: list[str]


def exit_code_of(returncode: int) -> int:
    """Map a Popen return code to a shell-style exit code (128+N for signal N)."""
    return 128 - returncode if returncode < 0 else returncode


def run_child(argv: list[str], env: dict[str, str]) -> int:
    """Run the command with the service variables exported; forward a termination signal."""
    log(f"running: {' '.join(argv)}")
    started_at = time.monotonic()
    try:
        with signals_deferred():
            child = subprocess.Popen(argv, env={**os.environ, **env}, preexec_fn=prepare_child)  # noqa: S603
    except OSError as exc:
        log(f"cannot run {argv[0]}: {exc}")
        return 127
    try:
        returncode = child.wait()
    except Interrupted as interrupted:
        stop_child(child, interrupted.signum)
        raise
    log(f"command exited with {exit_code_of(returncode)} after {time.monotonic() - started_at:.1f}s")
    return exit_code_of(returncode)


def stop_child(child: subprocess.Popen[bytes], signum: int) -> None:
    """Pass a termination signal on to the command, then kill it if it lingers.

    A terminal's Ctrl-C already reached the command (same process group), so SIGINT is only
    forwarded if the command is still running after a grace period.
    """
    if signum == signal.SIGINT:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=CHILD_INTERRUPT_GRACE_S)
    if child.poll() is None:
        log(f"passing {signal.Signals(signum).name} on to the command")
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)
    try:
        child.wait(timeout=CHILD_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def command_run(options: Options) -> int:
    """``run``: start the services, run the command, tear down, return its exit code."""
    with infrastructure(options) as infra:
        return run_child(options.child_argv, infra.env())


def write_state(path: Path, infra: Infra) -> None:
    """Write a JSON description of the running services for other tools (readable by this user only: it holds
    the database password and the Kafka credentials)."""
    state = {
        "pid": os.getpid(),
        "base_dir": str(infra.base_dir),
        "env": infra.env(),
        "kafka_pid": infra.kafka.process.pid if infra.kafka and infra.kafka.process else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


class RestartRequests:
    """SIGUSR1 (restart the broker) and SIGUSR2 (restart PostgreSQL) received while ``up`` waits."""

    def __init__(self) -> None:
        self.pending: list[str] = []

    def install(self) -> None:
        signal.signal(signal.SIGUSR1, lambda *_: self.pending.append("kafka"))
        signal.signal(signal.SIGUSR2, lambda *_: self.pending.append("postgres"))


def restart_kafka(kafka: Kafka, timeout: float) -> None:
    """``kill -9`` the broker, then start it again on the same port, configuration and data."""
    assert kafka.process is not None
    kafka.process.kill()
    kafka.process.wait()
    started_at = time.monotonic()
    with contextlib.suppress(FileNotFoundError):
        kafka.server_log.unlink()  # wait_for_kafka looks for the "started" line of this run
    spawn_kafka(kafka, ensure_kafka_libs())
    wait_for_kafka(kafka, timeout)
    log(f"kafka restarted in {time.monotonic() - started_at:.1f}s")


def restart_postgres(pg: Postgres) -> None:
    """Stop PostgreSQL at once (no shutdown checkpoint: crash recovery on start), keep it down for
    POSTGRES_RESTART_DOWN_S, then start it again."""
    started_at = time.monotonic()
    pg_ctl = str(pg.bin_dir / "pg_ctl")
    run_checked(as_postgres_user([pg_ctl, "-D", str(pg.data_dir), "-m", "immediate", "-w", "-t", "30", "stop"]),
                "pg_ctl stop -m immediate")
    time.sleep(POSTGRES_RESTART_DOWN_S)
    start_postgres_server(pg)
    log(f"postgres restarted in {time.monotonic() - started_at:.1f}s")


def wait_until_stopped(infra: Infra, state_file: Path | None = None, kafka_timeout: float = KAFKA_READY_TIMEOUT_S,
                       restarts: RestartRequests | None = None) -> None:
    """Block until a signal arrives (raising Interrupted) or Kafka or Keycloak dies on its own; restart a service when
    asked (see ``up``) and count it in ``state_file``."""
    done = {"kafka": 0, "postgres": 0}
    while True:
        while restarts is not None and restarts.pending:
            service = restarts.pending.pop(0)
            if service == "kafka" and infra.kafka is not None:
                restart_kafka(infra.kafka, kafka_timeout)
            elif service == "postgres" and infra.postgres is not None:
                restart_postgres(infra.postgres)
            else:
                continue
            done[service] += 1
            if state_file is not None and state_file.exists():
                state = json.loads(state_file.read_text(encoding="utf-8"))
                state.update({f"{name}_restarts": count for name, count in done.items()})
                state["kafka_pid"] = infra.kafka.process.pid if infra.kafka and infra.kafka.process else None
                state_file.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        kafka = infra.kafka
        if kafka is not None and kafka.process is not None and kafka.process.poll() is not None:
            raise kafka_failure(kafka, f"exited unexpectedly with code {kafka.process.returncode}")
        keycloak = infra.keycloak
        if keycloak is not None and keycloak.process is not None and keycloak.process.poll() is not None:
            raise InfraError(f"keycloak exited unexpectedly with code {keycloak.process.returncode}")
        time.sleep(0.2)


def command_up(options: Options) -> int:
    """``up``: start the services, print their variables, wait for Ctrl-C or SIGTERM."""
    try:
        with infrastructure(options) as infra:
            for name, value in infra.env().items():
                print(f"export {name}={shlex.quote(value)}", flush=True)  # the credentials are JSON
            restarts = RestartRequests()
            restarts.install()
            write_state(options.state_file, infra)
            log(f"state written to {options.state_file}; press Ctrl-C to stop")
            try:
                wait_until_stopped(infra, options.state_file, options.kafka_timeout, restarts)
            finally:
                options.state_file.unlink(missing_ok=True)
    except Interrupted as interrupted:
        log(f"stopped by {signal.Signals(interrupted.signum).name}")
    return 0


def default_state_file() -> Path:
    """Where ``up`` writes its state unless told otherwise."""
    return Path(tempfile.gettempdir()) / f"gateway-test-infra-{os.getuid()}.json"


def parse_args(argv: list[str]) -> Options:
    """Parse ``argv``; everything after the first ``--`` is the command to run."""
    child_argv: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, child_argv = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    only = common.add_mutually_exclusive_group()
    only.add_argument("--kafka-only", action="store_true", help="start Kafka only")
    only.add_argument("--postgres-only", action="store_true", help="start PostgreSQL only")
    only.add_argument("--keycloak-only", action="store_true", help="start Keycloak only")
    common.add_argument("--no-keycloak", action="store_true", help="start no Keycloak")
    common.add_argument(
        "--kafka-timeout",
        type=float,
        default=KAFKA_READY_TIMEOUT_S,
        help="seconds to wait for Kafka to become ready (default: %(default)s)",
    )
    common.add_argument("--keep-files", action="store_true", help="keep data and logs after teardown")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", parents=[common], help="run a command against fresh services: run -- CMD...")
    up = commands.add_parser("up", parents=[common], help="start services and wait for Ctrl-C")
    up.add_argument("--state-file", type=Path, default=default_state_file(), help="JSON state file path")
    args = parser.parse_args(argv)
    if args.command == "run" and not child_argv:
        parser.error("run needs a command after '--', e.g. run -- pytest -q")
    return Options(
        command=args.command,
        kafka=not (args.postgres_only or args.keycloak_only),
        postgres=not (args.kafka_only or args.keycloak_only),
        keycloak=not (args.kafka_only or args.postgres_only or args.no_keycloak),
        kafka_timeout=args.kafka_timeout,
        keep_files=args.keep_files,
        state_file=getattr(args, "state_file", default_state_file()),
        child_argv=child_argv,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code."""
    options = parse_args(sys.argv[1:] if argv is None else argv)
    guard = SignalGuard()
    guard.install()
    handlers: dict[str, Callable[[Options], int]] = {"run": command_run, "up": command_up}
    try:
        return handlers[options.command](options)
    except InfraError as exc:
        log(f"error: {exc}")
        return 1
    except Interrupted as interrupted:
        log(f"stopped by {signal.Signals(interrupted.signum).name}")
        return 128 + interrupted.signum


if __name__ == "__main__":
    sys.exit(main())
