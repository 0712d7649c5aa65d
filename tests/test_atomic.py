"""A write that fails (full disk, read-only folder) names the file and the cause, keeps the old file and leaves no
partial one."""

from __future__ import annotations

import errno

import pytest

from monai_genseg.atomic import atomic_write, atomic_write_text


@pytest.mark.parametrize(
    "code,why", [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "the file system is read-only")]
)
def test_a_failed_write_keeps_the_old_file_and_says_why(tmp_path, code, why):
    target = atomic_write_text(tmp_path / "model.pt", "old weights")

    def fill_the_disk(f):
        f.write(b"half of the new weights")
        raise OSError(code, "low-level message")

    with pytest.raises(OSError, match=f"model.pt: not written, {why}; the previous file is kept") as err:
        atomic_write(target, fill_the_disk)
    assert err.value.errno == code
    assert target.read_text() == "old weights" and [p.name for p in tmp_path.iterdir()] == ["model.pt"]
