"""The Omniglot results table: the four shipped checkpoints, 1000 test episodes each.

    python benchmarks/omniglot_accuracy.py [--checkpoints checkpoints/omniglot] [--episodes 1000]

Prints, per checkpoint, the training it had (episodes, device, wall time from its
history) and the 1000-episode test accuracy with its 95% CI, beside the paper and the
original PyTorch code.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


from repmet.checkpoint import load_checkpoint
from repmet.devices import resolve_device
from repmet.evaluate.registry import evaluate_trained
from repmet.methods import EvalRequest, open_checkpoint

REFERENCE = {  # (paper, original PyTorch code), 5-way 1-shot, 5-way 5-shot, 20-way 1-shot, 20-way 5-shot
    "protonets_1_5": (98.8, 98.81),
    "protonets_5_5": (99.7, 99.56),
    "protonets_1_20": (96.0, 94.81),
    "protonets_5_20": (98.9, 98.51),
}
TARGET = {"protonets_1_5": 98.0, "protonets_5_5": 99.3, "protonets_1_20": 94.5, "protonets_5_20": 98.3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", default="checkpoints/omniglot")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = []
    for name in REFERENCE:
        path = Path(args.checkpoints) / f"{name}.pt"
        history = load_checkpoint(path)["history"]
        trained = open_checkpoint(path)  # what metric-eval runs
        config = trained.config
        d, e, t = config.data, config.eval, config.train
        start = time.perf_counter()
        score = evaluate_trained(trained, EvalRequest(episodes=args.episodes, device=device, progress=False))
        eval_seconds = time.perf_counter() - start
        train_minutes = sum(r["seconds"] for r in history) / 60
        episodes = len(history) * t.episodes_per_epoch
        paper, original = REFERENCE[name]
        rows.append(f"| `{name}` (config `{config.name}`) | {t.way}-way {t.shot}-shot on {d.train_split} | "
                    f"{episodes} | CPU, 2 cores | {train_minutes:.0f} min | {e.way}-way {e.shot}-shot | "
                    f"**{100 * score['accuracy']:.2f} +- {100 * score['ci95']:.2f}** | {TARGET[name]} | {paper} | "
                    f"{original} |")
        print(f"{name}: {100 * score['accuracy']:.2f} +- {100 * score['ci95']:.2f} ({args.episodes} episodes, "
              f"{eval_seconds:.0f} s)", flush=True)
    print()
    print("| checkpoint | training episodes | episodes trained | device | train wall time | test | "
          "accuracy % (1000 episodes, 95% CI) | target | paper | original code |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
