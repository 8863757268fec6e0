"""What the service does per task, one class each, looked up by the artifact's task (so the app
branches on none): how a batch of queries runs on the runtime, how a class is enrolled from a
request, and how a result is written as JSON."""

from __future__ import annotations

from typing import Sequence

from repmet.errors import UserError
from repmet.registry import Registry
from repmet.serve.schemas import EnrollRequest, decode_images

SERVE_TASKS: Registry[type["TaskJobs"]] = Registry("task")


class TaskJobs:
    query_endpoint = ""  # "classify" or "detect": the one query endpoint this task answers

    def __init__(self, runtime) -> None:
        self.runtime = runtime

    def run_batch(self, payloads: Sequence[tuple[list, object]]) -> list:
        """``[(images, option), ...]`` -> one JSON-ready result per payload."""
        raise NotImplementedError

    def enroll(self, label: str, request: EnrollRequest) -> int:
        """Enroll ``label`` from the request; returns how many images or boxes it used."""
        raise NotImplementedError


@SERVE_TASKS.register("classification")
class ClassificationJobs(TaskJobs):
    query_endpoint = "classify"

    def run_batch(self, payloads):
        images = [image for batch, _ in payloads for image in batch]
        embeddings = self.runtime.embed(images)  # one batch for every request
        _, index = self.runtime.galleries.snapshot()
        if len(index.gallery) == 0:
            raise UserError("the gallery is empty: enroll classes first (POST /classes/{label})")
        results, start = [], 0
        for batch, top_k in payloads:
            found = self.runtime.predictions(index, embeddings[start:start + len(batch)], top_k)
            start += len(batch)
            results.append([{"labels": list(p.labels), "posteriors": [round(x, 6) for x in p.posteriors]}
                            for p in found])
        return results

    def enroll(self, label, request):
        if not request.images or request.examples:
            raise UserError("a classifier enrolls a class from images: send {\"images\": [base64, ...]} (no examples)")
        images = decode_images(request.images, "images")
        self.runtime.enroll(label, images)
        return len(images)


@SERVE_TASKS.register("detection")
class DetectionJobs(TaskJobs):
    query_endpoint = "detect"

    def run_batch(self, payloads):
        if len(self.runtime.gallery) == 0:
            raise UserError("the gallery is empty: enroll classes first (POST /classes/{label})")
        results = []
        for batch, threshold in payloads:  # the detection graph takes one image at a time
            found = self.runtime.detect(batch, score_threshold=threshold)
            results.append([[{"box": [round(v, 2) for v in d.box], "label": d.label, "score": round(d.score, 6)}
                             for d in image] for image in found])
        return results

    def enroll(self, label, request):
        if not request.examples or request.images:
            raise UserError("a detector enrolls a class from boxed images: send {\"examples\": [{\"image\": base64, "
                            "\"boxes\": [[x1, y1, x2, y2], ...]}, ...]}")
        examples = [(image, example.boxes) for image, example in zip(
            decode_images([example.image for example in request.examples], "examples"), request.examples)]
        self.runtime.enroll(label, examples)
        return sum(len(example.boxes) for example in request.examples)
