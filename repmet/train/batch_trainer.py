"""Training RepMet and Magnet Loss on image-classification datasets.

One process (``torchrun`` is for the episodic trainer). With ``model.frozen`` and
``model.cache_features`` the backbone runs once per image and view, and each step
trains only the embedding head and the method's state on cached features.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from repmet.checkpoint import last_checkpoint
from repmet.config import ExperimentConfig
from repmet.data import LabeledImages, load_labeled_classes
from repmet.evaluate.fine_grained import closed_set_accuracy, embed_images, feature_source, trained_classes_only
from repmet.methods import describe, get_method
from repmet.methods.fine_grained import transform_spec
from repmet.models import AUX_LOSS_WEIGHT
from repmet.train.distributed import single_process
from repmet.train.optim import build_optimizer, build_scheduler, require_finite_loss
from repmet.train.run_folder import RunFolder
from repmet.train.resume import restore_training_state
from repmet.train.run_outputs import RunOutputs


class BatchTrainer:
    def __init__(self, config: ExperimentConfig, out_dir: str | Path, resume: bool = False,
                 progress: bool = True, overwrite: bool = False) -> None:
        self.config, self.out_dir, self.progress = config, Path(out_dir), progress
        self.started = time.perf_counter()  # wall time counts the feature caching too
        self.method = get_method(config.method)
        self.ctx = single_process(config.train.device, config.method)
        self.folder = RunFolder(self.out_dir)
        self.folder.claim(resume, overwrite)
        device = self.ctx.device
        d = config.data
        self.train_data = load_labeled_classes(d, d.train_split, d.train_classes)
        self.val_data = load_labeled_classes(d, d.val_split, d.train_classes)
        class_ids = np.unique(self.train_data.labels)
        self.class_names = [self.train_data.class_names[i] for i in class_ids]
        to_local = {int(g): i for i, g in enumerate(class_ids)}  # dataset class -> trained class
        self.train_labels = np.array([to_local[int(c)] for c in self.train_data.labels])

        torch.manual_seed(config.seed)
        self.model = self.method.build_model(config, self.class_names)
        self.model.method.prepare_training(self.train_labels, config, self.class_names, self.train_data.description)
        self.model.to(device)
        self.source = feature_source(config, self.model.backbone, transform_spec(config), device, progress)
        self.source.prepare_training(self.train_data.paths)
        self.optimizer = build_optimizer(self.model.parameters(), config.train, self.model.backbone.parameters())
        self.scheduler = build_scheduler(self.optimizer, config.train)
        self.start_epoch, self.best_val, self.history = 0, -1.0, []
        if resume:
            self._restore(last_checkpoint(self.out_dir))
        else:
            embeddings, labels = self.embed_training_set()
            self.model.method.initialise(embeddings, labels)

    # ---------------------------------------------------------------- embedding
    def embed(self, images: LabeledImages) -> torch.Tensor:
        return embed_images(self.model, self.source, images)

    def embed_training_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.from_numpy(self.train_labels).to(self.ctx.device)
        return self.embed(self.train_data), labels

    def closed_set_accuracy(self, images: LabeledImages) -> float:
        images, labels = trained_classes_only(images, self.class_names)
        return closed_set_accuracy(self.model.method, self.embed(images), torch.from_numpy(labels).to(self.ctx.device))

    # ---------------------------------------------------------------- checkpoints
    def bundle(self, epoch: int) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.model.method.sampler_state(),
            "torch_rng": torch.get_rng_state(),
            "epoch": epoch,
            "best_val": self.best_val,
            "history": self.history,
            "config": self.config.to_dict(),
            **describe(self.method, self.config, self.model, self.class_names),
        }

    def _restore(self, path: Path) -> None:
        bundle = restore_training_state(path, self.model, self.optimizer, self.scheduler)
        self.model.method.load_sampler_state(bundle["sampler"])
        self.start_epoch, self.best_val, self.history = bundle["epoch"], bundle["best_val"], list(bundle["history"])

    # ---------------------------------------------------------------- training
    def train_epoch(self, epoch: int) -> dict[str, float]:
        tc = self.config.train
        self.model.train()
        method = self.model.method
        total_loss = total_acc = 0.0
        start = time.perf_counter()
        bar = tqdm(range(tc.steps_per_epoch), desc=f"epoch {epoch + 1}/{tc.epochs}", disable=not self.progress,
                   leave=False, dynamic_ncols=True)
        for step in bar:
            indices, groups = method.sample(epoch, step)
            rng = np.random.default_rng([self.config.seed, epoch, step, 1])
            inputs = self.source.training_inputs(indices, rng)
            labels = torch.from_numpy(self.train_labels[indices]).to(self.ctx.device)
            group_ids = torch.from_numpy(groups).to(self.ctx.device)
            embeddings, aux = self.model.embed(inputs, from_features=not self.source.uses_backbone)
            result = method.loss(embeddings, labels, group_ids)
            loss = result.loss if aux is None else result.loss + AUX_LOSS_WEIGHT * method.loss(aux, labels, group_ids).loss
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            require_finite_loss(result.loss.item(), epoch, step, self.out_dir)
            method.after_step(epoch * tc.steps_per_epoch + step, groups, result, self.embed_training_set)
            total_loss += result.loss.item()
            total_acc += result.accuracy.item()
            if self.progress:
                bar.set_postfix(loss=f"{total_loss / (step + 1):.4f}", acc=f"{total_acc / (step + 1):.4f}",
                                steps_per_s=f"{(step + 1) / (time.perf_counter() - start):.1f}")
        seconds = time.perf_counter() - start
        n = tc.steps_per_epoch
        return {"train_loss": total_loss / n, "train_acc": total_acc / n, "seconds": seconds,
                "steps_per_s": n / seconds}

    def fit(self) -> dict[str, Any]:
        tc = self.config.train
        outputs = RunOutputs(self.out_dir, self.config.to_dict(), not self.progress)
        epochs = tqdm(range(self.start_epoch, tc.epochs), desc="training", unit="epoch", initial=self.start_epoch,
                      total=tc.epochs, disable=not self.progress, dynamic_ncols=True)
        for epoch in epochs:
            record: dict[str, Any] = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
                                      **self.train_epoch(epoch)}
            self.model.method.prepare_evaluation(self.embed_training_set)
            record["val_acc"] = self.closed_set_accuracy(self.val_data)
            # since the run started (its first part too, when resumed), caching and validation included
            previous = self.history[-1].get("wall_s", 0.0) if self.history else 0.0
            record["wall_s"] = previous + time.perf_counter() - self.started
            self.started = time.perf_counter()
            improved = record["val_acc"] > self.best_val
            self.best_val = max(self.best_val, record["val_acc"])
            self.history.append(record)
            outputs.end_of_epoch(self.bundle(epoch + 1), improved,
                                 ("train_loss", "train_acc", "val_acc", "lr", "steps_per_s"))
            epochs.set_postfix(loss=f"{record['train_loss']:.4f}", val=f"{record['val_acc']:.4f}")
        outputs.close()
        self.folder.release()
        keep = self.out_dir / "checkpoints" / f"{tc.keep}.pt"
        return {"checkpoint": str(keep), "best_val": self.best_val, "epochs": tc.epochs, "history": self.history}
