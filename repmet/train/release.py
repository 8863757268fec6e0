"""Turn a run's checkpoint into a small release checkpoint for a given config.

``python -m repmet.train.release RUN_CHECKPOINT CONFIG OUT.pt [--half]``

Keeps the weights, the history, the config and the checkpoint's description (method, class
names, preprocessing, gallery); drops optimizer, scheduler and RNG state (a release is for
evaluation and export, not for resuming). CONFIG may differ from the run's config only in
``name``, ``eval`` and the settings of the method's section that only evaluation reads
(``Method.evaluation_settings``: the detector's shots, episodes and baseline): that is how one
training run honestly serves ``protonets_1_5`` and ``protonets_1_20``, which train identically. A version 1 checkpoint is released in the
current format, its description derived from its config and weights. ``--half`` stores the
floating-point weights as float16 (half the file, for checkpoints shipped in the repository);
loading copies them back into the float32 model, so evaluate the released file itself.
"""

from __future__ import annotations

import sys

import click

from repmet.checkpoint import load_checkpoint, save_checkpoint
from repmet.cli_errors import report_user_errors
from repmet.methods.config_loading import config_from_dict, load_config
from repmet.errors import UserError
from repmet.methods import get_method, open_checkpoint

RELEASE_MAY_CHANGE = ("name", "eval")


def release_checkpoint(run_checkpoint: str, config_path: str, out_path: str, half: bool = False) -> dict:
    bundle = load_checkpoint(run_checkpoint)
    trained = config_from_dict(bundle["config"], source=f"the config stored in {run_checkpoint}").to_dict()
    target = load_config(config_path).to_dict()
    method = get_method(trained["method"], where=f"the config stored in {run_checkpoint}")
    may_change = [*RELEASE_MAY_CHANGE, *(f"{method.section}.{key}" for key in method.evaluation_settings)]

    def training_part(config: dict, section: str):
        value = config.get(section)
        if section == method.section and isinstance(value, dict):
            return {k: v for k, v in value.items() if k not in method.evaluation_settings}
        return value

    for section in sorted(set(trained) | set(target)):
        if section not in RELEASE_MAY_CHANGE and training_part(trained, section) != training_part(target, section):
            raise UserError(f"{config_path} differs from the run of {run_checkpoint} in section {section!r}; "
                            f"a release may change only {', '.join(map(repr, may_change))}")
    description = open_checkpoint(run_checkpoint).description()
    slim = {key: bundle[key] for key in ("model", "epoch", "history", "best_val", "world_size") if key in bundle}
    slim.update(description, config=target, trained_as=bundle.get("trained_as", trained["name"]))
    if half:
        slim["model"] = {k: v.half() if v.is_floating_point() else v for k, v in slim["model"].items()}
        # the description's gallery describes the stored weights: rounded the same way
        gallery = slim["gallery"]
        slim["gallery"] = {**gallery, "representatives": gallery["representatives"].half().float()}
    save_checkpoint(slim, out_path)
    return slim


@click.command()
@click.argument("run_checkpoint", type=click.Path(dir_okay=False))
@click.argument("config_path", type=click.Path(dir_okay=False))
@click.argument("out_path", type=click.Path(dir_okay=False))
@click.option("--half", is_flag=True, help="Store the weights as float16 (half the file).")
@report_user_errors
def main(run_checkpoint: str, config_path: str, out_path: str, half: bool) -> None:
    slim = release_checkpoint(run_checkpoint, config_path, out_path, half)
    click.echo(f"wrote {out_path}: {slim['config']['name']} (trained as {slim['trained_as']}, epoch {slim['epoch']})")


if __name__ == "__main__":
    sys.exit(main())
