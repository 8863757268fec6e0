"""kill -9 of metric-serve during a storm of enrolls, --rounds times, restarting on the same gallery
file after each: every acknowledged enroll must still be served, no unacknowledged one may be
half there (the file always loads, each class whole or absent), and at most the enrolls in flight
may appear unacknowledged. Prints one row per round and the totals.

    python benchmarks/serve_faults.py --artifact ART [--rounds 20] [--clients 4] [--json OUT]

Real images: 2 Omniglot test drawings per enroll (any classification artifact works; the
classes are labels r<round>-w<client>-<n>)."""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from repmet.artifact.gallery_file import Gallery
from repmet.data import default_data_root
from repmet.serve.client import ServerProcess, encode_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import omniglot_drawings  # noqa: E402


def storm(server, round_: int, clients: int, support: list[str], seconds: float, rng: random.Random):
    """Clients enroll as fast as they can; SIGKILL after a random time. Returns (sent, acknowledged)."""
    sent, acknowledged, lock, stop = set(), set(), threading.Lock(), threading.Event()

    def client(worker):
        for n in range(100000):
            if stop.is_set():
                return
            label = f"r{round_}-w{worker}-{n}"
            with lock:
                sent.add(label)
            try:
                status, _, _ = server.call("POST", f"/classes/{label}", {"images": support}, timeout=30)
            except Exception:  # noqa: BLE001 - the server died under this request (reset, half an answer)
                return  # not acknowledged
            if status == 201:
                with lock:
                    acknowledged.add(label)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.5, seconds))
    server.kill()
    stop.set()
    for t in threads:
        t.join()
    return sent, acknowledged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0, help="the kill comes after 0.5 s to this")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    (first,) = omniglot_drawings(Path(args.data_root or default_data_root()), 1, 2).values()
    support = [encode_image(image) for image in first]
    rng = random.Random(0)
    gallery = Path(tempfile.mkdtemp(prefix="serve-faults-")) / "gallery.npz"
    all_acknowledged, served_before, rows = set(), set(), []
    for round_ in range(args.rounds):
        server = ServerProcess(args.artifact, "--backend", "onnxruntime", "--gallery", gallery).start()
        sent, acknowledged = storm(server, round_, args.clients, support, args.seconds, rng)
        all_acknowledged |= acknowledged
        loads = True
        try:
            on_disk = set(Gallery.load(gallery).labels) if gallery.exists() else set()
        except Exception:  # noqa: BLE001 - the point is to count it
            loads, on_disk = False, set()
        restarted = ServerProcess(args.artifact, "--backend", "onnxruntime", "--gallery", gallery).start()
        served = {c["label"] for c in restarted.client.classes()}
        restarted.kill()
        unacknowledged = served - served_before - all_acknowledged
        row = {"round": round_, "acknowledged": len(acknowledged), "lost": len(all_acknowledged - served),
               "unacknowledged_present": len(unacknowledged), "foreign": len(unacknowledged - sent),
               "file_loads": loads and on_disk == served, "served": len(served)}
        rows.append(row)
        served_before = served
        print(row, flush=True)
    print(f"\nkill -9 during enroll storms: {args.rounds} rounds, {args.clients} clients, the kill 0.5-{args.seconds:g} s "
          f"into each round, restarted on the same gallery file\n")
    print("| rounds | enrolls acknowledged | acknowledged and lost | present unacknowledged (in flight at the kill) "
          "| rounds whose file did not load or differed from what was served |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {len(rows)} | {sum(r['acknowledged'] for r in rows)} | {sum(r['lost'] for r in rows)} | "
          f"{sum(r['unacknowledged_present'] for r in rows)} (at most {args.clients} a round: "
          f"{max(r['unacknowledged_present'] for r in rows)}) | {sum(not r['file_loads'] for r in rows)} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
