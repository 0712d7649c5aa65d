"""One run per bundle folder: a second run is refused at once and told who holds it; stale locks are explained."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from monai_genseg.runlock import LOCK_NAME, RunLockError, acquire_run_lock, release_run_locks


def _lock_in_child(folder) -> subprocess.CompletedProcess:
    code = "import sys; from monai_genseg.runlock import acquire_run_lock; acquire_run_lock(sys.argv[1])"
    return subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=120)


def test_a_second_process_is_refused_naming_the_holder_and_the_lock_goes_at_exit(tmp_path):
    path = acquire_run_lock(tmp_path)
    try:
        assert acquire_run_lock(tmp_path) == path  # re-entrant in one process (MONAI Label retrains in its server)
        proc = _lock_in_child(tmp_path)
        assert proc.returncode != 0
        assert f"is in use by PID {os.getpid()} on host {socket.gethostname()}" in proc.stderr
    finally:
        release_run_locks()
    assert not path.exists()
    assert _lock_in_child(tmp_path).returncode == 0 and not (tmp_path / LOCK_NAME).exists()  # released at exit


@pytest.mark.parametrize("record", ["dead", "garbage"])
def test_a_stale_lock_is_explained_and_taken_over(tmp_path, record, caplog):
    lock = tmp_path / LOCK_NAME
    if record == "dead":
        lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname(), "started": "yesterday"}))
    else:
        lock.write_text("{half a reco")
        os.utime(lock, (0, 0))  # old: not a lock being written this moment
    try:
        assert acquire_run_lock(tmp_path) == lock
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    finally:
        release_run_locks()
    assert "stale lock" in caplog.text and "taking it over" in caplog.text


def test_a_lock_from_another_host_is_not_taken(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "now"}))
    with pytest.raises(RunLockError, match=f"in use by PID 1 on host elsewhere.*delete {tmp_path / LOCK_NAME}"):
        acquire_run_lock(tmp_path)


def test_an_unwritable_folder_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError, match="a_file/root: cannot write there .*pass another --bundle_root"):
        acquire_run_lock(blocker / "root")
