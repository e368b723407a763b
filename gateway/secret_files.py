"""Files that hold secrets (client secrets, keys) are created readable by their owner only.

The mode is set when the file is created, not with a ``chmod`` afterwards, so there is no moment at which
another local user could open it; a file that already exists is narrowed to 0600 before it is rewritten.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_secret_file"]


def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` with mode 0600."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
