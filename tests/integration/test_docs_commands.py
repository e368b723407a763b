"""Every shell command shown in the README and in ``docs/`` runs, so the manuals cannot rot.

The convention is written at the top of ``docs/README.md``: fenced blocks tagged ``sh``, ``bash``, ``shell`` or
``console`` are run in page order, in one scratch directory per page holding a copy of ``contracts/``, on the
embedded defaults (no ``GATEWAY_`` variable), with the installed ``gateway`` on the ``PATH``. HTML comments just
above a block say what its output must contain (``<!-- expect: TEXT -->``), which exit status it must end with
(``<!-- exit: N -->``), or why it is not run (``<!-- not-run: REASON -->``). Pages added later are picked up by
the glob below, with the same convention.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})
BLOCK_TIMEOUT_S = 180
BASH = shutil.which("bash") or "/bin/bash"
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*(?P<name>expect|exit|not-run)\s*:\s*(?P<value>.*?)\s*-->\s*$")


@dataclass
class Block:
    """One fenced block of a page, with the markers written just above it."""

    page: Path
    line: int
    language: str
    text: str
    expect: list[str] = field(default_factory=list)
    exit_status: int = 0
    not_run: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def script(self) -> str:
        """The commands: the block as it is, or a console block's ``$ `` lines."""
        if self.language != "console":
            return self.text
        return "\n".join(line.strip()[2:] for line in self.text.splitlines() if line.strip().startswith("$ "))


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, each with the marker comments on the lines just above it."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    markers: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        marker = _MARKER.match(lines[i])
        if marker:
            markers.append((marker["name"], marker["value"]))
        elif fence:
            indent, closing = len(fence["indent"]), fence["fence"]
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(closing):
                body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i].lstrip())
                i += 1
            block = Block(page, i - len(body), fence["lang"].lower(), "\n".join(body) + "\n")
            for name, value in markers:
                if name == "expect":
                    block.expect.append(value)
                elif name == "exit":
                    block.exit_status = int(value)
                else:
                    block.not_run = value
            found.append(block)
            markers = []
        elif lines[i].strip():
            markers = []  # markers belong to the block right below them, blank lines aside
        i += 1
    return found


def shell_blocks(page: Path) -> list[Block]:
    return [b for b in blocks_of(page) if b.language in SHELL_LANGUAGES]


def scratch_environment(directory: Path) -> dict[str, str]:
    """The environment a reader has after the install: the project's commands on the PATH, no gateway settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", HOME=str(directory),
               REPOSITORY=str(ROOT), COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1")
    return env


@pytest.mark.slow  # runs the gateway command some thirty times, the demo twice
@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_of_the_page_runs(page: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "contracts", tmp_path / "contracts")
    env = scratch_environment(tmp_path)
    for block in shell_blocks(page):
        if block.not_run is not None:
            continue
        assert block.script.strip(), f"{block.where}: a shell block with no command"
        done = subprocess.run([BASH, "-e", "-o", "pipefail", "-c", block.script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S, check=False)
        output = done.stdout + done.stderr
        assert done.returncode == block.exit_status, (
            f"{block.where} exited {done.returncode}, not {block.exit_status}:\n{block.script}\n{output[-3000:]}")
        assert output.strip(), f"{block.where} printed nothing; show a command whose output says what it did"
        missing = [text for text in block.expect if text not in output]
        assert missing == [], f"{block.where} did not print {missing}:\n{block.script}\n{output[-3000:]}"


def test_blocks_not_run_say_why_and_stay_few() -> None:
    blocks = [b for page in pages() for b in shell_blocks(page)]
    skipped = [b for b in blocks if b.not_run is not None]
    assert all(b.not_run for b in skipped), [b.where for b in skipped if not b.not_run]
    assert len(blocks) >= 20  # the manuals show their commands as blocks, not only inline
    assert len(skipped) * 4 <= len(blocks), f"{len(skipped)} of {len(blocks)} shell blocks are not run"


def test_markers_sit_on_shell_blocks_only() -> None:
    """An expectation above an output block would be silently ignored: it must sit on a shell block."""
    misplaced = [b.where for page in pages() for b in blocks_of(page)
                 if b.language not in SHELL_LANGUAGES and (b.expect or b.not_run is not None or b.exit_status)]
    assert misplaced == []


_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def anchors_of(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_links_stay_inside_the_repository_and_resolve() -> None:
    broken = []
    for page in pages():
        for match in _LINK.finditer(page.read_text(encoding="utf-8")):
            target = match["target"]
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.is_relative_to(ROOT):
                broken.append(f"{page.relative_to(ROOT)}: {target} points outside the repository")
            elif not path.exists():
                if path.name not in OTHERS_PAGES:
                    broken.append(f"{page.relative_to(ROOT)}: {target} does not exist")
            elif anchor and path.suffix == ".md" and anchor not in anchors_of(path):
                broken.append(f"{page.relative_to(ROOT)}: {target} names no heading of {path.name}")
    assert broken == []


OTHERS_PAGES = frozenset({"console.md"})
"""Pages linked before they are written (the privacy console's manual); a link to any other missing file fails."""


def test_the_readme_is_the_front_door() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 130
    assert "```mermaid" in readme  # the picture of the flow
    for page in ("docs/integrators.md", "docs/operators.md", "docs/privacy-officers.md", "docs/architecture.md"):
        assert f"]({page}" in readme, f"the README does not point to {page}"


def test_the_convention_reads_a_page_as_docs_README_describes_it(tmp_path: Path) -> None:
    page = tmp_path / "new-page.md"
    page.write_text(
        "# A page added later\n\n"
        "<!-- expect: hello -->\n<!-- exit: 3 -->\n\n```sh\necho hello; exit 3\n```\n\n"
        "1. In a list:\n\n   <!-- not-run: needs a running API -->\n"
        "   ```bash\n   curl http://127.0.0.1:8080\n   ```\n\n"
        "<!-- expect: stale -->\nA paragraph in between drops the marker.\n\n"
        "```console\n$ gateway --help\nUsage: gateway\n```\n\n```text\nnot a command\n```\n",
        encoding="utf-8")
    first, listed, console, output = blocks_of(page)
    assert (first.expect, first.exit_status, first.not_run, first.line) == (["hello"], 3, None, 6)
    assert (listed.language, listed.not_run, listed.text) == ("bash", "needs a running API",
                                                              "curl http://127.0.0.1:8080\n")
    assert (console.expect, console.script) == ([], "gateway --help")
    assert output.language == "text" and [b.language for b in shell_blocks(page)] == ["sh", "bash", "console"]
