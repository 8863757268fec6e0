"""Where a few-shot detector loses AP on a detection set: what each stage keeps, what perfect
parts would give, and what its top detections are.

    python benchmarks/detection_error_analysis.py CHECKPOINT --folder indoor85-voc --support-split trainval \
        --test-split test [--shots 5] [--episodes 5] [--classes a,b] [--with-base]

Three tables, on the same regions and seeded support episodes as benchmarks/detection_transfer.py:
- **Recall by stage** (IoU 0.5, enrolled classes): the RPN's top 50 / 100 / all proposals, the
  box head's refined boxes, and the regions that reach the classifier.
- **Oracles**: AP50 when the objectness is perfect (1 on regions that overlap an enrolled box at
  IoU 0.5, 0.01 elsewhere), when the class posterior is perfect on those regions (their embedding
  replaced by a representative of their true class), and both, each at objectness power 1 and 0.
  The distance from today's AP to each oracle is what that part costs.
- **Top detections** of one episode, by kind: a hit (IoU >= 0.5 with a box of its class; duplicates
  included), the wrong class (IoU >= 0.5 with another class's box), a poor box (IoU 0.1-0.5 with
  some box: a part, a loose box or a group) and background.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import box_iou

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detection_transfer import enrollable, load_split  # noqa: E402

from repmet.data import default_data_root  # noqa: E402
from repmet.data.detection import sample_support  # noqa: E402
from repmet.evaluate.detection_ap import detection_ap  # noqa: E402
from repmet.evaluate.region_detections import detect_cached, region_recall  # noqa: E402
from repmet.methods import open_checkpoint  # noqa: E402
from repmet.methods.detector_regions import cache_regions, enrolled_representatives, image_tensor, to_canvas  # noqa: E402
from repmet.models.detection.faster_rcnn import pool_box_features  # noqa: E402
from repmet.models.detection.region_scoring import clip_to_image, select_regions  # noqa: E402


@torch.no_grad()
def recall_by_stage(model, split, classes: list[int]) -> dict[str, float]:
    hits: Counter = Counter()
    total = 0
    heads = model.roi_heads
    for image in split.images:
        wanted = np.isin(image.labels, classes) & ~image.difficult
        if not wanted.any():
            continue
        picture = image_tensor(image.path)
        batch, _ = model.transform([picture])
        truth = to_canvas(image.boxes[wanted], tuple(picture.shape[-2:]), batch.image_sizes[0], "cpu")
        total += len(truth)
        features = model.backbone(batch.tensors)
        rois = model.rpn(batch, features)[0][0]
        box_features = heads.box_head(pool_box_features(heads.box_roi_pool, features, rois))
        size = torch.tensor(batch.image_sizes[0], dtype=torch.float32)
        refined = clip_to_image(heads.box_coder.decode_single(heads.box_predictor.deltas(box_features), rois), size)
        regions, _ = select_regions(refined, heads.box_predictor.objectness(box_features),
                                    torch.ones(len(rois), dtype=torch.bool), model.size.regions_per_image,
                                    model.size.region_nms)
        stages = {"RPN top 50": rois[:50], "RPN top 100": rois[:100], f"RPN all ({len(rois)})": rois,
                  "refined by the box head": refined, f"regions classified ({model.size.regions_per_image})": regions}
        for name, boxes in stages.items():
            hits[name] += int((box_iou(truth, boxes).max(dim=1).values >= 0.5).sum()) if len(boxes) else 0
    return {name: count / max(total, 1) for name, count in hits.items()}


def region_truth(cached, split, classes: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per image: each region's best IoU with an enrolled box, and that box's class."""
    out = []
    for regions, image in zip(cached, split.images):
        wanted = np.isin(image.labels, classes) & ~image.difficult
        boxes = resize_boxes(regions.boxes.cpu(), list(regions.image_size), list(regions.original_size))
        if not wanted.any():
            out.append((torch.zeros(len(boxes)), torch.full((len(boxes),), -1)))
            continue
        best, index = box_iou(boxes, torch.as_tensor(image.boxes[wanted], dtype=torch.float32)).max(dim=1)
        out.append((best, torch.as_tensor(image.labels[wanted])[index]))
    return out


def with_oracle(cached, truths, reps, label_map, perfect_objectness: bool, perfect_class: bool):
    changed = []
    for regions, (iou, true_class) in zip(cached, truths):
        positive = iou >= 0.5
        objectness, embeddings = regions.objectness.clone(), regions.embeddings.clone()
        if perfect_objectness:
            objectness = torch.where(objectness >= 0, torch.where(positive, 1.0, 0.01), objectness)
        if perfect_class:
            for row in torch.nonzero(positive).flatten().tolist():
                embeddings[row] = reps[label_map.index(int(true_class[row])), 0]
        changed.append(dataclasses.replace(regions, objectness=objectness, embeddings=embeddings))
    return changed


