"""HAPI FHIR's official R4 validator, run as one real JVM per test session and fed many resources.

``infra/hapi/pom.xml`` resolves ``ca.uhn.hapi.fhir:hapi-fhir-validation`` with the R4 core definitions
(``hapi-fhir-validation-resources-r4``) from Maven Central and compiles a small line-protocol runner
(``infra/hapi/src/main/java``): one resource per line in, one line of issues out. Everything it checks against
is in those jars (no terminology server, no FHIR package registry), so it runs offline. :func:`build` runs Maven
when the jars are missing or the pom or runner changed (a stamp file holds their digest); the test command
(``scripts/test.sh``) calls it before the tests, and the ``hapi_validator`` fixture calls it again, so a fresh
machine gets the validator either way.

``python -m tests.hapi_validator build`` builds; ``python -m tests.hapi_validator check FILE...`` prints what
the validator says about each FHIR JSON file.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["HAPI_DIR", "HapiValidator", "Issue", "ValidatorUnavailable", "build", "errors_of"]

ROOT = Path(__file__).resolve().parent.parent
HAPI_DIR = ROOT / "infra" / "hapi"
TARGET = HAPI_DIR / "target"
RUNNER_JAR = TARGET / "fhir-validator.jar"
LIBS = TARGET / "hapi-libs"
STAMP = TARGET / ".build.sha256"
MAIN_CLASS = "local.gateway.fhirvalidator.ValidatorServer"
STARTUP_TIMEOUT_S = 300.0
"""The JVM loads every R4 definition before it answers; on two busy cores that takes 15-60 s."""
REPLY_TIMEOUT_S = 120.0


class ValidatorUnavailable(RuntimeError):
    """Java or Maven is missing, or the build or the JVM failed: the message says which and how."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One validator message: ``severity`` fatal / error / warning / information, FHIRPath ``location``."""

    severity: str
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity} {self.location}: {self.message}"


def errors_of(issues: Iterable[Issue]) -> list[Issue]:
    """The issues that make a resource invalid (error and fatal); warnings and information are advice."""
    return [issue for issue in issues if issue.severity in ("error", "fatal")]


def _digest() -> str:
    sha = hashlib.sha256()
    for path in sorted([HAPI_DIR / "pom.xml", *(HAPI_DIR / "src").rglob("*")]):
        if path.is_file():
            sha.update(str(path.relative_to(HAPI_DIR)).encode())
            sha.update(path.read_bytes())
    return sha.hexdigest()


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise ValidatorUnavailable("java is not on PATH (Java 17+ runs HAPI FHIR's validator)")
    return java


def build() -> Path:
    """Build the validator runner and its jars with Maven unless they are up to date; returns the target dir."""
    digest = _digest()
    if RUNNER_JAR.exists() and LIBS.is_dir() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return TARGET
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ValidatorUnavailable("Maven (mvn) is not on PATH; it fetches HAPI FHIR's validator from Maven Central")
    done = subprocess.run([mvn, "-B", "-q", "-f", str(HAPI_DIR / "pom.xml"), "package"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ValidatorUnavailable(f"maven build of infra/hapi failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    if not RUNNER_JAR.exists() or not any(LIBS.glob("hapi-fhir-validation-*.jar")):
        raise ValidatorUnavailable(f"maven succeeded but {TARGET} holds no runner or no hapi-fhir-validation jar")
    STAMP.write_text(digest + "\n")
    return TARGET


class HapiValidator:
    """One running validator JVM. :meth:`validate` sends resources and returns the issues of each, in order."""

    def __init__(self) -> None:
        build()
        command = [_java(), "-Xss4m", "-Xmx1g", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                   "-cp", f"{RUNNER_JAR}{os.pathsep}{LIBS}/*", MAIN_CLASS]
        started = time.monotonic()
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True, encoding="utf-8", bufsize=1)
        self._stderr: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        assert self._process.stderr is not None and self._process.stdout is not None
        threading.Thread(target=self._drain, args=(self._process.stderr,), daemon=True).start()
        threading.Thread(target=self._read_stdout, args=(self._process.stdout,), daemon=True).start()
        ready = self._read_line(STARTUP_TIMEOUT_S)
        if not ready.get("ready"):
            self.close()
            raise ValidatorUnavailable(f"the validator did not start: {ready}")
        self.startup_seconds = time.monotonic() - started
        """Wall time from launching the JVM to its first answer (all R4 definitions loaded)."""
        self.checked = 0
        """Resources validated so far (a Bundle counts once)."""
        self.errors_found = 0
        """Errors and fatal issues found so far in resources meant to be valid."""
        self.errors_expected = 0
        """Errors found in resources broken on purpose (invalid golden examples)."""

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self._stderr.append(line)
            del self._stderr[:-50]

    def _read_stdout(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put("")  # end of stream: the JVM exited

    def _read_line(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line:
            tail = "".join(self._stderr[-20:])
            raise ValidatorUnavailable(f"the validator JVM gave no answer within {timeout:.0f} s "
                                       f"(exit code {self._process.poll()}):\n{tail}")
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    def validate(self, resources: Iterable[Mapping[str, Any]], *, broken: bool = False) -> list[list[Issue]]:
        """The validator's issues for each resource (FHIR R4 JSON objects), in the order given; ``broken`` when
        they are invalid on purpose (their errors are counted apart)."""
        assert self._process.stdin is not None
        answers = []
        for resource in resources:
            self._process.stdin.write(json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n")
            self._process.stdin.flush()
            reply = self._read_line(REPLY_TIMEOUT_S)
            issues = [Issue(i["severity"], i["location"], i["message"]) for i in reply["issues"]]
            answers.append(issues)
            self.checked += 1
            if broken:
                self.errors_expected += len(errors_of(issues))
            else:
                self.errors_found += len(errors_of(issues))
        return answers

    def errors(self, resource: Mapping[str, Any]) -> list[Issue]:
        """Only the errors (and fatal issues) the validator finds in one resource."""
        return errors_of(self.validate([resource])[0])

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for stream in (self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()


def main(argv: list[str]) -> int:
    if argv[:1] == ["build"]:
        print(f"HAPI FHIR validator ready in {build()}")
        return 0
    if argv[:1] == ["check"] and len(argv) > 1:
        validator = HapiValidator()
        print(f"validator started in {validator.startup_seconds:.1f} s")
        failed = 0
        for name, issues in zip(argv[1:], validator.validate(json.loads(Path(n).read_text()) for n in argv[1:]),
                                strict=True):
            errors = errors_of(issues)
            failed += bool(errors)
            print(f"{name}: {len(errors)} error(s), {len(issues) - len(errors)} other message(s)")
            for issue in issues:
                print(f"  {issue}")
        validator.close()
        return 1 if failed else 0
    print("usage: python -m tests.hapi_validator build | check FILE...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
