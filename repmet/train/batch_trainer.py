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

from repmet.data import LabeledImages, load_labeled_split
from repmet.data.transforms import TransformSpec
from repmet.errors import UserError
from repmet.models import EmbeddingHead, FrozenBackbone, create_model
from repmet.models.identity import backbone_identity
from repmet.ops.distances import create_distance
from repmet.train.checkpoint import last_checkpoint, load_checkpoint
from repmet.train.config import ExperimentConfig
from repmet.train.distributed import setup_distributed
from repmet.train.fine_grained_model import AUX_LOSS_WEIGHT, FineGrainedModel
from repmet.train.input_source import CachedFeatureSource, ImageSource
from repmet.train.methods.magnet_method import MagnetMethod
from repmet.train.methods.repmet_method import RepMetMethod
from repmet.train.optim import build_optimizer, build_scheduler
from repmet.train.run_outputs import RunOutputs


def transform_spec(config: ExperimentConfig) -> TransformSpec:
    d = config.data
    return TransformSpec(d.image_size, d.resize or round(d.image_size / 0.875))


def load_split(config: ExperimentConfig, split: str, classes: list[int] | None) -> LabeledImages:
    d = config.data
    images = load_labeled_split(d.dataset, split, d.root, d.download)
    if classes is not None:
        if len(classes) != 2 or not 1 <= classes[0] <= classes[1] <= len(images.class_names):
            raise UserError(f"class range {classes} must be [first, last] within 1..{len(images.class_names)}")
        images = images.with_classes(*classes)
    return images


def build_model(config: ExperimentConfig, train_labels: np.ndarray, class_names: list[str],
                description: str) -> tuple[FineGrainedModel, str]:
    """The model for ``config``, with the method sized for ``class_names`` (labels 0..C-1)."""
    m = config.model
    backbone = create_model(m.name, pretrained=m.pretrained, weights=m.weights)
    identity = backbone_identity(m.name, m.pretrained, m.weights)
    aux_dim = getattr(backbone, "aux_dim", None)
    if m.frozen:
        backbone = FrozenBackbone(backbone)
    elif m.cache_features:
        raise UserError("model.cache_features needs model.frozen: true (features of a trained backbone change)")
    h, b = config.head, config.batch
    head = EmbeddingHead(backbone.feature_dim, h.hidden_dim, h.embedding_dim, h.dropout)
    aux_head = EmbeddingHead(aux_dim, h.hidden_dim, h.embedding_dim, h.dropout) if aux_dim and not m.frozen else None
    num_classes = len(class_names)
    if config.method == "repmet":
        r = config.repmet
        method = RepMetMethod(num_classes, h.embedding_dim, r.reps_per_class, r.sigma, r.alpha, r.ce_weight,
                              r.margin_weight, create_distance(config.loss.distance), train_labels, b.classes,
                              b.per_class, config.seed, class_names, description)
    elif config.method == "magnet":
        g = config.magnet
        method = MagnetMethod(num_classes, h.embedding_dim, g.clusters_per_class, g.alpha, g.refresh_every,
                              g.eval_neighbors, train_labels, b.classes, b.per_class, config.seed, class_names,
                              description)
    else:
        raise UserError(f"method {config.method!r} is episodic; use the episodic trainer")
    return FineGrainedModel(backbone, head, method, aux_head), identity


class BatchTrainer:
    def __init__(self, config: ExperimentConfig, out_dir: str | Path, resume: bool = False,
                 progress: bool = True, trained_state: dict | None = None) -> None:
        """``trained_state``: a checkpoint's model state, to evaluate instead of train."""
        self.config, self.out_dir, self.progress = config, Path(out_dir), progress
        self.ctx = setup_distributed(config.train.device)
        if self.ctx.enabled:
            raise UserError(f"method {config.method!r} trains in one process; run metric-train without torchrun")
        device = self.ctx.device
        d = config.data
        self.train_data = load_split(config, d.train_split, d.train_classes)
        self.val_data = load_split(config, d.val_split, d.train_classes)
        class_ids = np.unique(self.train_data.labels)
        self.class_names = [self.train_data.class_names[i] for i in class_ids]
        self.to_local = {int(g): i for i, g in enumerate(class_ids)}  # dataset class -> trained class
        self.train_labels = np.array([self.to_local[int(c)] for c in self.train_data.labels])

        torch.manual_seed(config.seed)
        self.model, identity = build_model(config, self.train_labels, self.class_names, self.train_data.description)
        self.model.to(device)
        spec = transform_spec(config)
        if config.model.cache_features:
            self.source = CachedFeatureSource(self.model.backbone, identity, spec, d.cache_views, device, progress)
        else:
            self.source = ImageSource(spec, device)
        self.source.prepare_training(self.train_data.paths)
        self.optimizer = build_optimizer(self.model.parameters(), config.train)
        self.scheduler = build_scheduler(self.optimizer, config.train)
        self.start_epoch, self.best_val, self.history = 0, -1.0, []
        if trained_state is not None:
            self.model.load_state_dict(trained_state)
        elif resume:
            self._restore(last_checkpoint(self.out_dir))
        else:
            embeddings, labels = self.embed_training_set()
            self.model.method.initialise(embeddings, labels)

    # ---------------------------------------------------------------- embedding
    @torch.no_grad()
    def embed(self, images: LabeledImages) -> torch.Tensor:
        """Eval-mode embeddings ``[N, D]`` of the centre view of each image."""
        was_training = self.model.training
        self.model.eval()
        from_features = not self.source.uses_backbone
        chunks = [self.model.embed(x, from_features)[0] for x in self.source.eval_batches(images.paths)]
        self.model.train(was_training)
        return torch.cat(chunks)

    def embed_training_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.from_numpy(self.train_labels).to(self.ctx.device)
        return self.embed(self.train_data), labels

    def trained_classes_only(self, images: LabeledImages) -> tuple[LabeledImages, torch.Tensor]:
        """The images of the trained classes, and their labels in the trained numbering."""
        images = images.subset(np.isin(images.labels, list(self.to_local)), images.description)
        labels = torch.tensor([self.to_local[int(c)] for c in images.labels], device=self.ctx.device)
        return images, labels

    def closed_set_accuracy(self, images: LabeledImages, embeddings: torch.Tensor | None = None) -> float:
        images, labels = self.trained_classes_only(images)
        with torch.no_grad():
            embeddings = self.embed(images) if embeddings is None else embeddings
            predicted = self.model.method.log_posterior(embeddings).argmax(dim=1)
        return (predicted == labels).float().mean().item()

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
            "class_names": self.class_names,
            "config": self.config.to_dict(),
        }

    def _restore(self, path: Path) -> None:
        bundle = load_checkpoint(path)
        self.model.load_state_dict(bundle["model"])
        self.optimizer.load_state_dict(bundle["optimizer"])
        self.scheduler.load_state_dict(bundle["scheduler"])
        self.model.method.load_sampler_state(bundle["sampler"])
        torch.set_rng_state(bundle["torch_rng"])
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
            improved = record["val_acc"] > self.best_val
            self.best_val = max(self.best_val, record["val_acc"])
            self.history.append(record)
            outputs.end_of_epoch(self.bundle(epoch + 1), improved,
                                 ("train_loss", "train_acc", "val_acc", "lr", "steps_per_s"))
            epochs.set_postfix(loss=f"{record['train_loss']:.4f}", val=f"{record['val_acc']:.4f}")
        outputs.close()
        keep = self.out_dir / "checkpoints" / f"{tc.keep}.pt"
        return {"checkpoint": str(keep), "best_val": self.best_val, "epochs": tc.epochs, "history": self.history}
