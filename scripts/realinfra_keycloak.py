"""Keycloak for the tests: the OpenID Connect provider the privacy officers' console signs people in through.

``scripts/realinfra.py`` starts it once per test run beside Kafka and PostgreSQL, with this module:

* the server distribution ``org.keycloak:keycloak-quarkus-dist`` (a zip on Maven Central) is unpacked by
  ``mvn -B -q -f infra/keycloak/pom.xml package`` into a per-user cache folder
  (``~/.cache/quartieri-gateway/keycloak/<version>-<digest>/``, or ``KEYCLOAK_CACHE_DIR``), so that every clone
  on the machine shares one built server and the Maven cache makes a second download free;
* it is then built once for the tests (``kc.sh build --db=dev-file --cache=local --health-enabled=true``: the
  embedded H2 database, no cluster, health checks), so each run starts with ``kc.sh start --optimized`` and skips
  Quarkus' minute-long build; a stamp file records which pom, options and Java built it;
* ``infra/keycloak/realm-gateway.json`` is imported (``--import-realm``) once per version of the realm file into
  a database kept beside the build: creating Keycloak's schema and importing take most of a cold start, so each
  run starts on its own copy of that database instead (13 s instead of 28 s on two idle cores);
* each run listens on two free loopback ports (HTTP and management), with the issuer pinned to
  ``http://localhost:<port>/realms/gateway`` so that the console (on 127.0.0.1) and the provider are different
  sites, as in production;
* ready means ``/health/ready`` on the management port answers 200 and the realm's discovery document names
  the expected issuer.

Keycloak 26 needs Java 21 or newer: ``KEYCLOAK_JAVA_HOME``, else ``JAVA_HOME`` when new enough, else the newest
JDK under ``/usr/lib/jvm``. Only the standard library is used.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
KEYCLOAK_INFRA_DIR = REPO_ROOT / "infra" / "keycloak"
KEYCLOAK_POM = KEYCLOAK_INFRA_DIR / "pom.xml"
REALM_FILE = KEYCLOAK_INFRA_DIR / "realm-gateway.json"
STAMP_NAME = ".gateway-build.sha256"
CACHE_DIR_ENV_VAR = "KEYCLOAK_CACHE_DIR"

REALM = "gateway"
BUILD_OPTIONS = ("--db=dev-file", "--cache=local", "--health-enabled=true")
"""Build-time options: the embedded H2 database (each run on its own copy of the imported realm), no clustering
(nothing listens beyond loopback), health endpoints for readiness."""
DB_NAME = "keycloakdb"
JVM_OPTS_APPEND = "-XX:TieredStopAtLevel=1 -Xms128m -Xmx768m"
"""The client compiler alone starts the server sooner on two cores; the heap is plenty for one realm."""
JAVA_MIN_VERSION = 21
READY_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 30.0

ISSUER_ENV_VAR = "GATEWAY_TEST_OIDC_ISSUER"
CLIENT_ID_ENV_VAR = "GATEWAY_TEST_OIDC_CLIENT_ID"
CLIENT_SECRET_ENV_VAR = "GATEWAY_TEST_OIDC_CLIENT_SECRET"  # noqa: S105 (a variable name)
JAVA_HOME_ENV_VAR = "KEYCLOAK_JAVA_HOME"

Log = Callable[[str], None]
PR_SET_PDEATHSIG = 1
_LIBC: ctypes.CDLL | None
try:  # Loaded up front: forked children only call into it.
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


def die_with_parent() -> None:
    """In a forked child: ask Linux to SIGTERM it when the process that started it dies."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class KeycloakError(RuntimeError):
    """Keycloak could not be fetched, built or started: the message says which, with the log's tail."""


def keycloak_version() -> str:
    """The distribution version the pom asks for (``<keycloak.version>``)."""
    match = re.search(r"<keycloak\.version>([^<]+)</keycloak\.version>", KEYCLOAK_POM.read_text(encoding="utf-8"))
    if match is None:
        raise KeycloakError(f"{KEYCLOAK_POM} names no <keycloak.version>")
    return match.group(1).strip()


def java_major(java_home: Path) -> int | None:
    """The major version of the JDK at ``java_home`` (from its ``release`` file), or None."""
    try:
        release = (java_home / "release").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)', release, re.MULTILINE)
    return int(match.group(1)) if match else None


def keycloak_java_home() -> Path:
    """A JDK new enough for Keycloak (see the module's docstring for the order of preference)."""
    named = [os.environ.get(JAVA_HOME_ENV_VAR), os.environ.get("JAVA_HOME")]
    for candidate in (Path(p) for p in named if p):
        if (candidate / "bin" / "java").exists() and (java_major(candidate) or 0) >= JAVA_MIN_VERSION:
            return candidate
    installed = [p for p in Path("/usr/lib/jvm").glob("*") if (p / "bin" / "java").exists() and not p.is_symlink()]
    usable = [(java_major(p) or 0, p) for p in installed if (java_major(p) or 0) >= JAVA_MIN_VERSION]
    if not usable:
        raise KeycloakError(f"Keycloak needs Java {JAVA_MIN_VERSION}+ and none was found (set {JAVA_HOME_ENV_VAR}); "
                            f"found: {sorted(str(p) for p in installed)}")
    return max(usable)[1]


