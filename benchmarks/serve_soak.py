"""Soak test of metric-serve: --minutes of mixed traffic at --clients concurrent clients (70%
classify one image, 20% enroll a class from 3 images, 10% remove a class), real Omniglot
drawings; the server's resident memory at the start (after a warm-up) and every --sample
seconds, and every error. Goal: no error, memory flat within 10%.

    python benchmarks/serve_soak.py --artifact ART [--minutes 10] [--clients 16] [--json OUT]

An expected answer is not an error: 404 when removing a class another client already removed.
Errors are 5xx, connection failures, and any other 4xx."""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from repmet.data import default_data_root
from repmet.serve.client import ServerProcess, encode_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import omniglot_drawings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between memory samples")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    drawings = {label: [encode_image(image) for image in images]
                for label, images in omniglot_drawings(Path(args.data_root or default_data_root()), 40).items()}
    labels = list(drawings)
    gallery = Path(tempfile.mkdtemp(prefix="serve-soak-")) / "gallery.npz"
    counts, errors, lock = {"classify": 0, "enroll": 0, "remove": 0}, [], threading.Lock()
    with ServerProcess(args.artifact, "--backend", "onnxruntime", "--gallery", gallery) as server:
        for label in labels[:10]:
            server.call("POST", f"/classes/{quote(label, safe='')}", {"images": drawings[label][:3]})

        def one(rng: random.Random) -> None:
            label = rng.choice(labels)
            kind = rng.choices(["classify", "enroll", "remove"], [7, 2, 1])[0]
            try:
                if kind == "classify":
                    status, body, _ = server.call("POST", "/classify", {"images": [rng.choice(drawings[label][5:])],
                                                                         "top_k": 3})
                    ok = status == 200 or (status == 409 and "empty" in body.get("error", ""))
                elif kind == "enroll":
                    status, body, _ = server.call("POST", f"/classes/{quote(label, safe='')}",
                                                  {"images": rng.sample(drawings[label][:5], 3)})
                    ok = status == 201
                else:
                    status, body, _ = server.call("DELETE", f"/classes/{quote(label, safe='')}")
                    ok = status in (200, 404)
            except OSError as exc:
                status, body, ok = type(exc).__name__, {}, False
            with lock:
                counts[kind] += 1
                if not ok:
                    errors.append((kind, status, str(body)[:200]))

        def client(seed: int, deadline: float) -> None:
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                one(rng)

        warm = time.monotonic() + 10
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(lambda s: client(s, warm), range(args.clients)))
        samples = [(0.0, server.rss_kib())]
        start = time.monotonic()
        deadline = start + 60 * args.minutes
        with ThreadPoolExecutor(args.clients) as pool:
            futures = [pool.submit(client, 1000 + s, deadline) for s in range(args.clients)]
            while time.monotonic() < deadline:
                time.sleep(min(args.sample, max(deadline - time.monotonic(), 0)))
                samples.append((time.monotonic() - start, server.rss_kib()))
            for f in futures:
                f.result()
        classes = len(server.client.classes())
    first, last = samples[0][1], samples[-1][1]
    print(f"\nmetric-serve soak: {args.minutes:g} min at {args.clients} clients (after 10 s of warm-up), "
          f"{sum(counts.values())} requests ({counts['classify']} classify, {counts['enroll']} enroll, "
          f"{counts['remove']} remove), {classes} classes at the end\n")
    print("| minutes | requests | errors | RSS at start MiB | RSS at end MiB | change | max RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.minutes:g} | {sum(counts.values())} | {len(errors)} | {first / 1024:.0f} | {last / 1024:.0f} | "
          f"{100 * (last - first) / first:+.1f}% | {max(s[1] for s in samples) / 1024:.0f} |")
    for error in errors[:10]:
        print("error:", error)
    if args.json:
        Path(args.json).write_text(json.dumps({"counts": counts, "errors": errors, "rss_kib": samples}, indent=1))


if __name__ == "__main__":
    main()
