"""What every training run writes into its output folder, in one place for both trainers:
the resolved config, TensorBoard scalars, ``metrics.jsonl`` and the best / last checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from repmet.checkpoint import save_checkpoint


class RunOutputs:
    def __init__(self, out_dir: Path, config: dict[str, Any], print_records: bool) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imported late: slow, and only rank 0 needs it

        self.out_dir, self.print_records = out_dir, print_records
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.writer = SummaryWriter(str(out_dir / "tb"))

    def end_of_epoch(self, bundle: dict[str, Any], improved: bool, scalars: tuple[str, ...]) -> None:
        """Checkpoints first (``last.pt`` always, ``best.pt`` when validation improved), then the
        metrics, so a line in ``metrics.jsonl`` always has its checkpoint."""
        checkpoints = self.out_dir / "checkpoints"
        save_checkpoint(bundle, checkpoints / "last.pt")
        if improved:
            save_checkpoint(bundle, checkpoints / "best.pt")
        history = bundle["history"]
        (self.out_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
        record = history[-1]
        for key in scalars:
            self.writer.add_scalar(key.replace("_", "/", 1), record[key], record["epoch"])
        self.writer.flush()
        if self.print_records:
            print(json.dumps(record), flush=True)

    def close(self) -> None:
        self.writer.close()
