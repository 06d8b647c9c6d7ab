"""Atomic, durable file writes: the one helper every output of pinnkit goes through.

A file is written to a temporary name in its own folder, flushed to disk (``fsync``), given
the permissions a plain ``open`` would give (0666 minus the umask, not mkstemp's 0600), and
renamed over the target (``os.replace``, atomic on POSIX); the folder entry is then synced
too. On any failure the temporary file is removed and the previous file stays as it was;
an operating-system error (full disk, quota, a directory in the way) becomes one
`WriteError` naming the file.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from .errors import WriteError

__all__ = ["atomic_path", "atomic_write", "write_bytes", "write_text", "file_mode"]


def file_mode() -> int:
    """0o666 minus the process umask (what ``open(path, "w")`` would create)."""
    try:
        with open("/proc/self/status") as fh:      # Linux: read it without changing it
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)      # elsewhere: the classic set-and-restore
    os.umask(mask)
    return 0o666 & ~mask


def _reason(exc: OSError) -> str:
    if exc.errno == _errno.ENOSPC:
        return "no space left on device"
    if exc.errno == _errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno == _errno.EFBIG:
        return "file too large for this file system or process limit"
    return exc.strerror or str(exc) or type(exc).__name__


def _write_error(path: Path, exc: OSError) -> WriteError:
    err = WriteError(f"cannot write {path}: {_reason(exc)}; the previous file (if any) is "
                     "unchanged")
    err.path, err.errno = path, exc.errno
    return err


def _check_target(path: Path) -> None:
    if path.is_dir():
        raise WriteError(f"cannot write {path}: a directory of that name is in the way "
                         "(move or remove it)")


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:         # e.g. no permission to open folders for reading: best effort
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(tmp: str, path: Path) -> None:
    os.chmod(tmp, file_mode())
    os.replace(tmp, path)
    _sync_dir(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that takes a file name (h5py,
    matplotlib); on success it is synced and renamed over ``path``."""
    path = Path(path)
    _check_target(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _commit(tmp, path)
    except WriteError:
        raise
    except OSError as exc:
        raise _write_error(path, exc) from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Yield an open file (``mode`` "wb" or "w") whose contents replace ``path`` atomically
    when the block ends without an error."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically and durably (`atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` by ``text`` (UTF-8) atomically and durably (`atomic_write`)."""
    write_bytes(path, text.encode("utf-8"))
