"""Loopback load test of metric-serve: C concurrent clients each sending one real image per
request (classify, or detect for a detector), for C in --concurrency; p50 / p99 latency,
throughput, errors and the batch sizes the micro-batcher reached, beside the same images run
in-process (FewShotClassifier.classify on batches of 32, FewShotDetector.detect one by one) on
the same machine and backend. Bounded in requests and time; 127.0.0.1 only.

    python benchmarks/serve_load.py --artifact omniglot=ART --artifact flowers=ART --artifact detector=ART \
        [--concurrency 1,4,16,64] [--requests 256] [--seconds 60] [--backend onnxruntime] [--json OUT] \
        [--images-per-request N]

``--images-per-request N`` (classifiers): each request carries N images, as a client holding several
queries sends them (``POST /classify`` takes a list); throughput is then counted in images.

Queries and enrolled classes are real: Omniglot test drawings (20 characters enrolled from 5 each:
the Omniglot artifact has no trained gallery), Flowers 102 test images (the artifact's trained
gallery), fsod-mini test images (the detector's base gallery)."""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from repmet.artifact.reader import Artifact
from repmet.data import default_data_root, load_few_shot_split
from repmet.serve.client import ServerProcess, encode_image


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def omniglot_drawings(data_root: Path, classes: int, per_class: int = 20) -> dict[str, list[bytes]]:
    """The first ``classes`` Omniglot test characters, ``per_class`` drawings each, as PNG files
    (dark strokes on white, as a user holds them); shared by the service's benchmarks."""
    data = load_few_shot_split("omniglot", "test", data_root)
    return {data.class_names[c]: [png(255 - data.images[c, i, 0].numpy()) for i in range(per_class)]
            for c in range(classes)}


def workload(name: str, artifact: Path, data_root: Path, count: int):
    """``(enroll {label: [image bytes]}, queries [image bytes])`` from real data."""
    meta = Artifact.open(artifact).metadata
    if meta["task"] == "detection":
        files = sorted((data_root / "fsod-mini" / "JPEGImages").glob("*.jpg"))
        test = set((data_root / "fsod-mini" / "ImageSets" / "Main" / "test.txt").read_text().split())
        return {}, [p.read_bytes() for p in files if p.stem in test][:count]
    if meta["input"]["channels"] == 1:  # Omniglot
        drawings = omniglot_drawings(data_root, 20)
        enroll = {label: images[:5] for label, images in drawings.items()}
        queries = [image for images in drawings.values() for image in images[5:]]
        return enroll, (queries * (count // len(queries) + 1))[:count]
    files = sorted((data_root / "flowers-102" / "jpg").glob("*.jpg"))
    return {}, [p.read_bytes() for p in random.Random(0).sample(files, min(count, len(files)))]


def batch_histogram(server) -> tuple[float, float]:
    text = server.call("GET", "/metrics")[1]
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line.startswith("repmet_batch_images_sum") or line.startswith("repmet_batch_images_count")}
    return values.get("repmet_batch_images_sum", 0.0), values.get("repmet_batch_images_count", 0.0)


def load_level(server, endpoint: str, queries: list[str], clients: int, requests: int, seconds: float,
               per_request: int = 1) -> dict:
    """C clients, each on its own keep-alive connection (as a service's clients hold one), sending
    request bodies encoded before the clock starts: the load generator shares the machine's cores
    with the server, so what it spends per request is kept small (urllib's new connection and JSON
    encoding per request cost the server a third of its throughput on Omniglot's tiny images)."""
    latencies, errors, lock = [], [], threading.Lock()
    body_key = {"classify": {"top_k": 5}, "detect": {"score_threshold": 0.2}}[endpoint]
    bodies = [json.dumps({"images": [queries[(n * per_request + i) % len(queries)] for i in range(per_request)],
                          **body_key}).encode() for n in range(min(requests, len(queries)))]
    headers = {"Content-Type": "application/json"}
    counter = iter(range(requests))
    deadline = time.monotonic() + seconds

    def client(_):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        try:
            while time.monotonic() < deadline:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                start = time.perf_counter()
                try:
                    connection.request("POST", f"/{endpoint}", bodies[n % len(bodies)], headers)
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException) as exc:
                    status = type(exc).__name__
                    connection.close()  # reconnects on the next request
                with lock:
                    latencies.append(time.perf_counter() - start)
                    if status != 200:
                        errors.append(status)
        finally:
            connection.close()

    before = batch_histogram(server)
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - start
    after = batch_histogram(server)
    batches = after[1] - before[1]
    return {"clients": clients, "requests": len(latencies), "errors": len(errors),
            "p50_ms": 1e3 * float(np.percentile(latencies, 50)), "p99_ms": 1e3 * float(np.percentile(latencies, 99)),
            "throughput": per_request * len(latencies) / wall, "mean_batch": (after[0] - before[0]) / batches if batches else 0.0,
            "error_kinds": sorted({str(e) for e in errors})}