def cache_root() -> Path:
    """Where built distributions are kept (one folder per version, build options and Java)."""
    named = os.environ.get(CACHE_DIR_ENV_VAR)
    if named:
        return Path(named)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "quartieri-gateway" / "keycloak"


@contextlib.contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Serialise concurrent fetches and builds of the distribution."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-4000:]
        raise KeycloakError(f"{what} failed (exit {done.returncode}): {' '.join(cmd)}\n{output}")


@dataclass(frozen=True)
class Installation:
    """A built Keycloak, the JDK that runs it and the database folder holding the imported realm."""

    dist: Path
    java_home: Path
    seed: Path


def ensure_keycloak(log: Log) -> Installation:
    """The built distribution, its JDK and the imported realm; fetched, built and imported only when not
    current."""
    java_home = keycloak_java_home()
    version = keycloak_version()
    digest = hashlib.sha256(KEYCLOAK_POM.read_bytes() + " ".join(BUILD_OPTIONS).encode()
                            + str(java_major(java_home)).encode()).hexdigest()
    unpack_dir = cache_root() / f"{version}-{digest[:16]}"
    dist = unpack_dir / f"keycloak-{version}"
    stamp = dist / STAMP_NAME
    with build_lock(unpack_dir):
        if (dist / "bin" / "kc.sh").exists() and stamp.exists() and stamp.read_text().strip() == digest:
            log(f"keycloak {version} up to date (java {java_major(java_home)})")
            return Installation(dist, java_home, ensure_seed(dist, java_home, unpack_dir, log))
        started_at = time.monotonic()
        if not (dist / "bin" / "kc.sh").exists():
            mvn = shutil.which("mvn")
            if mvn is None:
                raise KeycloakError("Maven (mvn) is not on PATH; it fetches Keycloak from Maven Central")
            log(f"fetching keycloak {version} with maven")
            _run([mvn, "-B", "-q", "-f", str(KEYCLOAK_POM), f"-Dkeycloak.unpack.dir={unpack_dir}", "package"],
                 "maven fetch of infra/keycloak")
            if not (dist / "bin" / "kc.sh").exists():
                raise KeycloakError(f"maven succeeded but {dist} holds no bin/kc.sh")
        log(f"building keycloak for the tests ({' '.join(BUILD_OPTIONS)})")
        _run([str(dist / "bin" / "kc.sh"), "build", *BUILD_OPTIONS], "kc.sh build", env=_env(java_home))
        stamp.write_text(digest + "\n")
        log(f"keycloak built in {time.monotonic() - started_at:.1f}s")
        return Installation(dist, java_home, ensure_seed(dist, java_home, unpack_dir, log))


def ensure_seed(dist: Path, java_home: Path, unpack_dir: Path, log: Log) -> Path:
    """The database folder with this version of the realm file imported (made once: a Keycloak started with
    ``--import-realm`` on a fresh database, then stopped)."""
    realm_digest = hashlib.sha256(REALM_FILE.read_bytes()).hexdigest()[:16]
    seed = unpack_dir / f"realm-{realm_digest}"
    if (seed / f"{DB_NAME}.mv.db").exists():
        return seed
    started_at = time.monotonic()
    log("importing the realm into a fresh keycloak database (once per version of the realm file)")
    staging = unpack_dir / f".seeding-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    port, management_port = _free_ports(2)
    seeding = Keycloak(root=staging, port=port, management_port=management_port)
    try:
        spawn_keycloak(seeding, Installation(dist, java_home, seed), die_with_parent, import_realm=True)
        wait_for_keycloak(seeding)
        stop_keycloak(seeding, log)
        if seeding.process is None or seeding.process.returncode not in (0, 143):
            raise keycloak_failure(seeding, "did not stop cleanly after importing the realm")
        (staging / "db").rename(seed)
    finally:
        stop_keycloak(seeding, log)
        shutil.rmtree(staging, ignore_errors=True)
    log(f"realm imported in {time.monotonic() - started_at:.1f}s")
    return seed


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _env(java_home: Path, extra_opts: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KC_")}  # nothing from a developer's shell
    env.update({"JAVA_HOME": str(java_home), "JAVA_OPTS_APPEND": f"{JVM_OPTS_APPEND} {extra_opts}".strip()})
    return env


def realm_client() -> tuple[str, str]:
    """The console client's id and test secret, as the realm file declares them."""
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    client = next(c for c in realm["clients"] if c["clientId"] == "gateway-console")
    return client["clientId"], client["secret"]


@dataclass
class Keycloak:
    """A Keycloak server of this run (``process`` is set once it has been spawned)."""

    root: Path
    port: int
    management_port: int
    process: subprocess.Popen[bytes] | None = None
    ready: bool = False
    started_at: float = 0.0

    @property
    def log_file(self) -> Path:
        return self.root / "keycloak.log"

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.port}/realms/{REALM}"

    def env(self) -> dict[str, str]:
        """What the tests read: the issuer and the console client's credentials."""
        client_id, secret = realm_client()
        return {ISSUER_ENV_VAR: self.issuer, CLIENT_ID_ENV_VAR: client_id, CLIENT_SECRET_ENV_VAR: secret}


