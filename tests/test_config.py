from pathlib import Path

import pytest

from repmet.errors import UserError
from repmet.config import ExperimentConfig
from repmet.methods.config_loading import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_parses(path):
    config = load_config(path)
    assert isinstance(config, ExperimentConfig)
    assert config.name == path.stem


def test_paper_configs_use_the_paper_setup():
    for shot, way in [(1, 5), (5, 5), (1, 20), (5, 20)]:
        config = load_config(CONFIGS / f"protonets_{shot}_{way}.yaml")
        t = config.train
        assert (t.way, t.shot, t.query, t.episodes_per_epoch, t.epochs) == (60, shot, 5, 100, 100)
        assert (t.lr, t.lr_decay_every, t.lr_decay_factor) == (0.001, 2000, 0.5)
        assert (config.model.name, config.eval.way, config.eval.shot) == ("conv4", way, shot)


def test_the_voc_detection_configs_are_the_three_few_shot_splits_of_the_literature():
    voc = {"aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
           "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"}
    novel = {1: {"bird", "bus", "cow", "motorbike", "sofa"}, 2: {"aeroplane", "bottle", "cow", "horse", "sofa"},
             3: {"boat", "cat", "motorbike", "sheep", "sofa"}}
    for split, expected in novel.items():
        d = load_config(CONFIGS / f"repmet_detection_voc_split{split}_r50.yaml").detection
        assert set(d.novel_classes) == expected and set(d.base_classes) == voc - expected
        assert len(d.base_classes) == 15 and d.shots == [1, 2, 3, 5, 10]
        assert (d.folder, d.extra_train_folders) == ("VOCdevkit/VOC2007", ["VOCdevkit/VOC2012"])


def test_configs_that_share_a_training_run_differ_only_in_name_and_eval():
    for suffix in ("", "_cpu"):
        for shot in (1, 5):
            a = load_config(CONFIGS / f"protonets_{shot}_5{suffix}.yaml").to_dict()
            b = load_config(CONFIGS / f"protonets_{shot}_20{suffix}.yaml").to_dict()
            for key in ("seed", "data", "model", "loss", "train"):
                assert a[key] == b[key], key


def write(tmp_path, text):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, "train:\n  learning_rate: 0.1\n")
    with pytest.raises(UserError, match=r"exp\.yaml: unknown key 'train\.learning_rate'"):
        load_config(path)


def test_wrong_type_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, "train:\n  way: five\n")
    with pytest.raises(UserError, match=r"exp\.yaml: key 'train\.way' must be int, got str 'five'"):
        load_config(path)


def test_a_bool_is_not_an_int(tmp_path):
    with pytest.raises(UserError, match="train.epochs"):
        load_config(write(tmp_path, "train:\n  epochs: true\n"))


def test_choices_are_checked(tmp_path):
    with pytest.raises(UserError, match="loss.distance.*'sqeuclidean', 'cosine'"):
        load_config(write(tmp_path, "loss:\n  distance: manhattan\n"))


def test_overrides_use_dotted_keys_and_the_same_checks(tmp_path):
    path = write(tmp_path, "name: x\ntrain:\n  lr: 1e-3\n")
    config = load_config(path, ["train.lr=0.01", "eval.way=20", "data.root=/data"])
    assert config.train.lr == 0.01 and config.eval.way == 20 and config.data.root == "/data"
    assert load_config(path).train.lr == 0.001  # YAML's '1e-3' string is read as a float
    with pytest.raises(UserError, match="unknown key 'train.lrr'"):
        load_config(path, ["train.lrr=0.1"])
    with pytest.raises(UserError, match="must look like section.key=value"):
        load_config(path, ["train.lr"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(write(tmp_path, "train: [unclosed\n"))
    with pytest.raises(UserError, match="must hold a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_data_normalization_follows_the_backbone_when_asked_and_stored_configs_keep_imagenet():
    from repmet.methods.fine_grained import transform_spec

    config = load_config("configs/repmet_flowers_lite0_cpu.yaml", ["data.normalization=backbone"])
    spec = transform_spec(config)
    assert spec.mean == pytest.approx((127 / 255,) * 3) and spec.std == pytest.approx((128 / 255,) * 3)
    stored = config.to_dict()
    del stored["data"]["normalization"]  # a checkpoint written before the key existed
    from repmet.methods.config_loading import config_from_dict

    assert transform_spec(config_from_dict(stored, source="an older checkpoint")).mean == (0.485, 0.456, 0.406)
