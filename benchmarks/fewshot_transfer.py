"""Does a trained embedding transfer to classes it never saw? Few-shot episodes on a config's
held-out classes (``data.fewshot_classes``) with each checkpoint's embedding, and with the raw
ImageNet features of the same backbone (L2-normalised) on the very same episodes.

    python benchmarks/fewshot_transfer.py RUN/checkpoints/best.pt [MORE.pt ...] [--episodes 1000]

Each row: the checkpoint's closed-set accuracy on the test images of its own classes, and
5-way 1- and 5-shot accuracy on the held-out classes with 95% CIs (15 queries per class; the
support embeddings are the representatives). Works for any dataset the configs can name
(``data.dataset: folder`` included), as long as the checkpoints share held-out classes.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from repmet.data import load_labeled_classes
from repmet.evaluate.feature_baselines import raw_backbone_features
from repmet.evaluate.fewshot import fewshot_episodes
from repmet.evaluate.fine_grained import (closed_set_accuracy, embed_images, feature_source, held_out_images,
                                          trained_classes_only)
from repmet.methods.fine_grained import transform_spec
from repmet.methods.trained import open_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--query", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = torch.device("cpu")
    rows, reference = [], None
    for path in args.checkpoints:
        start = time.perf_counter()
        trained = open_checkpoint(path)
        config, model = trained.config, trained.model.eval()
        if not config.data.fewshot_classes:
            raise SystemExit(f"{path}: its config names no data.fewshot_classes to transfer to")
        held_out = held_out_images(config)
        spec = transform_spec(config)
        source = feature_source(config, model.backbone, spec, device, progress=True)
        test, labels = trained_classes_only(load_labeled_classes(config.data, config.data.test_split),
                                            trained.class_names)
        closed = closed_set_accuracy(model.method, embed_images(model, source, test), torch.from_numpy(labels))
        embeddings = embed_images(model, source, held_out).cpu()
        scores = [fewshot_episodes(embeddings, held_out.labels, args.way, shot, args.query, args.episodes,
                                   args.seed, trained.method.reps_per_class(config)) for shot in args.shots]
        rows.append((f"`{path}`", f"{100 * closed:.2f}", scores, time.perf_counter() - start))
        if reference is None:
            reference = (config, held_out)
        elif [str(p) for p in held_out.paths] != [str(p) for p in reference[1].paths]:
            raise SystemExit(f"{path} holds out other images than {args.checkpoints[0]}: its episodes would differ")
    config, held_out = reference
    raw_embeddings = F.normalize(raw_backbone_features(config, held_out.paths, device), dim=1)
    raw_scores = [fewshot_episodes(raw_embeddings, held_out.labels, args.way, shot, args.query, args.episodes,
                                   args.seed, 1) for shot in args.shots]
    first, last = config.data.fewshot_classes
    print(f"{args.way}-way episodes on held-out classes {first}-{last} ({len(held_out)} images), "
          f"{args.query} queries per class, {args.episodes} episodes, seed {args.seed}")
    shots = " | ".join(f"{s}-shot % (95% CI)" for s in args.shots)
    print(f"| embedding | closed-set test % (own classes) | {shots} | wall s |")
    print("|---|---|" + "---|" * len(args.shots) + "---|")
    for name, closed, scores, seconds in rows:
        cells = " | ".join(f"{100 * a:.2f} +- {100 * c:.2f}" for a, c in scores)
        print(f"| {name} | {closed} | {cells} | {seconds:.0f} |")
    cells = " | ".join(f"{100 * a:.2f} +- {100 * c:.2f}" for a, c in raw_scores)
    print(f"| raw {config.model.name} features, L2-normalised | - | {cells} | - |")


if __name__ == "__main__":
    main()