def in_process(artifact: Path, backend: str, enroll: dict, queries: list[bytes], task: str, seconds: float) -> float:
    """Images per second of the Python runtime on the same image files (decoded in the call, as the
    service decodes them): classify in batches of 32, detect one by one."""
    from repmet.runtime import open_runtime

    runtime = open_runtime(artifact, backend)
    for label, images in enroll.items():
        runtime.enroll(label, [Image.open(io.BytesIO(b)) for b in images])
    run = (lambda chunk: runtime.classify(chunk, top_k=5)) if task == "classification" else \
        (lambda chunk: runtime.detect(chunk, score_threshold=0.2))
    size = 32 if task == "classification" else 1
    run([Image.open(io.BytesIO(b)) for b in queries[:size]])  # warm-up
    done, start = 0, time.perf_counter()
    while done < len(queries) and time.perf_counter() - start < seconds:
        chunk = [Image.open(io.BytesIO(b)) for b in queries[done:done + size]]
        run(chunk)
        done += len(chunk)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--requests", type=int, default=256, help="per concurrency level (at most)")
    parser.add_argument("--seconds", type=float, default=60.0, help="per concurrency level (at most)")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--images-per-request", type=int, default=1)
    args = parser.parse_args()
    per_request = args.images_per_request
    data_root = Path(args.data_root or default_data_root())
    levels = [int(c) for c in args.concurrency.split(",")]
    report = []
    for spec in args.artifact:
        name, _, folder = spec.partition("=")
        artifact = Path(folder)
        task = Artifact.open(artifact).metadata["task"]
        endpoint = "classify" if task == "classification" else "detect"
        enroll, raw_queries = workload(name, artifact, data_root, args.requests)
        queries = [encode_image(q) for q in raw_queries]
        baseline = in_process(artifact, args.backend, enroll, raw_queries, task, args.seconds)
        with ServerProcess(artifact, "--backend", args.backend, "--max-batch", args.max_batch, "--max-wait-ms",
                           args.max_wait_ms, "--max-queue", 4096, "--timeout", 300) as server:
            for label, images in enroll.items():
                server.client.enroll(label, images)
            load_level(server, endpoint, queries, 1, 4, args.seconds)  # warm-up
            for clients in levels:
                row = {"artifact": name, "task": task, "in_process_per_s": baseline,
                       **load_level(server, endpoint, queries, clients, args.requests, args.seconds,
                                    per_request if task == "classification" else 1)}
                report.append(row)
                print(f"{name} c={clients}: {row['throughput']:.1f}/s p50 {row['p50_ms']:.0f} ms p99 "
                      f"{row['p99_ms']:.0f} ms errors {row['errors']} batch {row['mean_batch']:.1f}", flush=True)
    print(f"\nmetric-serve on 127.0.0.1, backend {args.backend}, --max-batch {args.max_batch} --max-wait-ms "
          f"{args.max_wait_ms:g}; {per_request} image(s) per classify request; in-process: the Python runtime on the same image files, "
          f"decoded in the call (classify in batches of 32, detect one by one); clients and server share the machine\n")
    print("| artifact | clients | requests | errors | p50 ms | p99 ms | images/s | mean batch | in-process images/s "
          "| service / in-process |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in report:
        print(f"| {r['artifact']} | {r['clients']} | {r['requests']} | {r['errors']} | {r['p50_ms']:.0f} | "
              f"{r['p99_ms']:.0f} | {r['throughput']:.1f} | {r['mean_batch']:.1f} | {r['in_process_per_s']:.1f} | "
              f"{r['throughput'] / r['in_process_per_s']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
