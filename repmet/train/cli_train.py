"""``metric-train CONFIG [--set k=v ...] [--out DIR] [--resume]``."""

from __future__ import annotations

from pathlib import Path

import click

from repmet.cli_errors import report_user_errors
from repmet.methods.config_loading import load_config
from repmet.methods import get_method
from repmet.train.batch_trainer import BatchTrainer
from repmet.train.detection_trainer import DetectionTrainer
from repmet.train.distributed import teardown_distributed
from repmet.train.episodic_trainer import EpisodicTrainer

TRAINERS = {"episodic": EpisodicTrainer, "batch": BatchTrainer, "detection": DetectionTrainer}  # Method.trainer -> the loop that trains it


@click.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value by its dotted key, e.g. --set train.lr=0.01 (repeatable).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: runs/<config name>).")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints/last.pt.")
@click.option("--overwrite", is_flag=True, help="Replace the run already in OUT (its checkpoints, metrics and logs).")
@click.option("--no-progress", is_flag=True, help="Print one JSON line per epoch instead of progress bars.")
@report_user_errors
def main(config_path: str, overrides: tuple[str, ...], out_dir: str | None, resume: bool, overwrite: bool,
         no_progress: bool) -> None:
    """Train the experiment described by the YAML file CONFIG."""
    config = load_config(config_path, overrides)
    out = Path(out_dir) if out_dir else Path("runs") / config.name
    trainer = None
    try:
        trainer_class = TRAINERS[get_method(config.method).trainer]
        trainer = trainer_class(config, out, resume=resume, progress=not no_progress, overwrite=overwrite)
        summary = trainer.fit()
        if trainer.ctx.is_main:
            best = "" if summary["best_val"] != summary["best_val"] else f"best val accuracy {summary['best_val']:.4f}; "
            click.echo(f"done: {best}checkpoint {summary['checkpoint']}")
            click.echo(f"evaluate: metric-eval {summary['checkpoint']} --split {config.data.test_split}")
    finally:
        if trainer is not None:
            trainer.folder.release()
        teardown_distributed()


if __name__ == "__main__":
    main()
