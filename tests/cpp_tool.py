"""The C++ command-line tool as the tests run it: where it is built, how it is run, and what a
refusal looks like (tests/cpp/, tests/runtime/test_limits_both_sides.py, tests/export/test_fingerprint.py)."""

import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOURCE = PROJECT_ROOT / "repmet" / "runtime" / "cpp"
BUILD = PROJECT_ROOT / "build" / "cpp"


def run_tool(tool: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True, timeout=600)


def assert_refused(run: subprocess.CompletedProcess, *phrases: str) -> None:
    """Exit 1 or 2 with ``error: <sentence>`` holding every phrase, nothing on stdout, no abort."""
    assert run.returncode in (1, 2), (run.returncode, run.stderr[-2000:])
    assert run.stderr.startswith("error: "), run.stderr[-2000:]
    assert "terminate called" not in run.stderr and "Traceback" not in run.stderr, run.stderr[-2000:]
    for phrase in phrases:
        assert phrase in run.stderr, (phrase, run.stderr[-2000:])
    assert run.stdout == ""


def write_ambulance_coco(data_root: Path, root: Path) -> tuple[Path, list]:
    """A real COCO support file at ``root/support.json``: two fsod-mini photos holding only
    Ambulances, copied to ``root/images``, with their boxes; and the fsod-mini train split."""
    import json
    import shutil

    from PIL import Image

    from repmet.data.detection import load_voc_detection

    train = load_voc_detection(data_root / "fsod-mini", "train")
    ambulance = train.class_names.index("Ambulance")
    examples = [im for im in train.images if set(im.labels.tolist()) == {ambulance}][:2]
    (root / "images").mkdir()
    coco = {"images": [], "annotations": [], "categories": [{"id": 7, "name": "Ambulance"}]}
    for i, image in enumerate(examples):
        shutil.copy(image.path, root / "images")
        width, height = Image.open(image.path).size
        coco["images"].append({"id": i, "file_name": image.path.name, "width": width, "height": height})
        for box in image.boxes.tolist():
            coco["annotations"].append({"id": len(coco["annotations"]), "image_id": i, "category_id": 7,
                                        "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    (root / "support.json").write_text(json.dumps(coco))
    return root / "support.json", examples
