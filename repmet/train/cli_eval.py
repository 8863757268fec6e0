"""``metric-eval CHECKPOINT [--split test] [--way N] [--shot K] [--query Q] [--episodes E] [--seed S] [--json FILE]``."""

from __future__ import annotations

import json
from pathlib import Path

import click
import torch

from repmet.cli_errors import report_user_errors
from repmet.data import load_few_shot_split
from repmet.train.checkpoint import load_checkpoint
from repmet.train.config import config_from_dict
from repmet.train.distributed import resolve_device
from repmet.train.evaluate import evaluate_episodes
from repmet.train.fine_grained_eval import evaluate_fine_grained
from repmet.train.losses import create_loss
from repmet.train.trainer import build_encoder


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
    """Evaluate a trained few-shot CHECKPOINT on episodes drawn from a split's classes."""
    bundle = load_checkpoint(checkpoint)
    config = config_from_dict(bundle["config"], source=f"the config stored in {checkpoint}")
    if data_root:
        config.data.root = data_root
    e = config.eval
    split = split or config.data.test_split
    way, query = way or e.way, query or e.query
    episodes = episodes or e.test_episodes
    seed = e.seed if seed is None else seed
    shots = [shot] if shot else None
    if config.method == "protonets":
        result = _evaluate_episodic(config, bundle, split, way, shot or e.shot, query, episodes, seed, device)
    else:
        config.train.device = device
        result = _evaluate_fine_grained(config, bundle, split, way, shots or e.fewshot_shots, query, episodes, seed)
    if json_path:
        Path(json_path).write_text(json.dumps({**result, "checkpoint": str(checkpoint)}, indent=2) + "\n")


def _evaluate_episodic(config, bundle, split, way, shot, query, episodes, seed, device) -> dict:
    torch_device = resolve_device(device)
    encoder = build_encoder(config)
    encoder.load_state_dict(bundle["model"])
    memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format
    encoder.to(torch_device, memory_format=memory_format)
    d = config.data
    data = load_few_shot_split(d.dataset, split, d.root, d.image_size, d.download)
    score = evaluate_episodes(encoder, create_loss(config.loss.name, config.loss.distance), data, way, shot, query,
                              episodes, seed, torch_device, memory_format, progress=True)
    click.echo(f"{config.name} on {data.description}: {way}-way {shot}-shot, {query} queries, {episodes} episodes: "
               f"accuracy {100 * score.accuracy:.2f} +- {100 * score.ci95:.2f} %")
    return {"accuracy": score.accuracy, "ci95": score.ci95, "episodes": episodes, "way": way, "shot": shot,
            "query": query, "split": split, "seed": seed}


def _evaluate_fine_grained(config, bundle, split, way, shots, query, episodes, seed) -> dict:
    result = evaluate_fine_grained(config, bundle["model"], split, way, shots, query, episodes, seed)
    click.echo(f"{config.name} on {split}: closed-set accuracy {100 * result['accuracy']:.2f} % over "
               f"{result['images']} images of {result['classes']} classes; precision@1 "
               f"{100 * result['precision_at_1']:.2f} %, MAP@R {100 * result['map_at_r']:.2f} %")
    for few in result["fewshot"]:
        click.echo(f"  few-shot on held-out classes {few['classes'][0]}-{few['classes'][1]}: {few['way']}-way "
                   f"{few['shot']}-shot, {few['episodes']} episodes: {100 * few['accuracy']:.2f} +- "
                   f"{100 * few['ci95']:.2f} %")
    return result

if __name__ == "__main__":
    main()
