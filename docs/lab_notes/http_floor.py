"""What one HTTP request costs on this machine before any model runs: metric-serve's stack (uvicorn with
uvloop + httptools, FastAPI, the same ClassifyRequest body model) with a /classify that validates the
body and answers a fixed top-5 without decoding or classifying, loaded by serve_load.py's own client
(keep-alive clients, one Omniglot drawing a request, bodies encoded before the clock). Its requests/s is
the ceiling of the service's one-image-a-request throughput here, whatever the model costs.

    python docs/lab_notes/http_floor.py [--clients 1,4,16,64] [--requests 4000]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, "benchmarks")
from serve_load import load_level, omniglot_drawings  # noqa: E402

from repmet.data import default_data_root  # noqa: E402
from repmet.serve.client import ServerProcess, encode_image  # noqa: E402

# run as ServerProcess runs metric-serve: python -c APP ARTIFACT --port P (no artifact is read)
APP = '''
import sys
import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from repmet.serve.schemas import ClassifyRequest
app = FastAPI()
@app.post("/classify")
async def classify(body: ClassifyRequest):
    return {"predictions": [{"labels": ["a", "b", "c", "d", "e"], "posteriors": [0.5, 0.2, 0.1, 0.1, 0.1]}
                            for _ in body.images]}
@app.get("/health")
def health():
    return {"ok": True}
@app.get("/metrics", response_class=PlainTextResponse)
def metrics():
    return ""  # no batcher: load_level's mean batch reads 0
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[sys.argv.index("--port") + 1]), log_level="warning",
            timeout_keep_alive=5)
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    drawings = [encode_image(d) for images in omniglot_drawings(Path(default_data_root()), 20).values() for d in images]
    with ServerProcess("-", command=[sys.executable, "-c", APP]) as server:
        load_level(server, "classify", drawings, 4, 200, 60)  # warm-up
        print("| clients | requests | errors | requests/s | p50 ms |\n|---:|---:|---:|---:|---:|")
        for clients in (int(c) for c in args.clients.split(",")):
            row = load_level(server, "classify", drawings, clients, args.requests, 600)
            print(f"| {clients} | {row['requests']} | {row['errors']} | {row['throughput']:.0f} | {row['p50_ms']:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
