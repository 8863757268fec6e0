"""Backbone features computed once per image and transform, kept on disk.

With a frozen backbone the head trains on these features: one pass of the backbone
over the dataset instead of one per epoch. With only the top blocks trained, the features are
the frozen bottom blocks' activation maps, and the top blocks train on them. A cache file belongs to one backbone
(name and weights digest) and one transform view; rows are keyed by the image's size and
content hash, so a changed image is recomputed while a copied, moved or re-extracted
dataset (new paths or modification times) is not.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from repmet.imaging import open_rgb
from repmet.data.paths import cache_dir, save_npz_atomically
from repmet.data.transforms import TransformSpec


def _row_key(path: Path) -> str:
    data = path.read_bytes()  # ~1 s for all 8,189 Flowers images; extracting them again is ~15 min
    return f"{len(data)}|{hashlib.blake2b(data, digest_size=16).hexdigest()}"


@torch.no_grad()
def cached_features(backbone: Callable[[torch.Tensor], torch.Tensor], backbone_id: str, paths: list[Path], spec: TransformSpec, view: str,
                    device: torch.device, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
    """Features ``[len(paths), ...]`` (float32: vectors ``[F]`` or activation maps
    ``[C, H, W]``) of ``backbone`` on ``view`` of each image (a seeded random view draws its crop
    from the image's content key, so it too is computed once)."""
    digest = hashlib.sha256(f"{backbone_id}|{spec.key(view)}".encode()).hexdigest()[:20]
    cache_file = cache_dir() / "features" / f"{digest}.npz"
    keys = [_row_key(p) for p in paths]
    stored: dict[str, np.ndarray] = {}
    if cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as data:
            stored = dict(zip(data["keys"].tolist(), data["features"]))
    todo = [i for i, k in enumerate(keys) if k not in stored]
    if todo:
        if isinstance(backbone, nn.Module):
            backbone.eval()
        transform = spec.view_transform(view)
        load = lambda i: transform(open_rgb(paths[i]), keys[i])  # noqa: E731
        batches = [todo[s : s + batch_size] for s in range(0, len(todo), batch_size)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            for batch in tqdm(batches, desc=f"features ({view})", unit="batch", disable=not progress):
                images = torch.stack(list(pool.map(load, batch))).to(device)
                out = backbone(images.contiguous(memory_format=torch.channels_last)).float().cpu().numpy()
                for i, feature in zip(batch, out):
                    stored[keys[i]] = feature
        save_npz_atomically(cache_file, keys=np.array(list(stored)), features=np.stack(list(stored.values())))
    return torch.from_numpy(np.stack([stored[k] for k in keys]))

