"""Atomic file writes: a file (or folder) is either its complete new version or untouched.

Everything is first written to a temporary name beside the destination, flushed to disk,
and renamed over it (``os.replace``, atomic on POSIX within one file system). On any
failure the temporary is removed and the destination is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path


def temp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_path(path, is_dir: bool = False):
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    The body writes the temporary (a file, or a folder with ``is_dir``). A file is
    fsynced before the rename. An existing destination folder is replaced.
    """
    path = Path(path)
    tmp = temp_beside(path)
    try:
        yield tmp
        if not is_dir:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        elif path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def emit_report(text: str, directory=None, name: str = "report.md") -> None:
    """Print ``text``; with ``directory``, also write it there as ``name`` (atomically,
    creating the directory): the benchmark scripts' ``--out``."""
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(directory) / name, text)
    print(text)


def read_json(path, label: str):
    """The JSON value in ``path``; a missing or unreadable file raises :class:`UserError`
    naming it as ``label`` (say ``quality file 'q.json'``)."""
    import json

    from mobile_enhance.errors import UserError

    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{label} does not exist") from None
    except (OSError, ValueError) as error:
        raise UserError(f"{label} is not readable JSON: {error}") from None
