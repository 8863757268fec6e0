"""Each image-classification loader on a tiny fixture in its official layout, and Flowers on the real data."""

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from repmet.config import DataConfig
from repmet.data import load_labeled_classes, load_labeled_split
from repmet.data.labeled_images import LabeledImages
from repmet.data.validation_hold_out import split_off_validation
from repmet.imaging import open_rgb
from repmet.errors import UserError


def save_jpg(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (value, 255 - value, 0)).save(path)


def test_real_flowers102_official_split(data_root):
    sizes = {}
    for split in ("train", "val", "test", "trainval"):
        data = load_labeled_split("flowers102", split, data_root, download=False)
        sizes[split] = len(data)
        assert len(data.class_names) == 102 and data.labels.min() == 0 and data.labels.max() == 101
        if split in ("train", "val"):
            assert (np.bincount(data.labels) == 10).all()  # 10 per class, as published
    assert sizes == {"train": 1020, "val": 1020, "test": 6149, "trainval": 2040}
    train = load_labeled_split("flowers102", "train", data_root, download=False)
    test = load_labeled_split("flowers102", "test", data_root, download=False)
    assert not set(train.paths) & set(test.paths)
    assert open_rgb(train.paths[0]).mode == "RGB"


def test_flowers_class_range_keeps_only_those_classes(data_root):
    held_out = load_labeled_split("flowers102", "test", data_root, download=False).with_classes(81, 102)
    assert set(held_out.labels.tolist()) == set(range(80, 102))


