"""Print the README's few-shot detection table from ``metric-eval DETECTOR --json RESULT.json``.

    python benchmarks/detection_table.py RESULT.json [--train-minutes M]
"""

from __future__ import annotations

import argparse
import json


def percent(value, ci=None) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}" + (f" +- {100 * ci:.1f}" if ci is not None else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result")
    args = parser.parse_args()
    result = json.loads(open(args.result).read())
    print(f"Base AP50 with the trained representatives ({result['images']} test images): "
          f"**{percent(result['base_ap50'])}** (AP50:95 {percent(result['base_ap50_95'])})")
    print()
    print("| K shots | episodes | RepMet enrollment, novel AP50 | base AP50 in the same episodes | "
          "fine-tuned linear classifier (TFA), novel AP50 | its base AP50 |")
    print("|---:|---:|---:|---:|---:|---:|")
    for few in result["fewshot"]:
        tuned = few.get("finetuned_linear_baseline") or {}
        print(f"| {few['shot']} | {few['episodes']} | **{percent(few['novel_ap50'], few['novel_ap50_ci95'])}** | "
              f"{percent(few['base_ap50'], few['base_ap50_ci95'])} | "
              f"{percent(tuned.get('novel_ap50'), tuned.get('novel_ap50_ci95'))} | "
              f"{percent(tuned.get('base_ap50'), tuned.get('base_ap50_ci95'))} |")
    print()
    print("Per novel class (RepMet enrollment, mean over episodes):")
    for few in result["fewshot"]:
        classes = ", ".join(f"{name} {percent(v)}" for name, v in few["novel_per_class_ap50"].items())
        print(f"- {few['shot']}-shot: {classes}")


if __name__ == "__main__":
    main()
