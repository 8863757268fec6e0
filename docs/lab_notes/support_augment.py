"""Diagnostic: does enrolling each support box with a horizontal flip and/or jittered copies improve AP50?"""
import sys, dataclasses
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, "benchmarks")
from detection_transfer import load_split, enrollable
from repmet.data import default_data_root
from repmet.data.detection import sample_support
from repmet.evaluate.confidence import mean_and_ci95
from repmet.evaluate.region_detections import detect_cached
from repmet.methods.detector_regions import cache_regions, image_tensor, to_canvas
from repmet.evaluate.detection_ap import detection_ap
from repmet.ops.kmeans import padded_centres
from repmet.methods import open_checkpoint

ckpt, folder_name, sup_split, test_split = sys.argv[1:5]
classes = sys.argv[5].split(",") if len(sys.argv) > 5 and sys.argv[5] else None
with_base = "--with-base" in sys.argv
torch.set_flush_denormal(True)
model = open_checkpoint(ckpt).model.eval()
folder = Path(default_data_root()) / folder_name
support_split, test = load_split(folder, sup_split, "voc"), load_split(folder, test_split, "voc")
names = classes or enrollable(support_split, test, 5, 5)
ids = test.class_index(names, "enrolled")
cached = cache_regions(model, test, torch.device("cpu"), False)
base = model.region_gallery.gallery().detach().clone()
k = model.region_gallery.reps_per_class

def jitter(box, rng, amount=0.1):
    x0, y0, x1, y1 = box; w, h = x1 - x0, y1 - y0
    dx, dy = rng.uniform(-amount, amount, 2) * (w, h)
    sw, sh = np.exp(rng.uniform(-amount, amount, 2))
    cx, cy = (x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy
    return [cx - w * sw / 2, cy - h * sh / 2, cx + w * sw / 2, cy + h * sh / 2]

@torch.no_grad()
def embed(boxes_items, flip, jitters, rng):
    out = []
    for item in boxes_items:
        pic = image_tensor(item.image.path)
        batch, _ = model.transform([pic])
        H, W = batch.image_sizes[0]
        boxes = [list(item.box)] + [jitter(item.box, rng) for _ in range(jitters)]
        canvas = to_canvas(boxes, tuple(pic.shape[-2:]), batch.image_sizes[0], "cpu")
        out.append(model.region_embedder(batch.tensors, canvas))
        if flip:
            img = batch.tensors.clone(); img[..., :H, :W] = img[..., :H, :W].flip(-1)
            fb = canvas.clone(); fb[:, 0] = W - canvas[:, 2]; fb[:, 2] = W - canvas[:, 0]
            out.append(model.region_embedder(img, fb))
    return torch.cat(out)

settings = {"plain": (False, 0), "flip": (True, 0), "jitter4": (False, 4), "flip+jitter2": (True, 2)}
mode = sys.argv[6] if len(sys.argv) > 6 else "kmeans"
res = {s: {} for s in settings}
for shot in (1, 5):
    for ep in range(5):
        support = sample_support(support_split, names, shot, 0, ep)
        for name, (flip, jit) in settings.items():
            rng = np.random.default_rng(ep)
            reps = torch.stack([padded_centres(embed(b, flip, jit, rng), k, k, seed=pos) if mode == "kmeans"
                                else torch.nn.functional.normalize(embed(b, flip, jit, rng).mean(0, keepdim=True), dim=1).expand(k, -1)
                                for pos, b in enumerate(support.values())])
            label_map = list(ids)
            if with_base:
                reps, label_map = torch.cat([base, reps]), [-1] * len(base) + label_map
            found = detect_cached(model, cached, reps, label_map)
            res[name].setdefault(shot, []).append(detection_ap(test, found, ids)["ap50"])
    print(shot, {n: round(100 * float(np.mean(r[shot])), 1) for n, r in res.items()}, flush=True)
for n, r in res.items():
    print(n, " ".join(f"K={s}: {100*m:.1f} +- {100*c:.1f}" for s in (1, 5) for m, c in [mean_and_ci95(r[s])]))
