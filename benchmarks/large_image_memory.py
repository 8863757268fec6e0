"""Peak memory of the Python detector's preprocessing on a large photo (hostile-input limits).

A real fsod-mini photo is upscaled to SIDE x SIDE (8900: just under the pixel limit) and saved
as PNG and JPEG; each is then decoded and prepared for the detector graph in a fresh process,
which reports its peak resident memory above the interpreter's own.

    python benchmarks/large_image_memory.py [--side 8900]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MEASURE = """
import json, resource, sys
import numpy as np
from repmet.imaging import open_image
from repmet.runtime.detection_preprocess import prepare_detection_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rgb = np.asarray(open_image(sys.argv[1], "RGB"))
decoded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
prepared = prepare_detection_image(rgb, 320, 512, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"decode_mb": (decoded - before) / 1024, "peak_mb": (after - before) / 1024,
                  "canvas": list(prepared.tensor.shape)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=8900)
    parser.add_argument("--data", default=os.environ.get("REPMET_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    args = parser.parse_args()
    from PIL import Image

    photo = sorted((Path(args.data) / "fsod-mini" / "JPEGImages").glob("*.jpg"))[0]
    with tempfile.TemporaryDirectory() as folder:
        big = Image.open(photo).convert("RGB").resize((args.side, args.side), Image.BILINEAR)
        files = {"PNG": Path(folder) / "big.png", "JPEG": Path(folder) / "big.jpg"}
        big.save(files["PNG"], compress_level=1)
        big.save(files["JPEG"], quality=90)
        del big
        print(f"{args.side} x {args.side} photo ({args.side * args.side / 1e6:.1f} Mpixels, "
              f"{args.side * args.side * 3 / 2**20:.0f} MB as 8-bit RGB), detector preprocessing 320-512 px")
        print(f"{'format':<6} {'file MB':>8} {'decode MB':>10} {'peak MB':>8}")
        for kind, path in files.items():
            run = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, check=True)
            row = json.loads(run.stdout)
            print(f"{kind:<6} {path.stat().st_size / 2**20:>8.1f} {row['decode_mb']:>10.0f} {row['peak_mb']:>8.0f}")


if __name__ == "__main__":
    main()
