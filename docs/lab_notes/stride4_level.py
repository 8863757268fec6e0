"""Diagnostic: the detector with a stride-4 pyramid level (detection.stride4_level: 16 and 23 px
anchors, small RoIs pooled from stride 4) against the shipped one, both base-trained by the
shipped config on fsod-mini + indoor85-voc trainval: metric-eval's protocol, shortened
(shortened_eval.py): base AP50, novel AP50 per K and per class, each novel class's region recall.

    python docs/lab_notes/stride4_level.py CHECKPOINT [CHECKPOINT ...]

The option was removed after this measurement: check out commit 955883c to train and read such a
checkpoint again.
"""
import sys

from shortened_eval import shortened_eval

from repmet.methods import open_checkpoint

for path in sys.argv[1:]:
    trained = open_checkpoint(path)
    shortened_eval(trained, f"{path} (stride4_level {getattr(trained.config.detection, 'stride4_level', False)})")
