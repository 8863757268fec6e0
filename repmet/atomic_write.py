"""Writing a file so that a crash at any moment leaves the old file or the new one, never half
of one. Needs only the standard library (the runtime uses it without torch)."""

from __future__ import annotations

import os
import tempfile
from glob import escape as glob_escape
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


@contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary file in ``path``'s folder; when the block ends without an error it is
    flushed, fsynced, made an ordinary 0644 file and renamed over ``path``; otherwise removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphaned_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes files private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_orphaned_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files that writes of ``path`` left when their process was killed: each
    carries its writer's process id, and only those of processes that no longer run are removed
    (a save in progress elsewhere on this machine keeps its file). Returns what was removed."""
    removed = []
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        writer = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if writer.isdigit() and int(writer) != os.getpid() and not _running(int(writer)) and tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or not ours to judge: keep its file
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files of writes that never finished (a process killed mid-write) in
    ``folder``; returns what was removed. Only for folders one writer owns (a locked run folder)."""
    if not folder.is_dir():
        return []
    stale = sorted(p for p in folder.glob(".*.tmp") if p.is_file())
    for path in stale:
        path.unlink()
    return stale