def test_oxford_pets_fixture(tmp_path):
    folder = tmp_path / "oxford-iiit-pet"
    rows = {"trainval": ["Abyssinian_1 1 1 1", "great_pyrenees_3 2 2 12", "Abyssinian_2 1 1 1"],
            "test": ["great_pyrenees_9 2 2 12", "Abyssinian_7 1 1 1"]}
    for split, lines in rows.items():
        (folder / "annotations").mkdir(parents=True, exist_ok=True)
        (folder / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
        for i, line in enumerate(lines):
            save_jpg(folder / "images" / f"{line.split()[0]}.jpg", 40 * i)
    trainval = load_labeled_split("oxford_pets", "trainval", tmp_path)
    test = load_labeled_split("oxford_pets", "test", tmp_path)
    assert trainval.class_names == test.class_names == ["Abyssinian", "great_pyrenees"]
    assert trainval.labels.tolist() == [0, 1, 0] and test.labels.tolist() == [1, 0]
    (folder / "images" / "Abyssinian_7.jpg").unlink()
    with pytest.raises(UserError, match="1 images listed in annotations/test.txt are missing.*Abyssinian_7.jpg"):
        load_labeled_split("oxford_pets", "test", tmp_path)
    (folder / "annotations" / "test.txt").unlink()
    with pytest.raises(UserError, match=r"missing split file .*annotations/test\.txt"):
        load_labeled_split("oxford_pets", "test", tmp_path)


def test_stanford_dogs_fixture(tmp_path):
    folder = tmp_path / "stanford-dogs"
    classes = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02085936-Maltese_dog"]
    files = {"train": [f"{classes[0]}/a.jpg", f"{classes[2]}/b.jpg", f"{classes[1]}/c.jpg"],
             "test": [f"{classes[1]}/d.jpg"]}
    for split, names in files.items():
        for i, name in enumerate(names):
            save_jpg(folder / "Images" / name, 30 * i)
        labels = [classes.index(n.split("/")[0]) + 1 for n in names]
        file_list = np.empty((len(names), 1), dtype=object)
        for i, n in enumerate(names):
            file_list[i, 0] = np.array([n])
        (folder / "lists").mkdir(parents=True, exist_ok=True)
        savemat(folder / "lists" / f"{split}_list.mat",
                {"file_list": file_list, "labels": np.array(labels, dtype=np.uint8)[:, None]})
    train = load_labeled_split("stanford_dogs", "train", tmp_path)
    assert train.class_names == classes and train.labels.tolist() == [0, 2, 1]
    assert [p.name for p in train.paths] == ["a.jpg", "b.jpg", "c.jpg"]
    assert load_labeled_split("stanford_dogs", "test", tmp_path).labels.tolist() == [1]
    with pytest.raises(UserError, match="unknown Stanford Dogs split 'val'"):
        load_labeled_split("stanford_dogs", "val", tmp_path)


def test_image_folder_fixture(tmp_path):
    for split, classes in {"train": ["cat", "dog"], "test": ["dog", "emu"]}.items():
        for c in classes:
            for i in range(2):
                save_jpg(tmp_path / split / c / f"{i}.jpg", 10 * i)
    train = load_labeled_split("folder", "train", tmp_path)
    test = load_labeled_split("folder", "test", tmp_path)
    assert train.class_names == test.class_names == ["cat", "dog", "emu"]
    assert train.labels.tolist() == [0, 0, 1, 1] and test.labels.tolist() == [1, 1, 2, 2]
    with pytest.raises(UserError, match=r"no folder .*val; expected .*\(found: test, train\).*data.val_fraction"):
        load_labeled_split("folder", "val", tmp_path)


def test_val_fraction_holds_out_a_seeded_part_of_each_real_flowers_class(data_root):
    data = DataConfig(dataset="flowers102", root=str(data_root), download=False, val_fraction=0.2)
    train, val = load_labeled_classes(data, "train"), load_labeled_classes(data, "val")
    official = load_labeled_split("flowers102", "train", data_root, download=False)
    assert np.bincount(train.labels, minlength=102).tolist() == [8] * 102  # 10 per class in the official split
    assert np.bincount(val.labels, minlength=102).tolist() == [2] * 102
    assert not set(train.paths) & set(val.paths)
    assert set(train.paths) | set(val.paths) == set(official.paths)
    assert {p: int(label) for p, label in zip(val.paths, val.labels)} == \
        {p: int(label) for p, label in zip(official.paths, official.labels) if p in set(val.paths)}
    assert load_labeled_classes(data, "val").paths == val.paths  # the same images on every load
    reordered = LabeledImages(official.paths[::-1], official.labels[::-1], official.class_names, "reversed")
    assert set(split_off_validation(reordered, 0.2)[1].paths) == set(val.paths)  # not the listing's order
    held_out_classes = load_labeled_classes(data, "val", [81, 102])
    assert len(held_out_classes) == 44 and set(held_out_classes.paths) <= set(val.paths)


def test_val_fraction_on_a_folder_without_val_keeps_one_image_per_class(tmp_path):
    for c, count in {"cat": 1, "dog": 3, "emu": 7}.items():
        for i in range(count):
            save_jpg(tmp_path / "train" / c / f"{i}.jpg", 10 * i)
    save_jpg(tmp_path / "test" / "dog" / "0.jpg", 0)
    data = DataConfig(dataset="folder", root=str(tmp_path), val_fraction=0.3)
    train, val = load_labeled_classes(data, "train"), load_labeled_classes(data, "val")
    assert np.bincount(train.labels, minlength=3).tolist() == [1, 2, 5]  # round(0.3 n), never the last image
    assert np.bincount(val.labels, minlength=3).tolist() == [0, 1, 2]
    with pytest.raises(UserError, match="data.val_split must name another split than 'train'"):
        load_labeled_classes(DataConfig(dataset="folder", root=str(tmp_path), val_fraction=0.3, val_split="train"),
                             "val")


def test_missing_flowers_and_undecodable_images_are_named(tmp_path):
    with pytest.raises(UserError, match="Flowers 102 not found in .*flowers-102: no jpg/"):
        load_labeled_split("flowers102", "train", tmp_path, download=False)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(UserError, match=f"cannot decode image {bad}"):
        open_rgb(bad)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "I;16", "P", "1"])
def test_any_image_mode_becomes_rgb(tmp_path, mode):
    path = tmp_path / f"image_{mode.replace(';', '')}.png" if mode != "CMYK" else tmp_path / "image.jpg"
    image = Image.new("RGB", (8, 8), (200, 100, 50)).convert(mode) if mode != "I;16" else \
        Image.fromarray(np.full((8, 8), 40000, np.uint16))
    image.save(path)
    rgb = open_rgb(path)
    assert rgb.mode == "RGB" and rgb.size == (8, 8)
