"""Detection data: the VOC and COCO loaders on the real shared sets and on fixtures made here,
base/novel masking, seeded support sets, and bad input named at start-up."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repmet.data.detection import (BaseNovelClasses, base_training_images, load_coco_detection, load_voc_detection,
                                   sample_support)
from repmet.errors import UserError
from detection_fixtures import voc_to_coco


@pytest.fixture(scope="module")
def fsod(data_root) -> Path:
    return data_root / "fsod-mini"


def test_fsod_mini_loads_with_its_published_counts(fsod):
    train, test = load_voc_detection(fsod, "train"), load_voc_detection(fsod, "test")
    assert (len(train), len(test)) == (887, 378)
    assert train.box_counts().sum() + test.box_counts().sum() == 6008
    assert train.class_names == test.class_names and len(train.class_names) == 12
    counts = dict(zip(test.class_names, test.box_counts().tolist()))
    assert (counts["puffin"], counts["Ambulance"], counts["Motorcycle"], counts["starfish"]) == (109, 41, 39, 38)
    image = train.images[0]
    assert image.path.name == "aquarium_IMG_2274_jpeg.jpg" and (image.width, image.height) == (384, 512)
    assert Image.open(image.path).size == (image.width, image.height)
    # VOC counts pixels from 1, inclusive: <xmin>40</xmin> ... <xmax>170</xmax> is [39, 170) here
    np.testing.assert_array_equal(image.boxes[0], [39, 223, 170, 298])


def test_indoor85_loads_and_reports_the_boxes_it_clipped(data_root):
    trainval = load_voc_detection(data_root / "indoor85-voc", "trainval")
    test = load_voc_detection(data_root / "indoor85-voc", "test")
    assert (len(trainval), len(test), len(test.class_names)) == (59, 26, 30)
    assert trainval.box_counts().sum() + test.box_counts().sum() == 686
    assert "clipped 5 boxes that crossed the image border" in trainval.repairs
    for image in trainval.images:
        assert (image.boxes[:, [0, 2]] <= image.width).all() and (image.boxes[:, [1, 3]] <= image.height).all()
        assert (image.boxes[:, 2] > image.boxes[:, 0]).all() and (image.boxes[:, 3] > image.boxes[:, 1]).all()


def test_the_coco_loader_reads_the_same_boxes_as_the_voc_loader(fsod, tmp_path):
    (tmp_path / "test.json").write_text(json.dumps(voc_to_coco(fsod, "test")))
    coco = load_coco_detection(tmp_path / "test.json", fsod / "JPEGImages")
    voc = load_voc_detection(fsod, "test")
    assert coco.class_names == voc.class_names and len(coco) == len(voc)
    for a, b in zip(coco.images, voc.images):
        assert a.path == b.path and (a.width, a.height) == (b.width, b.height)
        np.testing.assert_allclose(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.difficult, b.difficult)


def make_voc(root: Path, objects_by_image: dict[str, list[tuple]], split: str = "train") -> Path:
    """A VOC-layout fixture: ``objects_by_image[id] = [(name, difficult, xmin, ymin, xmax, ymax), ...]``."""
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for image_id, objects in objects_by_image.items():
        Image.new("RGB", (64, 48), (90, 120, 30)).save(root / "JPEGImages" / f"{image_id}.jpg")
        body = "".join(f"<object><name>{n}</name><difficult>{int(d)}</difficult><bndbox><xmin>{a}</xmin>"
                       f"<ymin>{b}</ymin><xmax>{c}</xmax><ymax>{e}</ymax></bndbox></object>"
                       for n, d, a, b, c, e in objects)
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><size><width>64</width><height>48</height><depth>3</depth></size>{body}</annotation>")
    (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(objects_by_image) + "\n")
    return root


def test_bad_annotations_are_named_at_start_up(tmp_path):
    root = make_voc(tmp_path / "voc", {"a": [("cat", False, 1, 1, 10, 10)], "b": [("dog", False, 1, 1, 10, 10)]})
    (root / "Annotations" / "b.xml").write_text("<annotation>\n<size><width>64</width>\n<object></annotation>")
    with pytest.raises(UserError, match=r"annotation .*b.xml does not parse at line 3"):
        load_voc_detection(root, "train")
    make_voc(root, {"a": [("cat", False, 1, 1, 10, 10)], "b": [("dog", False, 1, 1, 10, 10)]})
    (root / "JPEGImages" / "b.jpg").unlink()
    with pytest.raises(UserError, match=r"train.txt lists b, but .*b.jpg does not exist"):
        load_voc_detection(root, "train")
    with pytest.raises(UserError, match=r"val.txt does not exist \(splits here: train\)"):
        load_voc_detection(root, "val")


def test_boxes_outside_the_image_are_clipped_and_empty_ones_dropped_and_both_reported(tmp_path):
    root = make_voc(tmp_path / "voc", {"a": [("cat", False, 1, 1, 10, 10), ("cat", False, 50, 40, 90, 70),
                                             ("dog", False, 70, 5, 80, 9), ("dog", False, 5, 5, 4, 9)]})  # off the image; xmax < xmin
    split = load_voc_detection(root, "train")
    np.testing.assert_array_equal(split.images[0].boxes, [[0, 0, 10, 10], [49, 39, 64, 48]])
    assert "clipped 1 boxes" in split.repairs and "a.xml object 2 (cat)" in split.repairs
    assert "dropped 2 boxes with no area inside the image" in split.repairs


def test_base_training_never_sees_a_novel_box_and_ignores_novel_regions_in_mixed_images(tmp_path, fsod):
    root = make_voc(tmp_path / "voc", {
        "mixed": [("cat", False, 1, 1, 20, 20), ("owl", False, 30, 5, 60, 40), ("cat", True, 2, 30, 12, 45)],
        "novel_only": [("owl", False, 1, 1, 30, 30)],
        "base_only": [("dog", False, 5, 5, 25, 25)],
        "other_object": [("lamp", False, 3, 3, 33, 33), ("owl", False, 40, 20, 60, 40)]})
    classes = BaseNovelClasses(("cat", "dog"), ("owl",))
    images = {i.path.stem: i for i in base_training_images(load_voc_detection(root, "train"), classes)}
    assert sorted(images) == ["base_only", "mixed", "other_object"]  # an image with only novel boxes is left out
    # a class neither base nor novel is "another object" (label B): objectness learns it, no gallery does
    assert images["other_object"].labels.tolist() == [2]
    np.testing.assert_array_equal(images["other_object"].ignore, [[39, 19, 60, 40]])
    mixed = images["mixed"]
    np.testing.assert_array_equal(mixed.boxes, [[0, 0, 20, 20]])
    assert mixed.labels.tolist() == [0]  # numbered among the base classes
    np.testing.assert_array_equal(mixed.ignore, [[29, 4, 60, 40], [1, 29, 12, 45]])  # the owl and the difficult cat
    assert images["base_only"].labels.tolist() == [1] and len(images["base_only"].ignore) == 0

    train = load_voc_detection(fsod, "train")
    fsod_classes = BaseNovelClasses.from_file(fsod / "classes.txt")
    seen = base_training_images(train, fsod_classes)
    assert sum(len(i.boxes) for i in seen) == sum(
        int(np.isin(i.labels[~i.difficult], train.class_index(list(fsod_classes.base), "")).sum()) for i in train.images)
    assert all(i.labels.max() < len(fsod_classes.base) for i in seen)


def test_the_class_split_file_and_its_mistakes(fsod, tmp_path):
    classes = BaseNovelClasses.from_file(fsod / "classes.txt")
    assert classes.novel == ("puffin", "starfish", "Ambulance", "Motorcycle") and len(classes.base) == 8
    test = load_voc_detection(fsod, "test")
    classes.check_against(test, "detection.classes_file")
    with pytest.raises(UserError, match=r"detection.base_classes \(base\): class 'unicorn' has no box in fsod-mini"):
        BaseNovelClasses(("fish", "unicorn"), ("puffin",)).check_against(test, "detection.base_classes")
    with pytest.raises(UserError, match="'fish' is listed as both base and novel"):
        BaseNovelClasses(("fish",), ("fish",))
    with pytest.raises(UserError, match="split file .*nothing.txt does not exist"):
        BaseNovelClasses.from_file(tmp_path / "nothing.txt")


def test_support_sets_are_seeded_per_episode_and_refuse_more_shots_than_boxes(fsod):
    train = load_voc_detection(fsod, "train")
    novel = ["puffin", "starfish", "Ambulance", "Motorcycle"]
    a, again, other = (sample_support(train, novel, 3, seed, episode) for seed, episode in ((0, 0), (0, 0), (0, 1)))
    key = lambda s: {n: [(b.image.path.name, tuple(b.box)) for b in boxes] for n, boxes in s.items()}  # noqa: E731
    assert key(a) == key(again) and key(a) != key(other)
    for name, boxes in a.items():
        assert len(boxes) == 3 and len({(b.image.path, tuple(b.box)) for b in boxes}) == 3
        for b in boxes:
            index = train.class_names.index(name)
            rows = np.flatnonzero((b.image.boxes == b.box).all(1))
            assert (b.image.labels[rows] == index).any()
    starfish = int(train.box_counts()[train.class_names.index("starfish")])
    with pytest.raises(UserError, match=rf"{starfish + 1}-shot support for class 'starfish' needs {starfish + 1} "
                                         rf"boxes, but .* has {starfish}"):
        sample_support(train, ["starfish"], starfish + 1, 0, 0)


def test_extra_train_folders_join_training_with_labels_matched_by_name(data_root, tmp_path):
    """VOC 2007 + 2012 style: the train split gathers a second folder (indoor85's trainval here,
    listed as its train split), the test split stays the first folder's."""
    from repmet.methods.config_loading import load_config
    from repmet.methods.detector import load_detection_split

    indoor = tmp_path / "indoor-train"
    (indoor / "ImageSets" / "Main").mkdir(parents=True)
    for folder in ("JPEGImages", "Annotations"):
        (indoor / folder).symlink_to(data_root / "indoor85-voc" / folder)
    (indoor / "ImageSets" / "Main" / "train.txt").write_text(
        (data_root / "indoor85-voc" / "ImageSets" / "Main" / "trainval.txt").read_text())
    (tmp_path / "fsod-mini").symlink_to(data_root / "fsod-mini")
    config = load_config("configs/repmet_detection_fsod_lite0_cpu.yaml",
                         [f"data.root={tmp_path}", "detection.extra_train_folders=[indoor-train]"])
    train, test = load_detection_split(config, "train"), load_detection_split(config, "test")
    fsod_train, indoor_train = load_voc_detection(data_root / "fsod-mini", "train"), load_voc_detection(indoor, "train")
    assert len(train) == len(fsod_train) + len(indoor_train) == 887 + 59 and len(test) == 378
    assert train.class_names == sorted(set(fsod_train.class_names) | set(indoor_train.class_names))

    def counts_by_name(split):
        return {name: int(n) for name, n in zip(split.class_names, split.box_counts()) if n}

    merged, a, b = counts_by_name(train), counts_by_name(fsod_train), counts_by_name(indoor_train)
    assert merged == {name: a.get(name, 0) + b.get(name, 0) for name in set(a) | set(b)}
    # FOLDER:SPLIT names a folder's own split: indoor85-voc has trainval, not train
    direct = load_detection_split(load_config("configs/repmet_detection_fsod_lite0_cpu.yaml", [
        f"data.root={data_root}", "detection.extra_train_folders=[indoor85-voc:trainval]"]), "train")
    assert [i.path for i in direct.images] == [i.path for i in fsod_train.images] + [
        i.path for i in load_voc_detection(data_root / "indoor85-voc", "trainval").images]
    first_indoor = train.images[len(fsod_train)]
    assert first_indoor.path == indoor_train.images[0].path
    assert [train.class_names[i] for i in first_indoor.labels] == [indoor_train.class_names[i]
                                                                    for i in indoor_train.images[0].labels]
