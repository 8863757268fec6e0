"""Swap a trained detector's region embedding (``detection.region_backbone``) without retraining:
the region backbone is the frozen ImageNet network, so only the gallery (base representatives and
background) has to be refitted in the new embedding space, as base training's last step does.

    python docs/lab_notes/region_backbone_swap.py CHECKPOINT efficientnet_lite0_stages OUT.pt

OUT.pt is a full-precision checkpoint of the same detector with the new region backbone."""
import sys
import time

import torch

from repmet.checkpoint import load_checkpoint, save_checkpoint
from repmet.methods.config_loading import config_from_dict
from repmet.methods import open_checkpoint
from repmet.methods.trained import describe

torch.set_flush_denormal(True)
source, region_backbone, out = sys.argv[1], sys.argv[2], sys.argv[3]
trained = open_checkpoint(source)
bundle = load_checkpoint(source)
settings = trained.config.to_dict()
settings["detection"]["region_backbone"] = region_backbone
config = config_from_dict(settings, source="the swapped config")
model = trained.method.build_model(config, trained.class_names, pretrained=True)
kept = {k: v.float() for k, v in trained.model.state_dict().items()
        if not k.startswith(("region_embedder.", "region_gallery."))}
missing, unexpected = model.load_state_dict(kept, strict=False)
assert not unexpected and all(k.startswith(("region_embedder.", "region_gallery.")) for k in missing), (missing, unexpected)
start = time.perf_counter()
images, _ = trained.method.base_training_set(config)
trained.method.after_training(config, model, images, torch.device("cpu"), progress=True)
print(f"gallery refitted in {time.perf_counter() - start:.0f} s")
save_checkpoint({**bundle, "model": model.state_dict(), "config": config.to_dict(),
                 **describe(trained.method, config, model, trained.class_names)}, out)
print(f"wrote {out}")
