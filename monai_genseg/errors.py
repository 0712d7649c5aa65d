"""One clear line for a user's mistake, instead of a traceback; a traceback stays for the bugs.

Bundle runs go through MONAI's runner and ignite, which wrap an error raised by a config's component
in several layers (``RuntimeError: Failed to instantiate component ...``). :func:`install` replaces
the process's exception hook: when the chain of causes holds an error this package raised for a
user (bad option, bad data, a file in the way, a full disk), that message is printed alone. Set
``MONAI_GENSEG_TRACEBACK=1`` to see the whole traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from types import TracebackType

from monai_genseg.runlock import RunLockError

# what the package raises for a user's mistake (bad option or data, a file in the way, a full disk, a folder
# in use); other exception types are bugs and keep their traceback
USER_ERRORS = (ValueError, OSError, RunLockError)
PACKAGE = os.path.dirname(os.path.abspath(__file__))
INTERRUPTED = "interrupted: the files in models/ are whole (the last checkpoint is kept); continue with --resume true"
_interrupted = "interrupted; no partial file was left"  # what Ctrl-C prints: install(resumable=True) in training


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ if exc.__cause__ is not None else None if exc.__suppress_context__ else exc.__context__


def _raised_here(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc`` is in this package."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and os.path.abspath(frames[-1].filename).startswith(PACKAGE)


def user_message(exc: BaseException) -> str | None:
    """The message of the outermost user error this package raised in ``exc``'s chain (MONAI's and ignite's
    wrappers skipped; where the package wrapped its own error, the wrapper says more), or None."""
    for e in _chain(exc):
        if isinstance(e, KeyboardInterrupt):
            return _interrupted
        if isinstance(e, USER_ERRORS) and _raised_here(e) and str(e).strip():
            ours = type(e).__module__.startswith(
                "monai_genseg"
            )  # DataCheckError, RunLockError: the kind says something
            return f"error: {type(e).__name__ + ': ' if ours else ''}{e}"
    return None


def _hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    message = None if os.environ.get("MONAI_GENSEG_TRACEBACK") else user_message(exc)
    if message is None:
        sys.__excepthook__(exc_type, exc, tb)
        return
    print(message, file=sys.stderr)
    if not isinstance(exc, KeyboardInterrupt) and message != _interrupted:
        print("(set MONAI_GENSEG_TRACEBACK=1 for the traceback)", file=sys.stderr)


def _terminate(signum: int, frame) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: partial files are removed, locks released, one line printed


def install(resumable: bool = False) -> None:
    """One-line user errors for this process, and SIGTERM handled like Ctrl-C (main thread only).
    ``resumable``: a training run, whose interruption line says how to continue it."""
    global _interrupted
    _interrupted = INTERRUPTED if resumable else "interrupted; no partial file was left"
    sys.excepthook = _hook
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (e.g. inside a server): signals stay as they are
        pass
