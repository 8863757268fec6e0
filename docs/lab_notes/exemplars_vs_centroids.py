"""Base classes (and background) are represented by normalised k-means centroids of many crops, a novel
class by its K shots themselves: a shot is an exemplar, farther from its class's other crops than a
centroid is. Does that asymmetry cost the novel classes next to similar base classes (puffin/penguin,
Ambulance/Truck)? On the shipped checkpoint, fsod-mini test, 4 seeded episodes at K = 1 and 5:

1. what base data says: a base box's squared distance to its class's gallery representatives against
   to the nearest of 5 other boxes of its class;
2. the enrolled classes' squared distances lowered by an offset (0.1-0.3) before the posterior;
3. the base classes represented by medoids (the real crop nearest each k-means centre), exemplars
   like the shots, the gallery refitted.

    python docs/lab_notes/exemplars_vs_centroids.py CHECKPOINT
"""
import sys

import numpy as np
import torch

from cached_setting import DistanceOffset
import repmet.methods.detector_gallery_fit as gallery_fit
import repmet.models.detection.faster_rcnn as faster_rcnn
from repmet.data.detection import sample_support
from repmet.evaluate.detection_ap import detection_ap
from repmet.evaluate.region_detections import detect_cached
from repmet.methods import open_checkpoint
from repmet.methods.detector import base_novel_classes, load_detection_split
from repmet.methods.detector_regions import cache_regions, embed_boxes, enrolled_representatives
from repmet.ops.distances import squared_euclidean
from repmet.ops.kmeans import kmeans

torch.set_flush_denormal(True)
CPU = torch.device("cpu")
trained = open_checkpoint(sys.argv[1])
model, config = trained.model.eval(), trained.config
gallery = model.region_gallery
classes = base_novel_classes(config)
test, train = load_detection_split(config, config.data.test_split), load_detection_split(config, config.data.train_split)
base_ids, novel_ids = test.class_index(list(trained.class_names), "base"), test.class_index(list(classes.novel), "novel")
cached = cache_regions(model, test, CPU, False)

shots = sample_support(train, list(trained.class_names), 6, 123, 0)
to_reps, to_shot = [], []
for c, boxes in enumerate(shots.values()):
    e = embed_boxes(model, boxes, CPU)
    to_reps += squared_euclidean(e, gallery.gallery()[c]).min(1).values.tolist()
    d = squared_euclidean(e, e).fill_diagonal_(float("inf"))
    to_shot += d.min(1).values.tolist()
print(f"1. base boxes (6 per class): median squared distance to their class's gallery representatives "
      f"{np.median(to_reps):.3f}, to the nearest of 5 other boxes of the class {np.median(to_shot):.3f}")

offset = DistanceOffset(first=len(base_ids))  # the enrolled classes only
faster_rcnn.class_scores = offset


def episodes(base_reps, label):
    base_alone = detection_ap(test, detect_cached(model, cached, base_reps, base_ids), base_ids)["ap50"]
    print(f"   {label}: base AP50 alone {100 * base_alone:.1f}")
    for shot in (1, 5):
        rows = []
        for episode in range(4):
            support = sample_support(train, list(classes.novel), shot, 0, episode)
            reps = torch.cat([base_reps, enrolled_representatives(model, support, gallery.reps_per_class, 0, CPU)])
            found = detect_cached(model, cached, reps, base_ids + novel_ids)
            novel = detection_ap(test, found, novel_ids)
            rows.append((novel["ap50"], detection_ap(test, found, base_ids)["ap50"], novel["per_class_ap50"]))
        per_class = ", ".join(f"{n} {100 * np.mean([r[2][n] for r in rows]):.1f}" for n in classes.novel)
        print(f"     K={shot}: novel AP50 {100 * np.mean([r[0] for r in rows]):.1f}, base in the episodes "
              f"{100 * np.mean([r[1] for r in rows]):.1f}; {per_class}", flush=True)


shipped = gallery.gallery().clone()
print("2. an offset on the enrolled classes' squared distances")
for value in (0.0, 0.1, 0.2, 0.3):
    offset.value = value
    episodes(shipped, f"offset {value}")
offset.value = 0.0

print("3. base representatives as medoids (background stays centroids), the gallery refitted")
centroids = gallery_fit._centres


def medoids(rows, k, seed):
    if k != gallery.reps_per_class:  # the background's B centres
        return centroids(rows, k, seed)
    centres, assignment = kmeans(rows, min(k, len(rows)), seed=seed)
    picks = [rows[members[squared_euclidean(rows[members], centre[None]).argmin()]]
             for j, centre in enumerate(centres) for members in [torch.nonzero(assignment == j).flatten()]]
    return torch.stack(picks)


gallery_fit._centres = medoids
images, _ = trained.method.base_training_set(config)
trained.method.after_training(config, model, images, CPU, progress=False)
episodes(gallery.gallery().clone(), "medoids")
