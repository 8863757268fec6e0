"""The micro-batcher on its own, made deterministic by a batch function that waits for the test:
requests that wait together run together (up to max_batch images), a full queue is refused at
once, and a request that fails its batch fails alone."""

import threading

import pytest

from repmet.serve.batcher import MicroBatcher, QueueFull


class Gate:
    """run_batch that records each batch and holds the first one until released."""

    def __init__(self):
        self.batches, self.release, self.entered = [], threading.Event(), threading.Event()

    def __call__(self, payloads):
        self.batches.append(list(payloads))
        self.entered.set()
        self.release.wait(10)
        if "bad" in payloads:
            raise ValueError("a bad payload")
        return [f"done {p}" for p in payloads]


def test_waiting_requests_run_as_one_batch_up_to_max_batch():
    gate = Gate()
    batcher = MicroBatcher(gate, max_batch=4, max_wait_ms=0, max_queue=100)
    first = batcher.submit("a", 1)
    assert gate.entered.wait(10)  # the worker is busy with "a"; the rest queue up
    rest = [batcher.submit(x, 1) for x in "bcdef"]
    assert batcher.waiting == 5
    gate.release.set()
    assert [f.result(10) for f in [first, *rest]] == [f"done {x}" for x in "abcdef"]
    assert [len(b) for b in gate.batches] == [1, 4, 1]
    batcher.close()


def test_a_full_queue_is_refused_at_once():
    gate = Gate()
    batcher = MicroBatcher(gate, max_batch=8, max_wait_ms=0, max_queue=3)
    batcher.submit("a", 1)
    assert gate.entered.wait(10)
    batcher.submit("b", 2)
    with pytest.raises(QueueFull, match="2 images are waiting"):
        batcher.submit("c", 2)
    batcher.submit("d", 1)  # 3 waiting: still fits
    gate.release.set()
    batcher.close()


def test_a_failing_request_fails_alone():
    gate = Gate()
    gate.release.set()
    batcher = MicroBatcher(gate, max_batch=8, max_wait_ms=200, max_queue=100)
    futures = [batcher.submit(x, 1) for x in ("x", "bad", "y")]
    assert futures[0].result(10) == "done x" and futures[2].result(10) == "done y"
    with pytest.raises(ValueError, match="a bad payload"):
        futures[1].result(10)
    batcher.close()