def kinds_of_top_detections(found, split, classes: list[int], tops=(50, 100, 200)) -> dict[int, Counter]:
    rows = []
    for detections, image in zip(found, split.images):
        wanted = np.isin(image.labels, classes) & ~image.difficult
        truth, truth_labels = torch.as_tensor(image.boxes[wanted], dtype=torch.float32), image.labels[wanted]
        for box, score, label in zip(detections.boxes, detections.scores, detections.labels):
            if label not in classes:
                continue
            iou = box_iou(torch.as_tensor(box[None], dtype=torch.float32), truth)[0].numpy() if len(truth) else []
            same = max(iou[truth_labels == label], default=0.0)
            other = max(iou[truth_labels != label], default=0.0)
            kind = ("hit" if same >= 0.5 else "wrong class" if other >= 0.5
                    else "poor box" if max(same, other) >= 0.1 else "background")
            rows.append((float(score), kind))
    rows.sort(key=lambda row: -row[0])
    return {top: Counter(kind for _, kind in rows[:top]) for top in tops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--folder", required=True)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--format", choices=("voc", "coco"), default="voc")
    parser.add_argument("--support-split", default="trainval")
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--min-boxes", type=int, default=5)
    parser.add_argument("--classes", default=None)
    parser.add_argument("--with-base", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    model = open_checkpoint(args.checkpoint).model.eval()
    folder = Path(args.folder) if Path(args.folder).is_absolute() else Path(args.data_root or default_data_root()) / args.folder
    support_split, test = load_split(folder, args.support_split, args.format), load_split(folder, args.test_split,
                                                                                          args.format)
    names = args.classes.split(",") if args.classes else enrollable(support_split, test, args.shots, args.min_boxes)
    ids = test.class_index(names, "enrolled classes")
    print(f"{args.checkpoint} on {test.description}: {len(names)} enrolled classes, {args.shots} shots, "
          f"{args.episodes} episodes, {'with' if args.with_base else 'without'} the base classes\n")
    print("| stage | recall at IoU 0.5 |\n|---|---:|")
    for name, value in recall_by_stage(model, test, ids).items():
        print(f"| {name} | {100 * value:.1f}% |")
    cached = cache_regions(model, test, torch.device("cpu"), True)
    truths = region_truth(cached, test, ids)
    base = model.region_gallery.gallery().detach().clone()
    variants = [(o, c) for c in (False, True) for o in (False, True)]
    scores: dict = {}
    first_episode = None
    for episode in range(args.episodes):
        support = sample_support(support_split, names, args.shots, args.seed, episode)
        reps = enrolled_representatives(model, support, model.region_gallery.reps_per_class, args.seed,
                                        torch.device("cpu"))
        label_map = list(ids)
        gallery = torch.cat([base, reps]) if args.with_base else reps
        full_map = [-1] * len(base) + label_map if args.with_base else label_map
        for power in (1.0, 0.0):
            model.size = dataclasses.replace(model.size, objectness_power=power)
            for perfect_objectness, perfect_class in variants:
                regions = with_oracle(cached, truths, reps, label_map, perfect_objectness, perfect_class)
                found = detect_cached(model, regions, gallery, full_map)
                scores.setdefault((power, perfect_objectness, perfect_class), []).append(
                    detection_ap(test, found, ids)["ap50"])
                if episode == 0 and power == 1.0 and not (perfect_objectness or perfect_class):
                    first_episode = found
    print(f"\nRegion recall at IoU 0.5 (the ceiling of every row): {100 * region_recall(cached, test, ids):.1f}%\n")
    print("| objectness | class posterior | AP50, power 1 | AP50, power 0 |\n|---|---|---:|---:|")
    for perfect_objectness, perfect_class in variants:
        cells = [100 * np.mean(scores[(p, perfect_objectness, perfect_class)]) for p in (1.0, 0.0)]
        print(f"| {'perfect' if perfect_objectness else 'the model'} | {'perfect' if perfect_class else 'the model'} | "
              f"{cells[0]:.1f} | {cells[1]:.1f} |")
    print("\nTop detections of episode 0 (objectness power 1), by kind:\n")
    print("| top | hit | wrong class | poor box (IoU 0.1-0.5) | background |\n|---:|---:|---:|---:|---:|")
    for top, counts in kinds_of_top_detections(first_episode, test, ids).items():
        print(f"| {top} | {counts['hit']} | {counts['wrong class']} | {counts['poor box']} | {counts['background']} |")


if __name__ == "__main__":
    main()
