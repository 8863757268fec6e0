"""Small objects score low because their crops are small: enroll each shot also as it would look small (its
crop pooled at s px, for each s under its own size, and upsampled to the crop size) as extra representatives.
The shipped checkpoint, fsod-mini test, K = 1 (the shot + up to 4 small copies in the K slots) and K = 5 (shots
and copies k-means'd to K), 4 seeded episodes, against plain enrollment.

    python docs/lab_notes/small_shot_copies.py CHECKPOINT 24,40
"""
import sys, torch, numpy as np
import torch.nn.functional as F
from repmet.methods import open_checkpoint
from repmet.methods.detector import base_novel_classes, load_detection_split
from repmet.methods.detector_regions import cache_regions, image_tensor, to_canvas
from repmet.data.detection import sample_support
from repmet.evaluate.region_detections import detect_cached
from repmet.evaluate.detection_ap import detection_ap
from repmet.ops.roi_align import roi_align
from repmet.ops.kmeans import padded_centres
torch.set_flush_denormal(True)
trained = open_checkpoint(sys.argv[1]); model = trained.model.eval(); config = trained.config
emb = model.region_embedder
test = load_detection_split(config, config.data.test_split); classes = base_novel_classes(config)
cached = cache_regions(model, test, torch.device("cpu"), False)
train = load_detection_split(config, config.data.train_split)
base_ids = test.class_index(list(trained.class_names), "x"); novel_ids = test.class_index(list(classes.novel), "y")
gallery = model.region_gallery; K = gallery.reps_per_class

@torch.no_grad()
def embed(item, size):
    picture = image_tensor(item.image.path)
    batch, _ = model.transform([picture])
    box = to_canvas([item.box], tuple(picture.shape[-2:]), batch.image_sizes[0], torch.device("cpu"))
    side = float(((box[0, 2] - box[0, 0]) * (box[0, 3] - box[0, 1])).sqrt())
    if size is None:
        pooled = roi_align(batch.tensors, box, emb.crop_size, 1.0, emb.sampling_ratio, aligned=True)
    else:
        if side <= size * 1.25:
            return None, side
        pooled = roi_align(batch.tensors, box, size, 1.0, emb.sampling_ratio, aligned=True)
        pooled = F.interpolate(pooled, size=(emb.crop_size, emb.crop_size), mode="bilinear", align_corners=False)
    return F.normalize(emb.backbone(pooled * emb.scale + emb.shift), dim=1)[0], side

sizes = [int(v) for v in sys.argv[2].split(",")]
for shot in [1, 5]:
    rows = {"plain": [], "small copies": []}
    for episode in range(4):
        support = sample_support(train, list(classes.novel), shot, 0, episode)
        plain, small = [], []
        for name, items in support.items():
            shots = torch.stack([embed(i, None)[0] for i in items])
            plain.append(padded_centres(shots, K, K, seed=0))
            extra = [e for i in items for s in sizes for e in [embed(i, s)[0]] if e is not None]
            if shot == 1:
                reps = torch.cat([shots, torch.stack(extra)])[:K] if extra else shots
            else:
                reps = torch.cat([shots, torch.stack(extra)]) if extra else shots
                reps = padded_centres(reps, K, K, seed=0) if len(reps) > K else reps
            small.append(torch.cat([reps, reps[-1:].repeat(K - len(reps), 1)]) if len(reps) < K else reps)
        for label, novel in (("plain", plain), ("small copies", small)):
            found = detect_cached(model, cached, torch.cat([gallery.gallery(), torch.stack(novel)]), base_ids + novel_ids)
            nov = detection_ap(test, found, novel_ids)
            rows[label].append((nov["ap50"], detection_ap(test, found, base_ids)["ap50"], nov["per_class_ap50"]))
    for label, r in rows.items():
        pc = ", ".join(f"{n} {100*np.mean([x[2][n] for x in r]):.1f}" for n in classes.novel)
        print(f"K={shot} {label}: novel {100*np.mean([x[0] for x in r]):.1f} base {100*np.mean([x[1] for x in r]):.1f}; {pc}", flush=True)
