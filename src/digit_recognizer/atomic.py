"""Atomic file output: write to a temporary name in the same folder, then rename.

A killed process never leaves a half-written file under the final name. A write that fails (a folder that
cannot be created or written, a full disk) is one :class:`~digit_recognizer.errors.UserError` naming the file,
and the file it would have replaced is untouched. Inside :func:`together`, the renames of every file written
in the block wait until the block succeeds, so a command's outputs replace the previous ones all or none.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_pending: contextvars.ContextVar[list | None] = contextvars.ContextVar("pending_renames", default=None)


def _cannot_write(path: Path, error: OSError):
    from digit_recognizer.errors import UserError, quote

    return UserError(f"{path}: cannot write the file ({quote(error)}); check the folder's permissions and free space")


@contextlib.contextmanager
def together() -> Iterator[None]:
    """Files written atomically inside this block are renamed into place only when the whole block succeeds;
    if any write fails, none of them replaces its file."""
    if _pending.get() is not None:  # nested: the outer block commits
        yield
        return
    pending: list[tuple[Path, Path]] = []
    token = _pending.set(pending)
    try:
        yield
        _pending.reset(token)
        token = None
        for _tmp, path in pending:  # a folder in a file's place would fail its rename part-way: refuse it first
            if path.is_dir():
                raise _cannot_write(path, IsADirectoryError(21, "is a directory"))
        for index, (tmp, path) in enumerate(pending):
            try:
                os.replace(tmp, path)
            except OSError as error:
                for leftover, _ in pending[index:]:
                    with contextlib.suppress(OSError):
                        leftover.unlink()
                raise _cannot_write(path, error) from None
    except BaseException:
        for tmp, _ in pending:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    finally:
        if token is not None:
            _pending.reset(token)


def ensure_folder(folder: Path) -> Path:
    """Create ``folder`` (and its parents) if needed, or one line saying why it cannot be."""
    from digit_recognizer.errors import UserError, quote

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocker = next(
            (parent for parent in (folder, *folder.parents) if parent.exists() and not parent.is_dir()), None
        )
        reason = f"{blocker} is a file, not a folder" if blocker else quote(error)
        raise UserError(f"{folder}: cannot create the folder ({reason})") from None
    return folder


def check_writable_folder(folder: Path) -> Path:
    """Refuse, before a long job, an output folder that cannot be created or written (a file in its place, no
    write permission), without creating anything."""
    from digit_recognizer.errors import UserError

    folder = Path(folder)
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        raise UserError(f"{folder}: cannot create the folder ({existing} is a file, not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{folder}: cannot write there ({existing} is not writable); check the folder's permissions")
    return folder


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` defaults to the final file's suffix, so writers that check the
    extension (``model.save`` wants ``.keras``, ``savefig`` infers the format) work.
    """
    path = Path(path)
    ensure_folder(path.parent)
    suffix = path.suffix if suffix is None else suffix
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    except OSError as error:
        raise _cannot_write(path, error) from None
    os.close(fd)
    tmp = Path(tmp_name)
    pending = _pending.get()
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        try:
            yield tmp
            _fsync_file(tmp)
        except OSError as error:
            raise _cannot_write(path, error) from None
        if pending is not None:
            pending.append((tmp, path))
            return
        try:
            os.replace(tmp, path)
        except OSError as error:
            raise _cannot_write(path, error) from None
    finally:
        if (pending is None or (tmp, path) not in pending) and tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(
    path: Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None
) -> Iterator[io.IOBase]:
    """Open a temporary file for writing; it replaces ``path`` only when the block succeeds."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding, newline=newline) as handle:
            yield handle


def write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_npy(path: Path, array) -> None:
    import numpy as np

    with atomic_path(path) as tmp:  # the temporary name keeps the .npy suffix, so np.save adds none
        np.save(tmp, array)


def write_npz(path: Path, **arrays) -> None:
    import numpy as np

    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def write_json(path: Path, data: object) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
