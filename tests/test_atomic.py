"""Atomic outputs: a failing or killed writer never leaves a partial file under the final name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from digit_recognizer import atomic


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


class Boom(Exception):
    pass


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("existing", [None, "old content\n"])
def test_failing_writer_leaves_no_partial_file(tmp_path, error, existing):
    # the final file is untouched (absent or the old bytes) and the temporary file is removed
    path = tmp_path / "out.csv"
    if existing is not None:
        path.write_text(existing)
    with pytest.raises(error):
        with atomic.atomic_open(path) as handle:
            handle.write("half of the new content")
            handle.flush()
            raise error()
    assert (path.read_text() if path.exists() else None) == existing
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "writer, suffix",
    [
        (lambda tmp: np.save(tmp, np.arange(3)), ".npy"),
        (lambda tmp: np.savez(tmp, a=np.arange(3)), ".npz"),
        (lambda tmp: tmp.write_bytes(b"abc"), ".bin"),
    ],
)
def test_atomic_path_keeps_the_suffix_writers_expect(tmp_path, writer, suffix):
    # numpy appends .npy/.npz unless the name already ends so: the temporary name keeps the suffix, so the
    # renamed file is the one written and nothing stray is left
    path = tmp_path / f"arrays{suffix}"
    with atomic.atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.endswith(suffix) and tmp.name.startswith(".")
        writer(tmp)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert path.stat().st_size > 0


def test_success_replaces_content_with_usual_permissions(tmp_path):
    # the new bytes replace the old in one rename; the mode is 0666 less the umask, not mkstemp's 0600
    path = tmp_path / "sub" / "data.json"
    atomic.write_json(path, {"a": 1})
    atomic.write_json(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert _leftovers(path.parent) == []


@pytest.mark.parametrize(
    "write, read",
    [
        (lambda p: atomic.write_text(p, "héllo\n"), lambda p: p.read_text(encoding="utf-8") == "héllo\n"),
        (lambda p: atomic.write_bytes(p, b"\x00\xff"), lambda p: p.read_bytes() == b"\x00\xff"),
    ],
)
def test_text_and_bytes_helpers(tmp_path, write, read):
    # the helpers write exactly the given text (UTF-8) or bytes
    path = tmp_path / "f"
    write(path)
    assert read(path)


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from digit_recognizer.atomic import atomic_open
    with atomic_open(Path(sys.argv[1])) as handle:
        for index in range(10 ** 6):
            handle.write(f"{index},new\\n")
            if index == 1000:
                handle.flush()
                print("writing", flush=True)
            if index > 1000:
                time.sleep(0.01)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_writer_leaves_the_old_file(tmp_path, sig):
    # kill -9 (or TERM) mid-write: the final name still holds the complete old file; at most a hidden
    # temporary file remains, which no reader takes for the output
    path = tmp_path / "submission.csv"
    path.write_text("ImageId,Label\n1,7\n")
    process = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "writing"
        time.sleep(0.05)
        process.send_signal(sig)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert path.read_text() == "ImageId,Label\n1,7\n"
    assert all(name.startswith(".submission.csv.") for name in _leftovers(tmp_path))


# ---------------------------------------------------------------- issue 13: unwritable folders, a full disk, outputs together
from digit_recognizer.errors import UserError  # noqa: E402


def _no_space(*args, **kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_full_disk_is_one_user_error_and_the_old_file_stays(tmp_path, monkeypatch, where):
    # ENOSPC while writing or syncing: a UserError naming the file and the fix; the old bytes and no temporary file
    path = tmp_path / "out.npy"
    path.write_bytes(b"old")
    if where == "fsync":
        monkeypatch.setattr(atomic.os, "fsync", _no_space)
    with pytest.raises(UserError, match=f"{path}: cannot write the file .*No space left on device.*free space"):
        with atomic.atomic_open(path, "wb") as handle:
            handle.write(b"new")
            if where == "write":
                _no_space()
    assert path.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_folder_that_is_a_file_is_one_user_error(tmp_path):
    # models/ (or submissions/) being a file: one line naming it, not a NotADirectoryError traceback
    (tmp_path / "models").write_text("x")
    with pytest.raises(UserError, match="models is a file, not a folder"):
        atomic.write_text(tmp_path / "models" / "t" / "config.json", "{}")


@pytest.mark.parametrize("failing", ["second-write", "target-is-a-folder", "error-after-writes"])
def test_together_replaces_all_or_none(tmp_path, failing):
    # inside together(), no file is replaced until every write of the block succeeded
    first, second = tmp_path / "a.csv", tmp_path / "sub" / "b.npy"
    second.parent.mkdir()
    first.write_text("old a")
    if failing == "target-is-a-folder":
        second.mkdir()
    else:
        second.write_bytes(b"old b")
    with pytest.raises((UserError, Boom)):
        with atomic.together():
            atomic.write_text(first, "new a")
            assert first.read_text() == "old a"  # not yet renamed
            if failing == "second-write":
                with atomic.atomic_open(second, "wb"):
                    _no_space()
            else:
                atomic.write_bytes(second, b"new b")
            if failing == "error-after-writes":
                raise Boom()
    assert first.read_text() == "old a"
    assert second.is_dir() if failing == "target-is-a-folder" else second.read_bytes() == b"old b"
    assert _leftovers(tmp_path) == [] and _leftovers(second.parent if not second.is_dir() else tmp_path / "sub") == []


def test_together_commits_every_file(tmp_path):
    # the block succeeding renames every file into place
    with atomic.together():
        atomic.write_text(tmp_path / "a.txt", "a")
        atomic.write_npy(tmp_path / "b.npy", np.arange(3))
    assert (tmp_path / "a.txt").read_text() == "a" and np.load(tmp_path / "b.npy").tolist() == [0, 1, 2]
    assert _leftovers(tmp_path) == []
