"""``metric-eval CHECKPOINT [--split test] [--way N] [--shot K] [--query Q] [--episodes E] [--seed S] [--json FILE]``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from repmet.cli_errors import report_user_errors
from repmet.devices import flush_denormals, resolve_device
from repmet.errors import UserError
from repmet.evaluate.registry import evaluate_trained
from repmet.methods import EvalRequest, open_checkpoint


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--split", default=None, help="Split whose classes are evaluated (default: the config's test split).")
@click.option("--way", type=click.IntRange(min=1), default=None, help="Classes per episode (default: config eval.way).")
@click.option("--shot", type=click.IntRange(min=1), default=None, help="Support images per class (default: eval.shot).")
@click.option("--query", type=click.IntRange(min=1), default=None, help="Query images per class (default: eval.query).")
@click.option("--episodes", type=click.IntRange(min=1), default=None, help="Episodes (default: eval.test_episodes, 1000).")
@click.option("--seed", type=int, default=None, help="Episode seed (default: eval.seed).")
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="Folder holding the datasets.")
@click.option("--device", default="auto", help="auto (cuda when present), cpu or cuda[:N].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the result as JSON.")
@report_user_errors
def main(checkpoint: str, split: str | None, way: int | None, shot: int | None, query: int | None,
         episodes: int | None, seed: int | None, data_root: str | None, device: str, json_path: str | None) -> None:
    """Evaluate a trained CHECKPOINT: few-shot episodes (Prototypical Networks), or closed-set
    accuracy, retrieval and few-shot episodes on held-out classes (RepMet, Magnet)."""
    if json_path and not Path(json_path).resolve().parent.is_dir():  # before a long evaluation, not after
        raise UserError(f"--json {json_path}: folder {Path(json_path).parent} does not exist; create it first")
    trained = open_checkpoint(checkpoint)
    if data_root:
        trained.config.data.root = data_root
    flush_denormals()
    request = EvalRequest(split, way, shot, query, episodes, seed, resolve_device(device, option="--device"))
    result = evaluate_trained(trained, request)
    for line in trained.method.summary(trained.config, result):
        click.echo(line)
    if json_path:
        Path(json_path).write_text(json.dumps({**result, "checkpoint": str(checkpoint)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
