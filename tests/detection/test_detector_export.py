"""The detector's fixed-shape export graphs on real fsod-mini images: the torch-free
preprocessing against torchvision's, the graph against eager torchvision on the same canvas,
ONNX Runtime against the graph (enrolled classes included), the box-embedding graph against
eager enrollment, and the TensorRT variant read node by node (no GPU needed)."""


import numpy as np
import onnx
import pytest
import torch

from repmet.data.detection import SupportBox
from repmet.methods.detector_regions import embed_boxes, image_tensor
from repmet.evaluate.detection_match import unmatched_detections
from repmet.models.detection.fixed_shape_graph import BoxEmbeddingGraph, DetectionGraph
from repmet.export.formats.onnx.detector import export_detector_onnx
from repmet.imaging import open_rgb
from repmet.methods import open_checkpoint
from repmet.methods.detector import load_detection_split
from repmet.preprocess_spec import detection_canvas_size
from repmet.runtime.detection_preprocess import prepare_detection_image

from conftest import SHIPPED_DETECTOR


@pytest.fixture(scope="module")
def shipped(data_root):
    trained = open_checkpoint(SHIPPED_DETECTOR)
    trained.config.data.root = str(data_root)
    return trained


@pytest.fixture(scope="module")
def test_split(shipped):
    return load_detection_split(shipped.config, "test")


@pytest.fixture(scope="module")
def pictures(test_split):
    """Two portrait aquarium photos and two landscape Open Images photos."""
    images = test_split.images
    return [images[0], images[1], images[-1], images[-2]]


def prepared(trained, image):
    spec = trained.preprocess
    return prepare_detection_image(np.asarray(open_rgb(image.path)), spec.min_size, spec.max_size, spec.mean, spec.std)


def representatives(trained, extra: int = 0) -> torch.Tensor:
    reps = trained.model.region_gallery.gallery().detach().clone()
    if extra:
        generator = torch.Generator().manual_seed(0)
        reps = torch.cat([reps, torch.nn.functional.normalize(torch.randn(extra, reps.shape[1], reps.shape[2],
                                                                          generator=generator), dim=-1)])
    return reps


def matched(reference, boxes, scores, labels, iou=0.99, score_tol=1e-3) -> tuple[int, int]:
    """(reference detections, those with no detection of the same label, IoU >= iou and a score within score_tol)."""
    return unmatched_detections(reference, (boxes, scores, labels), iou, score_tol)


def test_the_torch_free_preprocessing_is_torchvisions(shipped, data_root):
    from repmet.data.detection import load_voc_detection

    transform = shipped.model.transform.eval()
    checked = 0
    for root in ("fsod-mini", "indoor85-voc"):
        for image in load_voc_detection(data_root / root, "test").images[::25]:
            ours = prepared(shipped, image)
            batch, _ = transform([image_tensor(image.path)])
            assert tuple(batch.image_sizes[0]) == tuple(int(v) for v in ours.image_size), image.path
            assert np.abs(ours.tensor - batch.tensors.numpy()).max() <= 1e-4, image.path
            checked += 1
    assert checked >= 15


def test_the_graph_detects_what_eager_torchvision_detects(shipped, pictures):
    """The graph replaces boolean indexing by masks and sorting; on the same canvas it must
    reproduce torchvision's detections (a rare tie may swap, so 1% may go unmatched)."""
    model = shipped.model.eval()
    assert model.transform.canvas == detection_canvas_size(shipped.preprocess.max_size)
    graph = DetectionGraph(model, model.transform.canvas).eval()
    total = missing = 0
    with torch.no_grad():
        for image in pictures:
            (eager,) = model([image_tensor(image.path)])
            ours = prepared(shipped, image)
            boxes, scores, labels, count = graph(torch.from_numpy(ours.tensor), torch.from_numpy(ours.image_size),
                                                 representatives(shipped))
            n = int(count)
            assert abs(n - len(eager["scores"])) <= max(1, 0.01 * n)
            reference = (eager["boxes"].numpy(), eager["scores"].numpy(), eager["labels"].numpy())
            found = matched(reference, ours.to_original(boxes[:n].numpy()), scores[:n].numpy(), labels[:n].numpy())
            total, missing = total + found[0], missing + found[1]
            assert (scores[n:] == 0).all() and (labels[n:] == 0).all()
    assert total >= 100 and missing <= 0.01 * total, (missing, total)


