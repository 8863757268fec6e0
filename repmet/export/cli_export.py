"""``metric-export CHECKPOINT --format torchscript|onnx|int8|trt|aoti [--format ...] --out DIR [--fp16] [--opset N] [--max-batch B] [--calibration FOLDER] [--max-accuracy-cost POINTS]``."""

from __future__ import annotations

import click

from repmet.cli_errors import report_user_errors
from repmet.export.artifact_writer import export_artifact
from repmet.export.formats import format_names
from repmet.export.formats.onnx.classifier import DEFAULT_OPSET


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--format", "formats", multiple=True, required=True, type=click.Choice(format_names()),
              help="Graph format; repeat to put several into one artifact.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Artifact folder to write.")
@click.option("--fp16", is_flag=True, help="Build the TensorRT engine in fp16 (differences reported, not gated).")
@click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True, help="ONNX opset.")
@click.option("--max-batch", type=int, default=64, show_default=True, help="Largest batch of the TensorRT profile.")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Folder holding the datasets (real images verify the export).")
@click.option("--samples", type=click.Path(file_okay=False), default=None,
              help="Verify on the images of this folder instead of the dataset's test split.")
@click.option("--calibration", type=click.Path(file_okay=False), default=None,
              help="int8: calibrate on the images of this folder (default: the checkpoint's training split).")
@click.option("--max-accuracy-cost", type=float, default=1.0, show_default=True,
              help="int8: refuse the artifact when it costs more points of test accuracy than this against fp32.")
@report_user_errors
def main(checkpoint: str, formats: tuple[str, ...], out: str, fp16: bool, opset: int, max_batch: int,
         data_root: str | None, samples: str | None, calibration: str | None, max_accuracy_cost: float) -> None:
    """Export a trained CHECKPOINT to an artifact folder, verified against PyTorch."""
    metadata = export_artifact(checkpoint, out, list(formats), opset, fp16, max_batch, data_root, samples,
                               log=click.echo, calibration=calibration, max_accuracy_cost=max_accuracy_cost)
    files = ", ".join(metadata["files"])
    click.echo(f"wrote {out}: {metadata['name']} ({metadata['method']}), {len(metadata['class_names'])} trained "
               f"classes, embedding {metadata['embedding']['dim']}-d; files: {files}")


if __name__ == "__main__":
    main()
