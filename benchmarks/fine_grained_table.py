"""The fine-grained results table of the README, from training runs and their evaluations.

    metric-train configs/NAME.yaml                      # writes runs/NAME
    metric-eval runs/NAME/checkpoints/{best,last}.pt --json runs/NAME/eval.json
    python benchmarks/fine_grained_table.py runs/NAME [runs/OTHER ...]

Each row reads ``RUN/config.yaml`` (the resolved config), ``RUN/metrics.jsonl`` (one record per
epoch; ``wall_s`` is the time since the run started, feature caching included) and
``RUN/eval.json``: closed-set test accuracy against the trained gallery, precision@1, MAP@R.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml


def row(run: Path) -> str:
    config = yaml.safe_load((run / "config.yaml").read_text())
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    result = json.loads((run / "eval.json").read_text())
    keep = config["train"]["keep"]
    if keep == "best":
        best = max(history, key=lambda r: r["val_acc"])
        selected = f"val (best epoch {best['epoch']} of {len(history)})"
    else:
        selected = f"{len(history)} epochs (fixed)"
    wall = history[-1].get("wall_s")
    wall_text = "-" if wall is None else f"{wall:.0f} s" if wall < 120 else f"{wall / 60:.0f} min"
    m = config["model"]
    backbone = m["name"] + (", frozen" if m["frozen"] else f", top {m['trainable_blocks']} blocks trained"
                            if m.get("trainable_blocks") else ", fine-tuned")
    return (f"| `{config['name']}` | {config['method']} | {backbone} | {config['data']['train_split']} | {selected} | "
            f"{wall_text} | {100 * result['accuracy']:.2f} | {100 * result['precision_at_1']:.2f} | "
            f"{100 * result['map_at_r']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    print("| config | method | backbone | trained on | selected by | train wall time | test accuracy % "
          "(closed set) | precision@1 % | MAP@R % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        print(row(run))


if __name__ == "__main__":
    main()
