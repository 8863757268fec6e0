"""Episodic training: sample, step, validate, checkpoint; resumable and distributed.

Under ``torchrun`` every optimizer step takes ``world_size * episodes_per_step``
episodes of the global, seeded stream: rank ``r`` computes its share, DDP averages the
gradients, so N processes train the same model as one process with N times the
``episodes_per_step``. Only rank 0 validates, logs and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from repmet.checkpoint import last_checkpoint, load_checkpoint, require_resumable
from repmet.config import ExperimentConfig
from repmet.methods.config_loading import config_from_dict
from repmet.data import EpisodeSampler, load_few_shot_split
from repmet.errors import UserError
from repmet.evaluate.episodes import evaluate_episodes, run_episode
from repmet.losses import create_loss
from repmet.methods import describe, get_method
from repmet.train.distributed import setup_distributed
from repmet.train.optim import build_optimizer, build_scheduler, require_finite_loss
from repmet.train.run_folder import RunFolder
from repmet.train.run_outputs import RunOutputs


class EpisodicTrainer:
    def __init__(self, config: ExperimentConfig, out_dir: str | Path, resume: bool = False,
                 progress: bool = True, overwrite: bool = False) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.method = get_method(config.method)
        self.ctx = setup_distributed(config.train.device)
        self.progress = progress and self.ctx.is_main
        self.folder = RunFolder(self.out_dir)
        if self.ctx.is_main:
            self.folder.claim(resume, overwrite)
        tc = config.train
        self.episodes_per_step = tc.episodes_per_step * self.ctx.world_size
        self.steps_per_epoch = self._steps_per_epoch()

        d = config.data
        self.train_data = load_few_shot_split(d.dataset, d.train_split, d.root, d.image_size, d.download)
        self.val_data = load_few_shot_split(d.dataset, d.val_split, d.root, d.image_size, d.download)
        # Built now so an impossible episode fails at start-up, not after an epoch.
        self.sampler = EpisodeSampler(self.train_data.num_classes, self.train_data.images_per_class, tc.way,
                                      tc.shot, tc.query, tc.episodes_per_epoch, config.seed,
                                      description=self.train_data.description)
        e = config.eval
        EpisodeSampler(self.val_data.num_classes, self.val_data.images_per_class, e.way, e.shot, e.query,
                       e.val_episodes, e.seed, description=self.val_data.description)

        torch.manual_seed(config.seed)
        self.memory_format = torch.channels_last if tc.channels_last else torch.contiguous_format
        self.encoder = self.method.build_model(config, []).to(self.ctx.device, memory_format=self.memory_format)
        self.loss_fn = create_loss(config.loss.name, config.loss.distance)
        self.optimizer = build_optimizer(self.encoder.parameters(), tc)
        self.scheduler = build_scheduler(self.optimizer, tc, units_per_step=self.episodes_per_step)
        self.start_epoch, self.best_val, self.history = 0, -1.0, []
        if resume:
            self._restore(last_checkpoint(self.out_dir))
        self.model: nn.Module = self.encoder
        if self.ctx.enabled:
            device_ids = [self.ctx.device] if self.ctx.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.encoder, device_ids=device_ids)

    def _steps_per_epoch(self) -> int:
        tc = self.config.train
        if tc.episodes_per_epoch % self.episodes_per_step:
            raise UserError(
                f"train.episodes_per_epoch ({tc.episodes_per_epoch}) must be a multiple of the episodes per "
                f"optimizer step (train.episodes_per_step x processes = {self.episodes_per_step})")
        if tc.lr_decay_every % self.episodes_per_step:
            raise UserError(
                f"train.lr_decay_every ({tc.lr_decay_every}) must be a multiple of the episodes per optimizer "
                f"step ({self.episodes_per_step})")
        return tc.episodes_per_epoch // self.episodes_per_step

    # ---------------------------------------------------------------- checkpoints
    def _bundle(self, epoch: int) -> dict[str, Any]:
        return {
            "model": self.encoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "epoch": epoch,
            "best_val": self.best_val,
            "history": self.history,
            "world_size": self.ctx.world_size,
            "config": self.config.to_dict(),
            **describe(self.method, self.config, self.encoder, []),
        }

    def _restore(self, path: Path) -> None:
        bundle = load_checkpoint(path)
        require_resumable(bundle, path)
        # Compared after parsing, so a checkpoint written before a key gained a default still matches.
        if config_from_dict(bundle["config"], source=str(path)).model != self.config.model:
            raise UserError(f"cannot resume from {path}: it was trained with a different model section")
        self.encoder.load_state_dict(bundle["model"])
        self.optimizer.load_state_dict(bundle["optimizer"])
        self.scheduler.load_state_dict(bundle["scheduler"])
        torch.set_rng_state(bundle["torch_rng"])
        self.start_epoch, self.best_val, self.history = bundle["epoch"], bundle["best_val"], list(bundle["history"])

    # ---------------------------------------------------------------- training
    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        per_rank = self.config.train.episodes_per_step
        total_loss = total_acc = 0.0
        start = time.perf_counter()
        bar = tqdm(range(self.steps_per_epoch), desc=f"epoch {epoch + 1}/{self.config.train.epochs}",
                   disable=not self.progress, leave=False, dynamic_ncols=True)
        for step in bar:
            self.optimizer.zero_grad(set_to_none=True)
            for micro in range(per_rank):
                index = (step * self.ctx.world_size + self.ctx.rank) * per_rank + micro
                last_micro = micro == per_rank - 1
                sync = contextlib.nullcontext() if last_micro or not self.ctx.enabled else self.model.no_sync()
                with sync:
                    result = run_episode(self.model, self.loss_fn, self.train_data, self.sampler.episode(epoch, index),
                                         self.ctx.device, self.memory_format)
                    (result.loss / per_rank).backward()
                loss_value = result.loss.item()
                require_finite_loss(loss_value, epoch, step, self.out_dir)
                total_loss += loss_value
                total_acc += result.accuracy.item()
            self.optimizer.step()
            self.scheduler.step()
            if self.progress:
                done = (step + 1) * per_rank
                bar.set_postfix(loss=f"{total_loss / done:.4f}", acc=f"{total_acc / done:.4f}",
                                eps=f"{done * self.ctx.world_size / (time.perf_counter() - start):.2f}")
        seconds = time.perf_counter() - start
        n = self.steps_per_epoch * per_rank
        loss, acc = self.ctx.mean([total_loss / n, total_acc / n])
        return {"train_loss": loss, "train_acc": acc, "seconds": seconds,
                "episodes_per_s": self.config.train.episodes_per_epoch / seconds}

    def fit(self) -> dict[str, Any]:
        tc, e = self.config.train, self.config.eval
        outputs = RunOutputs(self.out_dir, self.config.to_dict(), not self.progress) if self.ctx.is_main else None
        epochs = tqdm(range(self.start_epoch, tc.epochs), desc="training", unit="epoch", initial=self.start_epoch,
                      total=tc.epochs, disable=not self.progress, dynamic_ncols=True)
        for epoch in epochs:
            lr = self.optimizer.param_groups[0]["lr"]
            record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, **self.train_epoch(epoch)}
            if outputs is not None:
                val = evaluate_episodes(self.encoder, self.loss_fn, self.val_data, e.way, e.shot, e.query,
                                        e.val_episodes, e.seed, self.ctx.device, self.memory_format)
                record.update(val_acc=val.accuracy, val_ci95=val.ci95, val_loss=val.loss)
                improved = val.accuracy > self.best_val
                self.best_val = max(self.best_val, val.accuracy)
                self.history.append(record)
                outputs.end_of_epoch(self._bundle(epoch + 1), improved,
                                     ("train_loss", "train_acc", "val_acc", "val_loss", "lr", "episodes_per_s"))
                epochs.set_postfix(loss=f"{record['train_loss']:.4f}", val=f"{val.accuracy:.4f}",
                                   best=f"{self.best_val:.4f}")
            self.ctx.barrier()
        if outputs is not None:
            outputs.close()
        self.folder.release()
        keep = self.out_dir / "checkpoints" / f"{tc.keep}.pt"
        return {"checkpoint": str(keep), "best_val": self.best_val, "epochs": tc.epochs, "history": self.history}
