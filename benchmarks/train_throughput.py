"""Training throughput: the real episodic loop against the same work on tensors in memory.

    python benchmarks/train_throughput.py configs/protonets_1_5_cpu.yaml --episodes 30

"real loop" runs the trainer's own epoch (sampling, gathering, forward, backward,
optimizer step); "in memory" repeats forward/backward/step on one episode batch that
is already a float tensor on the device. Their ratio is what data handling costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from repmet.data import gather_episode
from repmet.methods.config_loading import load_config
from repmet.train.episodic_trainer import EpisodicTrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    config = load_config(args.config, [*args.overrides, f"train.episodes_per_epoch={args.episodes}",
                                       "train.episodes_per_step=1", f"train.lr_decay_every={args.episodes}"])
    with tempfile.TemporaryDirectory() as out:
        trainer = EpisodicTrainer(config, out, progress=False)
    tc = config.train
    device, fmt = trainer.ctx.device, trainer.memory_format

    # In memory: one episode gathered up front; nothing but the model's own work per step.
    batch = gather_episode(trainer.train_data.images, trainer.sampler.episode(0, 0), device, fmt)
    n = tc.shot + tc.query

    def in_memory_step() -> None:
        trainer.optimizer.zero_grad(set_to_none=True)
        embeddings = trainer.encoder(batch).view(tc.way, n, -1)
        trainer.loss_fn(embeddings[:, : tc.shot], embeddings[:, tc.shot:]).loss.backward()
        trainer.optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        in_memory_step()
    sync()
    start = time.perf_counter()
    for _ in range(args.episodes):
        in_memory_step()
    sync()
    in_memory = args.episodes / (time.perf_counter() - start)

    trainer.train_epoch(epoch=1)  # warm-up epoch of the real loop
    sync()
    start = time.perf_counter()
    trainer.train_epoch(epoch=2)
    sync()
    real = args.episodes / (time.perf_counter() - start)

    print(f"config: {args.config} ({tc.way}-way {tc.shot}-shot {tc.query}-query, {config.model.name}), "
          f"device {device}, {torch.get_num_threads()} threads, {args.episodes} episodes")
    print("| loop | episodes/s | s/episode |")
    print("|---|---|---|")
    print(f"| in memory (forward/backward/step only) | {in_memory:.2f} | {1 / in_memory:.3f} |")
    print(f"| real training loop | {real:.2f} | {1 / real:.3f} |")
    print(f"real / in memory = {real / in_memory:.3f} (data handling costs {100 * (1 - real / in_memory):.1f}%)")


if __name__ == "__main__":
    main()
