"""Diagnostic: the shipped detector run on a larger canvas at test time (images resized so that the
shorter side is MIN unless the longer exceeds MAX, padded to MAX x MAX; base training saw 320-512),
for small objects, in metric-eval's protocol shortened as in stride4_level.py (shortened_eval.py).

    python docs/lab_notes/larger_canvas.py CHECKPOINT MIN MAX [REGIONS]

REGIONS: regions classified per image instead of the checkpoint's (detection.regions_per_image).
"""
import dataclasses
import sys

from shortened_eval import shortened_eval

from repmet.methods import open_checkpoint
from repmet.preprocess_spec import detection_canvas_size

path, low, high = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
trained = open_checkpoint(path)
transform = trained.model.transform
transform.min_size, transform.max_size, transform.canvas = (low,), high, detection_canvas_size(high)
if len(sys.argv) > 4:
    trained.model.size = dataclasses.replace(trained.model.size, regions_per_image=int(sys.argv[4]))
shortened_eval(trained, f"{path}, shorter side {low}, canvas {transform.canvas}, "
                        f"{trained.model.size.regions_per_image} regions")
