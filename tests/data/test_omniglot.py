import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from repmet.data import load_omniglot
from repmet.errors import UserError


@pytest.mark.parametrize("split,classes", [("train", 4112), ("val", 688), ("trainval", 4800), ("test", 1692)])
def test_real_omniglot_splits_have_the_vinyals_class_counts(data_root, split, classes):
    data = load_omniglot(data_root, split, download=False)
    assert data.images.shape == (classes, 20, 1, 28, 28)
    assert len(set(data.class_names)) == classes
    # Strokes are bright on a dark background, and every image has some ink.
    assert data.images.float().mean() < 60
    assert (data.images.flatten(2).amax(2) > 128).all()


def test_rotations_are_their_own_classes(data_root):
    data = load_omniglot(data_root, "test", download=False)
    names = data.class_names
    base = names.index("Gurmukhi/character42/rot000")
    quarter = names.index("Gurmukhi/character42/rot090")
    np.testing.assert_array_equal(np.rot90(data.images[base].numpy(), k=1, axes=(2, 3)), data.images[quarter].numpy())


def _png(seed: int) -> bytes:
    pixels = np.full((105, 105), 255, np.uint8)
    pixels[seed % 90 : seed % 90 + 10, 20:80] = 0
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("1").save(buffer, format="PNG")
    return buffer.getvalue()


def make_tiny_omniglot(root, zipped: bool, broken: str | None = None):
    """Two alphabets of two characters x 20 drawers, in the official layout."""
    folder = root / "omniglot"
    folder.mkdir(parents=True)
    for archive, alphabet in (("images_background", "Alpha"), ("images_evaluation", "Beta")):
        files = {}
        for char in (1, 2):
            for drawer in range(1, 21):
                name = f"{archive}/{alphabet}/character{char:02d}/{char:04d}_{drawer:02d}.png"
                files[name] = b"not a png" if name == broken else _png(char * 7 + drawer)
        if zipped:
            with zipfile.ZipFile(folder / f"{archive}.zip", "w") as z:
                for name, data in files.items():
                    z.writestr(name, data)
        else:
            for name, data in files.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
    splits = folder / "splits" / "vinyals"
    splits.mkdir(parents=True)
    (splits / "train.txt").write_text("Alpha/character01/rot000\nAlpha/character01/rot090\nAlpha/character02/rot000\n")
    (splits / "test.txt").write_text("Beta/character02/rot270\n")
    return folder


@pytest.mark.parametrize("zipped", [True, False], ids=["zipped", "extracted"])
def test_both_official_layouts_load(tmp_path, isolated_cache, zipped):
    make_tiny_omniglot(tmp_path, zipped)
    train = load_omniglot(tmp_path, "train", download=False)
    assert train.class_names == ["Alpha/character01/rot000", "Alpha/character01/rot090", "Alpha/character02/rot000"]
    assert train.images.shape == (3, 20, 1, 28, 28)
    assert load_omniglot(tmp_path, "test", download=False).images.shape == (1, 20, 1, 28, 28)
    assert len(list(isolated_cache.glob("omniglot_28px_*.npz"))) == 1  # decoded once, then cached


def test_an_undecodable_image_is_named(tmp_path, isolated_cache):
    bad = "images_background/Alpha/character02/0002_13.png"
    make_tiny_omniglot(tmp_path, zipped=True, broken=bad)
    with pytest.raises(UserError, match=f"cannot decode image .*images_background.zip:{bad}"):
        load_omniglot(tmp_path, "train", download=False)


def test_missing_data_names_the_folder_and_the_layout(tmp_path, isolated_cache):
    with pytest.raises(UserError, match=f"Omniglot not found in {tmp_path / 'omniglot'}.*images_background.zip"):
        load_omniglot(tmp_path, "train", download=False)


def test_a_split_line_for_an_unknown_character_is_named(tmp_path, isolated_cache):
    folder = make_tiny_omniglot(tmp_path, zipped=True)
    (folder / "splits" / "vinyals" / "val.txt").write_text("Alpha/character01/rot000\nGamma/character09/rot000\n")
    with pytest.raises(UserError, match=r"val\.txt, line 2: 'Gamma/character09/rot000'"):
        load_omniglot(tmp_path, "val", download=False)


def test_a_missing_split_file_is_named(tmp_path, isolated_cache):
    make_tiny_omniglot(tmp_path, zipped=True)
    with pytest.raises(UserError, match=r"missing Omniglot split file .*val\.txt"):
        load_omniglot(tmp_path, "val", download=False)


def test_an_unreachable_download_stops_with_a_clear_message(tmp_path, isolated_cache, monkeypatch):
    from repmet.data import omniglot

    # A real connection attempt to a closed local port: fails at once, as offline machines do.
    monkeypatch.setattr(omniglot, "ARCHIVE_URL", "http://127.0.0.1:9/{name}.zip")
    with pytest.raises(UserError, match=r"could not download Omniglot images_background.zip .*place it at"):
        load_omniglot(tmp_path, "train", download=True)
    assert not any((tmp_path / "omniglot").glob("*.zip"))  # no partial archive left behind
