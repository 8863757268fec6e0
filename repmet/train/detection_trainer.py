"""Base training of the few-shot detector: batches of base-class images (novel boxes as ignore
regions), the RPN, box and RepMet losses, one process, resumable.

Batches are drawn from a generator seeded by ``(seed, epoch)`` (the order) and ``(seed, epoch,
step)`` (the flips), so a resumed run sees the same batches as an uninterrupted one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from repmet.checkpoint import last_checkpoint
from repmet.config import ExperimentConfig
from repmet.data.detection import BaseTrainingImage
from repmet.errors import UserError
from repmet.methods.detector_regions import image_tensor
from repmet.methods import describe, get_method
from repmet.train.distributed import single_process
from repmet.train.optim import build_optimizer, build_scheduler, require_finite_loss
from repmet.train.run_folder import RunFolder
from repmet.train.resume import restore_training_state
from repmet.train.run_outputs import RunOutputs

LOSSES = ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")


def training_example(image: BaseTrainingImage, flip: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The image and its targets: base boxes labelled 1..B, ignore regions labelled -1."""
    picture = image_tensor(image.path)
    boxes = torch.from_numpy(np.concatenate([image.boxes, image.ignore]))
    labels = torch.from_numpy(np.concatenate([image.labels + 1, -np.ones(len(image.ignore), np.int64)]))
    if flip:
        picture = picture.flip(-1)
        boxes = torch.stack([image.width - boxes[:, 2], boxes[:, 1], image.width - boxes[:, 0], boxes[:, 3]], dim=1)
    return picture, {"boxes": boxes, "labels": labels}


class DetectionTrainer:
    def __init__(self, config: ExperimentConfig, out_dir: str | Path, resume: bool = False, progress: bool = True,
                 overwrite: bool = False) -> None:
        self.config, self.out_dir, self.progress = config, Path(out_dir), progress
        self.method = get_method(config.method)
        self.ctx = single_process(config.train.device, config.method)
        self.folder = RunFolder(self.out_dir)
        self.folder.claim(resume, overwrite)
        self.images, self.class_names = self.method.base_training_set(config)
        self.per_batch, self.hflip = self.method.batching(config)
        if len(self.images) < self.per_batch:
            raise UserError(f"the training split has {len(self.images)} images with base boxes, fewer than the "
                            f"{self.per_batch} images per batch")
        self.steps_per_epoch = len(self.images) // self.per_batch
        torch.manual_seed(config.seed)
        self.model = self.method.build_model(config, self.class_names).to(self.ctx.device)
        self.optimizer = build_optimizer(self.model.parameters(), config.train)
        self.scheduler = build_scheduler(self.optimizer, config.train)
        self.start_epoch, self.history = 0, []
        if resume:
            self._restore(last_checkpoint(self.out_dir))

    def _bundle(self, epoch: int) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "torch_rng": torch.get_rng_state(), "epoch": epoch,
                "best_val": -1.0, "history": self.history, "config": self.config.to_dict(),
                **describe(self.method, self.config, self.model, self.class_names)}

    def _restore(self, path: Path) -> None:
        bundle = restore_training_state(path, self.model, self.optimizer, self.scheduler)
        self.start_epoch, self.history = bundle["epoch"], list(bundle["history"])

    def train_epoch(self, epoch: int) -> dict[str, float]:
        c, per_batch = self.config, self.per_batch
        order = np.random.default_rng([c.seed, epoch]).permutation(len(self.images))
        self.model.train()
        totals = dict.fromkeys(LOSSES, 0.0)
        start = time.perf_counter()
        bar = tqdm(range(self.steps_per_epoch), desc=f"epoch {epoch + 1}/{c.train.epochs}", disable=not self.progress,
                   leave=False, dynamic_ncols=True)
        for step in bar:
            flips = np.random.default_rng([c.seed, epoch, step]).random(per_batch) < 0.5
            batch = [training_example(self.images[i], self.hflip and flip)
                     for i, flip in zip(order[step * per_batch:(step + 1) * per_batch], flips)]
            pictures = [p.to(self.ctx.device) for p, _ in batch]
            targets = [{k: v.to(self.ctx.device) for k, v in t.items()} for _, t in batch]
            losses = self.model(pictures, targets)
            loss = sum(losses.values())
            require_finite_loss(loss.item(), epoch, step, self.out_dir)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            for key in LOSSES:
                totals[key] += losses[key].item()
            if self.progress:
                bar.set_postfix(loss=f"{sum(totals.values()) / (step + 1):.3f}",
                                steps_per_s=f"{(step + 1) / (time.perf_counter() - start):.2f}")
        seconds = time.perf_counter() - start
        record = {key: value / self.steps_per_epoch for key, value in totals.items()}
        return {"train_loss": sum(record.values()), **record, "seconds": seconds,
                "images_per_s": self.steps_per_epoch * per_batch / seconds}

    def fit(self) -> dict[str, Any]:
        tc = self.config.train
        outputs = RunOutputs(self.out_dir, self.config.to_dict(), not self.progress)
        for epoch in range(self.start_epoch, tc.epochs):
            record = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"], **self.train_epoch(epoch)}
            if epoch + 1 == tc.epochs:  # e.g. the gallery the checkpoint ships with, from the trained detector
                start = time.perf_counter()
                self.method.after_training(self.config, self.model, self.images, self.ctx.device, self.progress)
                record["gallery_fit_s"] = time.perf_counter() - start
            self.history.append(record)
            outputs.end_of_epoch(self._bundle(epoch + 1), True, ("train_loss", *LOSSES, "lr", "images_per_s"))
        outputs.close()
        self.folder.release()
        return {"checkpoint": str(self.out_dir / "checkpoints" / "last.pt"), "best_val": float("nan"),
                "epochs": tc.epochs, "history": self.history}