def spawn_keycloak(keycloak: Keycloak, installation: Installation, preexec: Callable[[], None],
                   import_realm: bool = False) -> None:
    """Start the server on its own copy of the imported realm's database (or, ``import_realm``, on a fresh one
    importing the realm file) without waiting for it."""
    keycloak.root.mkdir(parents=True)
    dist, db = installation.dist, keycloak.root / "db"
    options = []
    if import_realm:
        db.mkdir()
        import_dir = dist / "data" / "import"
        import_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REALM_FILE, import_dir / REALM_FILE.name)
        options.append("--import-realm")
    else:
        shutil.copytree(installation.seed, db)
    cmd = [str(dist / "bin" / "kc.sh"), "start", "--optimized", *options, f"--db-url=jdbc:h2:file:{db / DB_NAME}"
           ";NON_KEYWORDS=VALUE", "--http-enabled=true", "--http-host=127.0.0.1", f"--http-port={keycloak.port}",
           f"--http-management-port={keycloak.management_port}", f"--hostname=http://localhost:{keycloak.port}"]
    private = (f"-Djava.io.tmpdir={keycloak.root} "
               f"-Dquarkus.transaction-manager.object-store.directory={keycloak.root / 'transaction-logs'}")
    keycloak.started_at = time.monotonic()
    with keycloak.log_file.open("wb") as output:
        keycloak.process = subprocess.Popen(  # noqa: S603
            cmd, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, cwd=keycloak.root,
            env=_env(installation.java_home, private), start_new_session=True, preexec_fn=preexec)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (a loopback URL of our own)
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (urllib.error.URLError, OSError):
        return 0, b""


def keycloak_failure(keycloak: Keycloak, reason: str) -> KeycloakError:
    try:
        lines = keycloak.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
    except OSError:
        lines = ["(no log)"]
    return KeycloakError(f"keycloak {reason}\n--- {keycloak.log_file} (tail) ---\n" + "\n".join(lines))


def wait_for_keycloak(keycloak: Keycloak, timeout: float = READY_TIMEOUT_S) -> float:
    """Poll until the server is ready and serves the realm; returns the seconds since it was spawned."""
    assert keycloak.process is not None
    deadline = keycloak.started_at + timeout
    discovery = f"http://127.0.0.1:{keycloak.port}/realms/{REALM}/.well-known/openid-configuration"
    while time.monotonic() < deadline:
        if keycloak.process.poll() is not None:
            raise keycloak_failure(keycloak, f"exited with code {keycloak.process.returncode} while starting")
        if _get(f"http://127.0.0.1:{keycloak.management_port}/health/ready")[0] == 200:
            status, body = _get(discovery)
            if status == 200 and json.loads(body).get("issuer") == keycloak.issuer:
                keycloak.ready = True
                return time.monotonic() - keycloak.started_at
            raise keycloak_failure(keycloak, f"is ready but its discovery document answers {status}: {body[:300]!r}")
        time.sleep(0.5)
    raise keycloak_failure(keycloak, f"not ready after {timeout:.0f}s")


def stop_keycloak(keycloak: Keycloak, log: Log) -> None:
    """SIGTERM the server (``kc.sh`` passes it on to the JVM: graceful shutdown); SIGKILL both after a timeout."""
    process = keycloak.process
    if process is None or process.poll() is not None:
        return
    started_at = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
        log(f"keycloak stopped in {time.monotonic() - started_at:.1f}s")
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # kc.sh and the JVM it started: its own process group
        process.wait()
        log(f"keycloak did not stop within {STOP_TIMEOUT_S:.0f}s; killed")


def main() -> int:
    """``python3 scripts/realinfra_keycloak.py build``: fetch and build Keycloak now (the test command does, so
    that a missing JDK or Maven shows before any test runs)."""
    import sys

    if sys.argv[1:] != ["build"]:
        print("usage: realinfra_keycloak.py build", file=sys.stderr)
        return 2
    try:
        made = ensure_keycloak(lambda line: print(f"[keycloak] {line}", file=sys.stderr, flush=True))
    except KeycloakError as exc:
        print(f"[keycloak] error: {exc}", file=sys.stderr)
        return 1
    print(f"{made.dist} (java: {made.java_home}, realm database: {made.seed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
