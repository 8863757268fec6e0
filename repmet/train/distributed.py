"""Process-group setup for ``torchrun``: gloo on CPU, NCCL on GPUs; a no-op otherwise."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from repmet.devices import flush_denormals, resolve_device
from repmet.errors import UserError


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def mean(self, values: list[float]) -> list[float]:
        """Average floats over ranks (identity in a single process)."""
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return (tensor / self.world_size).tolist()

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def setup_distributed(device_name: str) -> DistributedContext:
    flush_denormals()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistributedContext(0, 1, resolve_device(device_name))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(dist.get_rank(), world_size, device)


def single_process(device_name: str, method: str) -> DistributedContext:
    """The context of a method that trains in one process; under torchrun, a sentence."""
    ctx = setup_distributed(device_name)
    if ctx.enabled:
        raise UserError(f"method {method!r} trains in one process; run metric-train without torchrun")
    return ctx


def teardown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