def test_onnx_runtime_runs_the_portable_graphs_like_torch(shipped, pictures, tmp_path):
    import onnxruntime

    model = shipped.model.eval()
    canvas = model.transform.canvas
    files = export_detector_onnx(model, canvas, tmp_path, "onnx")
    for name in files.values():
        onnx.checker.check_model(onnx.load(tmp_path / name))
    session = onnxruntime.InferenceSession(str(tmp_path / files["detection"]), providers=["CPUExecutionProvider"])
    embedder = onnxruntime.InferenceSession(str(tmp_path / files["box_embedding"]), providers=["CPUExecutionProvider"])
    graph, box_graph = DetectionGraph(model, canvas).eval(), BoxEmbeddingGraph(model).eval()
    for extra in (0, 5):  # the trained classes, then 5 more enrolled: the gallery is an input
        reps = representatives(shipped, extra)
        for image in pictures[1:3]:
            ours = prepared(shipped, image)
            outputs = session.run(None, {"image": ours.tensor, "image_size": ours.image_size,
                                         "representatives": reps.numpy()})
            with torch.no_grad():
                expected = graph(torch.from_numpy(ours.tensor), torch.from_numpy(ours.image_size), reps)
            n = int(expected[3])
            assert abs(int(outputs[3][0]) - n) <= 1
            total, missing = matched(tuple(e[:n].numpy() for e in expected[:3]), outputs[0], outputs[1], outputs[2],
                                     score_tol=1e-4)
            assert total > 0 and missing <= 0.02 * total
    image = pictures[0]
    ours = prepared(shipped, image)
    boxes = ours.to_resized(image.boxes[:3])
    got = embedder.run(None, {"image": ours.tensor, "boxes": boxes})[0]
    with torch.no_grad():
        want = box_graph(torch.from_numpy(ours.tensor), torch.from_numpy(boxes)).numpy()
    assert got.shape == want.shape and np.abs(got - want).max() <= 1e-4


def test_the_box_embedding_graph_is_eager_enrollment(shipped, pictures):
    model = shipped.model.eval()
    box_graph = BoxEmbeddingGraph(model).eval()
    image = pictures[2]
    support = [SupportBox(image, box) for box in image.boxes[:3]]
    eager = embed_boxes(model, support, torch.device("cpu")).numpy()
    ours = prepared(shipped, image)
    with torch.no_grad():
        graph = box_graph(torch.from_numpy(ours.tensor), torch.from_numpy(ours.to_resized(image.boxes[:3]))).numpy()
    assert np.abs(graph - eager).max() <= 1e-4


def test_the_tensorrt_variant_pools_with_the_registered_plugin_and_has_nothing_tensorrt_cannot_parse(shipped, tmp_path):
    model = shipped.model.eval()
    files = export_detector_onnx(model, model.transform.canvas, tmp_path, "tensorrt")
    for name in files.values():
        graph = onnx.load(tmp_path / name)
        onnx.checker.check_model(graph)  # the plugin lives in the "trt" domain, which the checker accepts
        ops = [node.op_type for node in graph.graph.node]
        assert "RoiAlign" not in ops and not {"NonZero", "Loop", "If", "Scan", "ScatterND", "ScatterElements",
                                              "SequenceAt", "SplitToSequence", "ConcatFromSequence"} & set(ops)
        plugins = [node for node in graph.graph.node if node.op_type == "ROIAlign_TRT"]
        fpn_levels = (1 / 8, 1 / 16, 1 / 32) if name.startswith("detection") else ()
        assert len(plugins) == len(fpn_levels) + 1  # one per pooled FPN level, and the region crops
        crop_size = model.region_embedder.crop_size
        for node in plugins:
            fields = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert fields["sampling_ratio"] == 2 and fields["mode"] == 1 and fields["plugin_version"] == b"2"
            producer = {o: n for n in graph.graph.node for o in n.output}[node.input[2]]
            assert producer.op_type == "ConstantOfShape"  # batch indices: int32 zeros, no NonZero
            assert producer.attribute[0].t.data_type == onnx.TensorProto.INT32
        scales = sorted(onnx.helper.get_attribute_value(a) for node in plugins for a in node.attribute
                        if a.name == "spatial_scale")
        assert scales == pytest.approx(sorted([*fpn_levels, 1.0]))
        for node in plugins:
            fields = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if fields["spatial_scale"] == pytest.approx(1.0):  # the region crops: aligned, as torchvision's roi_align
                assert fields["output_height"] == crop_size and fields["coordinate_transformation_mode"] == 1
            else:  # torchvision's MultiScaleRoIAlign: aligned=False
                assert fields["output_height"] == 7 and fields["coordinate_transformation_mode"] == 0
        if name.startswith("detection"):
            assert ops.count("NonMaxSuppression") == 3  # RPN, the regions' and the per-class NMS
