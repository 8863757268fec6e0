"""``metric-export CHECKPOINT --format NAME [--format ...] --out DIR [--fp16] [--opset N] [--max-batch B]``,
plus the options each format owns (``FormatOption``: int8's ``--calibration FOLDER``, ...)."""

from __future__ import annotations

import click

from repmet.cli_errors import report_user_errors
from repmet.export.artifact_writer import export_artifact
from repmet.export.formats import format_names, format_options
from repmet.export.formats.onnx.classifier import DEFAULT_OPSET


def with_format_options(command):
    """Adds every registered format's own options to ``command`` (None when not given: the format's default)."""
    for option in reversed(format_options()):
        kind = click.Path(file_okay=False) if option.is_path else option.type or type(option.default)
        default = "" if option.default is None else f" [default: {option.default}]"
        command = click.option("--" + option.name.replace("_", "-"), option.name, type=kind, default=None,
                               help=option.help + default)(command)
    return command


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--format", "formats", multiple=True, required=True, type=click.Choice(format_names()),
              help="Graph format; repeat to put several into one artifact.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Artifact folder to write.")
@click.option("--fp16", is_flag=True, help="Build the TensorRT engine in fp16 (differences reported, not gated).")
@click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True, help="ONNX opset.")
@click.option("--max-batch", type=int, default=64, show_default=True,
              help="Largest batch of the TensorRT profile and of Triton's dynamic batching.")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Folder holding the datasets (real images verify the export).")
@click.option("--samples", type=click.Path(file_okay=False), default=None,
              help="Verify on the images of this folder instead of the dataset's test split.")
@with_format_options
@report_user_errors
def main(checkpoint: str, formats: tuple[str, ...], out: str, fp16: bool, opset: int, max_batch: int,
         data_root: str | None, samples: str | None, **format_values) -> None:
    """Export a trained CHECKPOINT to an artifact folder, verified against PyTorch."""
    given = {name: value for name, value in format_values.items() if value is not None}
    metadata = export_artifact(checkpoint, out, list(formats), opset, fp16, max_batch, data_root, samples,
                               log=click.echo, format_options=given)
    files = ", ".join(metadata["files"])
    click.echo(f"wrote {out}: {metadata['name']} ({metadata['method']}), {len(metadata['class_names'])} trained "
               f"classes, embedding {metadata['embedding']['dim']}-d; files: {files}")


if __name__ == "__main__":
    main()
