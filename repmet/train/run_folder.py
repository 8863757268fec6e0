"""A run's output folder, owned by one training process at a time.

``claim`` refuses a folder that already holds a run unless the run is resumed (``--resume``)
or replaced (``--overwrite``), and locks it while the run writes: a second ``metric-train`` on
the same ``--out`` stops instead of mixing its checkpoints into the first one's. The lock is an
``flock`` on ``OUT/.lock``, which the kernel releases when the process dies, so a run killed
with ``kill -9`` leaves no lock that blocks the next one; its lock file (holding the dead
process's id) is reported as stale and taken over, and the temporary files of a checkpoint
write it was killed in are removed.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Callable, TextIO

from repmet.checkpoint import clean_checkpoint_folder
from repmet.errors import UserError

LOCK_FILE = ".lock"
RUN_FILES = ("checkpoints", "metrics.jsonl", "tb", "config.yaml")  # what a run writes, all that --overwrite removes


class RunFolder:
    def __init__(self, out_dir: Path, log: Callable[[str], None] = print) -> None:
        self.out_dir, self.log = Path(out_dir), log
        self._lock_handle: TextIO | None = None
        self.created = False

    def holds_a_run(self) -> bool:
        return (self.out_dir / "checkpoints" / "last.pt").is_file() or (self.out_dir / "metrics.jsonl").is_file()

    def would_overwrite(self) -> list[str]:
        """The names in this folder that a run writes (or ``--overwrite`` removes): a user's own
        ``config.yaml`` or ``checkpoints/best.pt`` counts as much as an earlier run's."""
        found = []
        for name in RUN_FILES:
            path = self.out_dir / name
            if path.is_dir() and any(p for p in path.iterdir() if not p.name.startswith(".")):
                found.append(f"{name}/")
            elif path.exists() and not path.is_dir():
                found.append(name)
        return found

    def claim(self, resume: bool, overwrite: bool) -> None:
        """Lock the folder for this process, then check it against ``resume`` / ``overwrite``."""
        if resume and overwrite:
            raise UserError("--resume and --overwrite contradict each other: choose one")
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise UserError(f"--out {self.out_dir} is a file; choose a folder")
        self.created = not self.out_dir.exists()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock()
        if self.holds_a_run() and not (resume or overwrite):
            self.release()
            raise UserError(f"{self.out_dir} already holds a training run ({self._describe_run()}); continue it with "
                            f"--resume, replace it with --overwrite, or choose another --out")
        taken = self.would_overwrite()
        if taken and not (resume or overwrite):
            self.release()
            raise UserError(f"{self.out_dir} already holds {', '.join(taken)}, which a run writes; nothing was "
                            f"changed. Choose another --out, or pass --overwrite to replace them")
        if overwrite:
            for name in RUN_FILES:
                path = self.out_dir / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        for stale in clean_checkpoint_folder(self.out_dir):
            self.log(f"removed {stale}, left by a run killed while writing a checkpoint")

    def _lock(self) -> None:
        path = self.out_dir / LOCK_FILE
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(path)
            handle.close()
            raise UserError(f"{self.out_dir} is in use by another training run ({owner}); wait for it to finish, "
                            f"or choose another --out") from None
        previous = _read_owner(path)
        if previous != "unknown process":
            self.log(f"note: {self.out_dir} was locked by a run that no longer exists ({previous}: killed or "
                     f"crashed); taking the folder over")
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}))
        handle.flush()
        self._lock_handle = handle
        atexit.register(self.release)  # a run that stops on an error leaves no lock; only a killed one does

    def release(self) -> None:
        """Unlock (the run ended normally): the lock file goes, so the next run finds no stale lock."""
        if self._lock_handle is None:
            return
        (self.out_dir / LOCK_FILE).unlink(missing_ok=True)
        fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
        self._lock_handle.close()
        self._lock_handle = None
        if self.created and not any(self.out_dir.iterdir()):
            self.out_dir.rmdir()  # this run made the folder and stopped (an error) before writing to it

    def _describe_run(self) -> str:
        metrics = self.out_dir / "metrics.jsonl"
        if metrics.is_file():
            lines = [line for line in metrics.read_text().splitlines() if line.strip()]
            if lines:
                try:
                    return f"{len(lines)} epochs recorded in metrics.jsonl, the last epoch {json.loads(lines[-1])['epoch']}"
                except (json.JSONDecodeError, KeyError, TypeError):
                    pass
        return "checkpoints/last.pt exists"


def _read_owner(path: Path) -> str:
    try:
        owner = json.loads(path.read_text() or "null")
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner["started"]))
        return f"pid {owner['pid']} on {owner['host']}, started {started}"
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError):
        return "unknown process"
