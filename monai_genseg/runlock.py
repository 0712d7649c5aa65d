"""One run per bundle folder: a lock file held from the start of a run to its end.

Two trainings into one ``bundle_root`` would overwrite each other's ``model.pt`` and mix their
synthetic pairs, and the overwrite guard only sees a checkpoint once the first epoch has ended. The
lock is taken before any data is read; a second run refuses at once and names the holder.
"""

from __future__ import annotations

import atexit
import errno
import json
import logging
import os
import socket
import time
from pathlib import Path

LOCK_NAME = ".genseg_run.lock"
logger = logging.getLogger(__name__)
_held: dict[Path, int] = {}  # lock files this process holds -> the pid that took them


class RunLockError(RuntimeError):
    """Another run holds the folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def acquire_run_lock(folder: str | os.PathLike, what: str = "training") -> Path:
    """Create ``folder/.genseg_run.lock`` naming this process, or refuse while another live run holds it.

    A lock left by a process that no longer runs on this host (killed with SIGKILL, a crash of the
    machine) is stale: it is taken over with a warning in the log. A lock from another host cannot be
    checked; the message says how to remove it. Released when the process exits. Taking it also proves
    the folder is writable, before any training: a read-only folder or a full disk is reported here.
    """
    folder = Path(folder).expanduser().resolve()
    path = folder / LOCK_NAME
    if _held.get(path) == os.getpid():
        return path  # this process holds it already (MONAI Label retrains in one server process)
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "what": what,
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        holder = _read(path)
        if not _stale(path, holder):
            raise RunLockError(
                f"{folder} is in use by PID {holder.get('pid')} on host {holder.get('host')} "
                f"({holder.get('what', 'a run')} started {holder.get('started', '?')}): wait for it, "
                f"pass another --bundle_root, or delete {path} if that run is gone."
            ) from None
        who = f"PID {holder.get('pid')} (started {holder.get('started', '?')})" if holder else "no readable owner"
        logger.warning(f"{path}: stale lock of {who}, which no longer runs; taking it over.")
        _take_over(path, record)
        return path
    except OSError as e:
        raise _unwritable(folder, e) from e
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
    except OSError as e:
        path.unlink(missing_ok=True)
        raise _unwritable(folder, e) from e
    _held[path] = os.getpid()
    return path


def _stale(path: Path, holder: dict) -> bool:
    """A lock whose run cannot be running: its process is gone from this host (or this process's own PID,
    left by an earlier life of a restarted container), or nobody readable owns it for 10 s."""
    try:
        pid = int(holder["pid"])
    except (KeyError, TypeError, ValueError):
        return time.time() - _mtime(path) > 10  # not one being written this moment
    return holder.get("host") == socket.gethostname() and (pid == os.getpid() or not _alive(pid))


def _take_over(path: Path, record: dict) -> None:
    """Replace a stale lock in one rename, then check no other run replaced it at the same moment."""
    tmp = path.with_name(f"{LOCK_NAME}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)
    if _read(path).get("pid") != os.getpid():
        raise RunLockError(f"{path.parent}: another run took over its stale lock at the same moment; wait for it.")
    _held[path] = os.getpid()


def _unwritable(folder: Path, e: OSError) -> OSError:
    error = OSError(f"{folder}: cannot write there ({os.strerror(e.errno or errno.EIO)}); pass another --bundle_root")
    error.errno = e.errno
    return error


def release_run_locks() -> None:
    """Remove the lock files this process holds (at exit; a forked child holds none)."""
    for path, pid in list(_held.items()):
        if pid == os.getpid():
            if _read(path).get("pid") == pid:
                path.unlink(missing_ok=True)
            del _held[path]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def _read(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


atexit.register(release_run_locks)
