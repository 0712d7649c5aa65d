"""A user's mistake is one line; a bug keeps its traceback; Ctrl-C and SIGTERM say how to go on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from monai_genseg.errors import INTERRUPTED, user_message


def _wrapped(inner: BaseException) -> BaseException:
    """What MONAI's config parser makes of an error raised while instantiating a component."""
    try:
        try:
            raise inner
        except BaseException as e:
            raise RuntimeError("Failed to instantiate component 'x' with keywords: a,b") from e
    except RuntimeError as outer:
        return outer


def test_the_innermost_package_error_is_the_line():
    from monai_genseg.bundle import flag

    try:
        flag("overwrite", "maybe")
    except ValueError as e:
        error = e
    assert (
        user_message(_wrapped(error))
        == "error: --overwrite 'maybe' is not true or false (also accepted: yes/no, 1/0, on/off)."
    )
    assert user_message(_wrapped(ValueError("raised outside the package"))) is None  # a bug: keep the traceback
    assert user_message(KeyboardInterrupt()).startswith("interrupted")


def test_sigterm_and_ctrl_c_end_a_process_with_one_line(tmp_path):
    code = (
        "import time, monai_genseg.errors as e; e.install(resumable=True); print('ready', flush=True)\n"
        "while True: time.sleep(0.05)"
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # a suite started in the background (cmd &) inherits SIGINT ignored, and Python keeps it so: a
            # user's Ctrl-C reaches a process in the foreground, which is what this test stands for
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.1)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
        assert err.strip() == INTERRUPTED and proc.returncode != 0, err
