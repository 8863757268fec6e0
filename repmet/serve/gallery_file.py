"""The service's gallery file: the source of truth, shared by every replica that names it.

- A change (enroll, remove) is made under an exclusive lock on ``FILE.lock`` (``fcntl.flock``:
  across threads and processes), starting from the newest file, and is saved atomically
  (:func:`repmet.atomic_write.atomic_write`) *before* it is acknowledged; if the save fails, the
  change is undone in memory too. A ``kill -9`` at any moment therefore leaves the old file or the
  new one, and loses at most the change in flight, which was never acknowledged.
- Before each request a replica compares the file's identity (inode, size, mtime: an atomic
  rename gives a new inode) with the one it serves, and reloads it when another replica changed
  it: an enroll on one replica is served by every other from their next request on.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from repmet.errors import UserError


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class GalleryFile:
    """``GalleryFile(runtime, path)``: loads ``path`` into ``runtime`` if it exists (else the
    runtime keeps the artifact's trained gallery until the first change is saved there)."""

    def __init__(self, runtime, path: Path | None) -> None:
        self.runtime, self.path = runtime, path
        self._thread_lock = threading.Lock()  # flock is per open file; threads also queue here
        self._served: tuple[int, int, int] | None = None
        self.version = 0  # changes seen by this process (saved here or reloaded from another replica)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked():
                self._reload_if_changed()

    def refresh(self) -> None:
        """Serve the newest file (cheap when nothing changed: one stat)."""
        if self.path is None or _identity(self.path) == self._served:
            return
        with self._locked():
            self._reload_if_changed()

    def change(self, apply: Callable[[object], object]) -> object:
        """``apply(runtime)`` (e.g. an enroll), persisted before it returns; undone if it cannot be."""
        with self._locked():
            self._reload_if_changed()
            before = self.runtime.gallery
            result = apply(self.runtime)
            if self.path is not None:
                try:
                    self.runtime.save_gallery(self.path)
                except Exception:
                    self.runtime.galleries.replace(before)
                    raise
                self._served = _identity(self.path)
            self.version += 1
            return result

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            if self.path is None:
                yield
                return
            lock_path = self.path.with_name(self.path.name + ".lock")
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise UserError(f"cannot open the gallery lock {lock_path} ({exc}); the gallery's folder must be "
                                f"writable") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the lock

    def _reload_if_changed(self) -> None:
        if self.path is None:
            return
        identity = _identity(self.path)
        if identity is None or identity == self._served:
            return
        self.runtime.load_gallery(self.path)  # refused (a sentence) if made with another model
        self._served = identity
        self.version += 1
