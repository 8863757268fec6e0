"""What one HTTP request costs on this machine before any model runs: metric-serve's stack (uvicorn with
uvloop + httptools, FastAPI, the same ClassifyRequest body model) with a /classify that validates the
body and answers a fixed top-5 without decoding or classifying, loaded by serve_load.py's client (16
keep-alive clients, one Omniglot drawing a request, bodies encoded before the clock). Its requests/s is the
ceiling of the service's one-image-a-request throughput here, whatever the model costs.

    python docs/lab_notes/http_floor.py [--clients 1,4,16,64] [--requests 4000]
"""
import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, "benchmarks")
from serve_load import omniglot_drawings  # noqa: E402

from repmet.data import default_data_root  # noqa: E402
from repmet.serve.client import encode_image, free_port  # noqa: E402

APP = '''
import uvicorn
from fastapi import FastAPI
from repmet.serve.schemas import ClassifyRequest
app = FastAPI()
@app.post("/classify")
async def classify(body: ClassifyRequest):
    return {"predictions": [{"labels": ["a", "b", "c", "d", "e"], "posteriors": [0.5, 0.2, 0.1, 0.1, 0.1]}
                            for _ in body.images]}
@app.get("/health")
def health():
    return {"ok": True}
uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", timeout_keep_alive=5)
'''


def load(port: int, bodies: list[bytes], clients: int, requests: int) -> tuple[float, float]:
    counter, lock, latencies = iter(range(requests)), threading.Lock(), []

    def client(_):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            start = time.perf_counter()
            connection.request("POST", "/classify", bodies[n % len(bodies)], {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
            with lock:
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return requests / (time.perf_counter() - start), 1e3 * float(np.percentile(latencies, 50))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    drawings = [encode_image(d) for images in omniglot_drawings(Path(default_data_root()), 20).values() for d in images]
    bodies = [json.dumps({"images": [d], "top_k": 5}).encode() for d in drawings]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", APP.replace("PORT", str(port))])
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health")
                break
            except OSError:
                time.sleep(0.2)
        load(port, bodies, 4, 200)  # warm-up
        print("| clients | requests | requests/s | p50 ms |\n|---:|---:|---:|---:|")
        for clients in (int(c) for c in args.clients.split(",")):
            rate, p50 = load(port, bodies, clients, args.requests)
            print(f"| {clients} | {args.requests} | {rate:.0f} | {p50:.1f} |", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
