"""``GET /metrics`` in Prometheus' text format (version 0.0.4): request counts by endpoint and
status, latency and batch-size histograms, the gallery's size and the queue's depth. Written
here in a few lines rather than pulling in a client library: counters and fixed-bucket
histograms under one lock are all the service needs."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets, self.counts, self.total, self.count = buckets, [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {n}' for bound, n in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        suffix = f"{{{labels}}}" if labels else ""
        return out + [f"{name}_sum{suffix} {self.total:.6f}", f"{name}_count{suffix} {self.count}"]


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, int], int] = defaultdict(int)
        self._latency: dict[str, _Histogram] = {}
        self._batches = _Histogram(BATCH_BUCKETS)

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(endpoint, status)] += 1
            self._latency.setdefault(endpoint, _Histogram(LATENCY_BUCKETS_S)).observe(seconds)

    def batch(self, images: int) -> None:
        with self._lock:
            self._batches.observe(images)

    def text(self, gallery_classes: int, gallery_representatives: int, queued_images: int) -> str:
        with self._lock:
            lines = ["# HELP repmet_requests_total Requests answered, by endpoint and HTTP status.",
                     "# TYPE repmet_requests_total counter"]
            lines += [f'repmet_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                      for (e, s), n in sorted(self._requests.items())]
            lines += ["# HELP repmet_request_seconds Time from the request's arrival to its answer.",
                      "# TYPE repmet_request_seconds histogram"]
            for endpoint, histogram in sorted(self._latency.items()):
                lines += histogram.lines("repmet_request_seconds", f'endpoint="{endpoint}"')
            lines += ["# HELP repmet_batch_images Images embedded together by the micro-batcher.",
                      "# TYPE repmet_batch_images histogram"]
            lines += self._batches.lines("repmet_batch_images", "")
        lines += ["# HELP repmet_gallery_classes Classes enrolled.", "# TYPE repmet_gallery_classes gauge",
                  f"repmet_gallery_classes {gallery_classes}",
                  "# HELP repmet_gallery_representatives Representatives searched per query.",
                  "# TYPE repmet_gallery_representatives gauge", f"repmet_gallery_representatives {gallery_representatives}",
                  "# HELP repmet_queue_images Images waiting for the micro-batcher.", "# TYPE repmet_queue_images gauge",
                  f"repmet_queue_images {queued_images}"]
        return "\n".join(lines) + "\n"
