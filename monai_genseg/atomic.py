"""Files written whole or not at all: every checkpoint, progress file and generated bundle file goes through here.
A failed write names the file and the cause in one line (a full disk, a read-only folder) and keeps the old file."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write`` on a temporary file in ``path``'s folder, flush it to disk, then rename it over ``path``.

    A reader (or a resumed run after a crash) sees the old file or the new one, never a partial one; a
    failed write removes its temporary file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _not_written(path, e) from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # what open() would have given the file
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno in WHY_NOT_WRITTEN:
            raise _not_written(path, e) from e
        raise
    return path


WHY_NOT_WRITTEN = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
}


def _not_written(path: Path, e: OSError) -> OSError:
    """One line: which file, why, and that the previous one is kept."""
    why = WHY_NOT_WRITTEN.get(e.errno, e.strerror or str(e))
    error = OSError(f"{path}: not written, {why}; the previous file is kept")
    error.errno = e.errno
    return error


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_copy(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy a file with :func:`atomic_write`: an interrupted copy leaves no partial target."""
    with open(source, "rb") as src:
        return atomic_write(target, lambda f: shutil.copyfileobj(src, f, 1 << 20))


def md5sum(path: str | os.PathLike) -> str:
    """The md5 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
