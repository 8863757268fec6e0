"""Dynamic micro-batching: requests that arrive within ``max_wait_ms`` of the first one waiting
are run as one batch (up to ``max_batch`` images), by one worker thread, so that 16 clients
sending one image each cost about one batch of 16 instead of 16 batches of 1. The queue is
bounded (in images): a full queue is refused at once, so the caller answers 503 instead of
letting latency grow without limit."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Sequence


class QueueFull(Exception):
    """More images are waiting than the queue holds: come back later."""


@dataclass
class _Job:
    payload: object
    size: int  # images, what max_batch and max_queue count
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """``submit(payload, size)`` -> a Future of ``run_batch([payload, ...])[i]``.

    ``run_batch`` gets the payloads of one batch and returns one result per payload (or raises:
    then each payload is run alone, so that one bad request fails alone). ``on_batch(images)``
    is told the size of every batch run (for the metrics). ``expecting()`` counts the requests
    that have arrived but are not queued yet (still being decoded): a batch waits up to
    ``max_wait_ms`` for company only while some are, so a lone request is never delayed."""

    def __init__(self, run_batch: Callable[[Sequence[object]], Sequence[object]], max_batch: int,
                 max_wait_ms: float, max_queue: int, on_batch: Callable[[int], None] = lambda n: None,
                 expecting: Callable[[], int] = lambda: 1) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be at least 1, max_wait_ms at least 0")
        self.run_batch, self.on_batch, self.expecting = run_batch, on_batch, expecting
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_ms / 1000.0, max_queue
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._waiting = 0  # images queued, not yet taken by the worker
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._loop, name="micro-batcher", daemon=True)
        self._worker.start()

    @property
    def waiting(self) -> int:
        return self._waiting

    def submit(self, payload: object, size: int) -> Future:
        with self._lock:
            if self._waiting + size > self.max_queue and self._waiting > 0:
                raise QueueFull(f"{self._waiting} images are waiting (the queue holds {self.max_queue})")
            self._waiting += size
        job = _Job(payload, size)
        self._jobs.put(job)
        return job.future

    def close(self) -> None:
        self._jobs.put(None)
        self._worker.join(timeout=10)

    def _take(self, job: _Job) -> None:
        with self._lock:
            self._waiting -= job.size

    def _loop(self) -> None:
        carried: _Job | None = None  # a job that did not fit the last batch starts the next one
        while True:
            first = carried or self._jobs.get()
            carried = None
            if first is None:
                return
            self._take(first)
            batch, images = [first], first.size
            deadline = time.monotonic() + self.max_wait_s
            while images < self.max_batch:
                remaining = deadline - time.monotonic()
                if self._jobs.empty() and self.expecting() == 0:
                    break  # nobody is on the way: waiting would only add latency
                try:
                    job = self._jobs.get(timeout=remaining) if remaining > 0 else self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._jobs.put(None)  # stop after this batch
                    break
                self._take(job)
                if images + job.size > self.max_batch:
                    carried = job
                    break
                batch.append(job)
                images += job.size
            self._run([job for job in batch if job.future.set_running_or_notify_cancel()])

    def _run(self, batch: list[_Job]) -> None:
        if not batch:
            return
        self.on_batch(sum(job.size for job in batch))
        try:
            results = self.run_batch([job.payload for job in batch])
        except Exception as exc:  # noqa: BLE001 - rerun alone, so the failure reaches only its own request
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            for job in batch:
                self._run([job])
            return
        for job, result in zip(batch, results):
            job.future.set_result(result)
