"""Two feature-space changes on a domain never seen in base training (indoor85-voc, its 27 enrollable classes
enrolled from trainval, detected in test; 5 seeded episodes), on cached regions:

1. the enrolled classes' squared distances lowered by an offset (they are exemplars, background is centroids;
   see exemplars_vs_centroids.py);
2. CL2N (SimpleShot, Wang et al. 2019): region embeddings, representatives and background centred by a mean and
   renormalised, with the mean of the checkpoint's gallery (its base domain) or of the regions of the support
   images (the new domain, as a user's enrollment images would give it).

    python docs/lab_notes/domain_centering.py CHECKPOINT
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

import repmet.models.detection.faster_rcnn as faster_rcnn
from cached_setting import DistanceOffset, episode_gallery, open_setting
from repmet.evaluate.detection_ap import detection_ap
from repmet.evaluate.region_detections import detect_cached
from repmet.methods.detector_regions import CachedRegions, cache_regions

setting = open_setting(sys.argv[1], "indoor85-voc", "trainval", "test")
gallery = setting.gallery
offset = DistanceOffset()
faster_rcnn.class_scores = offset


def ap50(cached, transform=lambda reps: reps, shots=(1, 3, 5)):
    row = []
    for shot in shots:
        aps = [detection_ap(setting.test, detect_cached(setting.model, cached, transform(reps), labels), setting.ids)["ap50"]
               for reps, labels in (episode_gallery(setting, shot, e)[1:] for e in range(5))]
        row.append(f"K={shot} {100 * np.mean(aps):.1f}")
    return ", ".join(row)


print("1. offset on the enrolled classes' squared distances")
for value in (0.0, 0.1, 0.2, 0.3, 0.4):
    offset.value = value
    print(f"   offset {value}: {ap50(setting.cached)}", flush=True)
offset.value = 0.0

print("2. CL2N: centred by a mean, renormalised")
background = gallery.background.clone()
support_regions = cache_regions(setting.model, setting.support_split, torch.device("cpu"), False)
base = gallery.gallery()
means = {"none": None,
         "the gallery's base representatives and background": torch.cat([base.reshape(-1, base.shape[-1]), background]).mean(0),
         "the support images' regions": torch.cat([r.embeddings[r.objectness >= 0] for r in support_regions]).mean(0)}
for name, mean in means.items():
    centre = (lambda e: e) if mean is None else (lambda e, m=mean: F.normalize(e - m, dim=-1))
    cached = [CachedRegions(r.boxes, r.objectness, centre(r.embeddings), r.image_size, r.original_size)
              for r in setting.cached]
    gallery.background.copy_(centre(background))
    print(f"   {name}: {ap50(cached, centre, (1, 5))}", flush=True)
gallery.background.copy_(background)
