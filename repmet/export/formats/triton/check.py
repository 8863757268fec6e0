"""The Triton repository checked offline, as far as a machine without Triton can: every
``config.pbtxt`` parsed into Triton's own ``ModelConfig`` message (``tritonclient``'s
``model_config_pb2``), the repository layout and the ensemble against Triton's rules, each config's
tensors against its ONNX graph, and the ensemble run step by step by ONNX Runtime as Triton would
route it (:class:`EnsembleRunner`), so its outputs can be verified against PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repmet.errors import UserError
from repmet.export.formats.triton.repository import graph_tensors



def parse_config(path: Path):
    """A ``config.pbtxt`` as Triton reads it; a sentence when it does not parse."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except (ImportError, RuntimeError):  # tritonclient without its grpc extra raises RuntimeError
        raise UserError("checking a Triton repository needs the tritonclient[grpc] and protobuf packages "
                        "(pip install -e \".[triton]\")") from None
    try:
        return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise UserError(f"{path} is not a Triton model configuration: {exc}") from None


def check_repository(root: Path) -> dict[str, object]:
    """Every model of the repository ``root`` against Triton's rules; returns the parsed configs by
    name, or raises a sentence naming the file and the rule."""
    configs = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        config = parse_config(folder / "config.pbtxt")
        _require(config.name == folder.name, folder / "config.pbtxt",
                 f"its name {config.name!r} must be the folder's name {folder.name!r}")
        versions = [p for p in folder.iterdir() if p.is_dir() and p.name.isdigit() and not p.name.startswith("0")]
        _require(versions, folder, "a model needs a version folder named by a positive integer (1/)")
        _require(not config.HasField("dynamic_batching") or config.max_batch_size > 0, folder / "config.pbtxt",
                 "dynamic_batching needs max_batch_size > 0")
        if config.platform == "onnxruntime_onnx":
            for version in versions:
                _check_onnx_tensors(config, version / (config.default_model_filename or "model.onnx"))
        elif config.platform == "tensorrt_plan":  # an engine is opaque without TensorRT: its file, then its
            for version in versions:              # tensors against the ONNX model it was built from (below)
                plan = version / (config.default_model_filename or "model.plan")
                _require(plan.is_file() and plan.stat().st_size > 0, plan, "the engine file is missing or empty")
        else:
            _require(config.platform == "ensemble", folder / "config.pbtxt",
                     f"platform {config.platform!r}: this repository holds onnxruntime_onnx and tensorrt_plan "
                     "models and ensembles")
        configs[config.name] = config
    for config in configs.values():
        if config.platform == "ensemble":
            _check_ensemble(config, configs, root / config.name / "config.pbtxt")
        if config.platform == "tensorrt_plan":
            source = configs.get(config.name.removesuffix("_trt"))
            _require(source is not None and source.platform == "onnxruntime_onnx", root / config.name,
                     f"a plan variant needs the ONNX model it was built from ({config.name.removesuffix('_trt')})")
            _require([(t.name, list(t.dims), t.data_type) for t in (*config.input, *config.output)]
                     == [(t.name, list(t.dims), t.data_type) for t in (*source.input, *source.output)]
                     and config.max_batch_size == source.max_batch_size, root / config.name / "config.pbtxt",
                     f"its tensors and max_batch_size must be those of {source.name}, whose graph the engine was "
                     "built from")
    return configs


def full_dims(config, tensor) -> list[int]:
    """A tensor's shape as a request carries it: with the batch dimension when the model batches."""
    return ([-1] if config.max_batch_size > 0 else []) + list(tensor.dims)


def _check_onnx_tensors(config, path: Path) -> None:
    _require(path.is_file(), path, "the model file is missing")
    inputs, outputs = graph_tensors(path)
    declared = {"input": inputs, "output": outputs}
    for kind, tensors in (("input", config.input), ("output", config.output)):
        graph = {name: (graph_dims, triton_type) for name, graph_dims, triton_type in declared[kind]}
        _require({t.name for t in tensors} == set(graph), path,
                 f"the config's {kind}s {sorted(t.name for t in tensors)} must be the graph's {sorted(graph)}")
        for tensor in tensors:
            graph_dims, graph_type = graph[tensor.name]
            declared_type = _type_name(tensor.data_type)
            _require(graph_type == declared_type, path,
                     f"{tensor.name} is {declared_type} in the config but {graph_type or 'another type'} in the graph")
            dims = full_dims(config, tensor)
            _require(len(dims) == len(graph_dims), path,
                     f"{tensor.name}: the config's shape {dims} and the graph's {graph_dims} differ in rank")
            for ours, theirs in zip(dims, graph_dims):
                _require(ours == -1 and theirs == -1 or ours == theirs or (ours != -1 and theirs == -1), path,
                         f"{tensor.name}: the config's shape {dims} does not fit the graph's {graph_dims}")
            if config.max_batch_size > 0:
                _require(graph_dims[0] == -1, path, f"{tensor.name}: a batching model's first dimension must be dynamic")


def _check_ensemble(config, configs: dict, path: Path) -> None:
    """Triton's ensemble rules (core: ensemble_utils.cc, model_config_utils.cc): each step names a
    model of the repository with an explicit version; its input_map keys are that model's inputs
    (every one mapped) and its values ensemble inputs or earlier steps' outputs; its output_map keys
    are the model's outputs; a tensor is written once; every ensemble input is read, every written
    tensor is read or is an ensemble output, every ensemble output is written; types are equal and
    shapes agree with or without the batch dimension; a batching step batches at least as much as
    the ensemble."""
    available = {t.name: (t.dims, full_dims(config, t), t.data_type) for t in config.input}
    read, written = set(), set()
    _require(len(config.ensemble_scheduling.step) > 0, path, "an ensemble needs at least one step")
    for step in config.ensemble_scheduling.step:
        _require(step.model_name in configs, path, f"step model {step.model_name!r} is not in the repository")
        _require(step.model_version == -1, path, f"step {step.model_name}: model_version -1 (the latest) is what "
                 "this repository ships; another number must name a loaded version")
        model = configs[step.model_name]
        _require(model.max_batch_size == 0 or model.max_batch_size >= config.max_batch_size, path,
                 f"the ensemble's max_batch_size {config.max_batch_size} exceeds {step.model_name}'s "
                 f"{model.max_batch_size}")
        inputs = {t.name: t for t in model.input}
        _require(set(step.input_map) == set(inputs), path,
                 f"step {step.model_name} maps inputs {sorted(step.input_map)}, the model has {sorted(inputs)}")
        for key, value in step.input_map.items():
            _require(value in available, path, f"step {step.model_name} reads {value!r} before anything writes it")
            _require(_consistent(available[value], (inputs[key].dims, full_dims(model, inputs[key]))), path,
                     f"{value!r} {available[value][1]} does not fit {step.model_name}'s {key} "
                     f"{full_dims(model, inputs[key])}")
            _require(available[value][2] == inputs[key].data_type, path, f"{value!r} changes data type")
            read.add(value)
        outputs = {t.name: t for t in model.output}
        _require(len(step.output_map) > 0, path, f"step {step.model_name} must map an output")
        for key, value in step.output_map.items():
            _require(key in outputs, path, f"step {step.model_name} has no output {key!r}")
            _require(value not in available, path, f"ensemble tensor {value!r} can be written only once")
            available[value] = (outputs[key].dims, full_dims(model, outputs[key]), outputs[key].data_type)
            written.add(value)
    for tensor in config.input:
        _require(tensor.name in read, path, f"ensemble input {tensor.name!r} is not used")
    outputs = {t.name for t in config.output}
    for name in written - read - outputs:
        _require(False, path, f"ensemble tensor {name!r} is unused")
    for tensor in config.output:
        _require(tensor.name in written, path, f"ensemble output {tensor.name!r} is not written")
        _require(_consistent(available[tensor.name], (tensor.dims, full_dims(config, tensor))), path,
                 f"ensemble output {tensor.name!r} {full_dims(config, tensor)} does not fit what its step writes "
                 f"{available[tensor.name][1]}")
        _require(available[tensor.name][2] == tensor.data_type, path, f"ensemble output {tensor.name!r} changes type")


def _consistent(a, b) -> bool:
    """Triton's shape rule: the dims agree, or the shapes with the batch dimension do (-1 matches anything)."""
    return _compatible(list(a[0]), list(b[0])) or _compatible(list(a[1]), list(b[1]))


def _compatible(a: list[int], b: list[int]) -> bool:
    return len(a) == len(b) and all(x == y or x == -1 or y == -1 for x, y in zip(a, b))


def _type_name(data_type: int) -> str:
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2.DataType.Name(data_type)


def _require(condition, where, rule: str) -> None:
    if not condition:
        raise UserError(f"Triton repository {where}: {rule}")


def detector_runner(root: Path, names: dict[str, str]):
    """The detector's two repository models, checked against Triton's rules, run by ONNX Runtime from
    the repository's own files (what Triton's onnxruntime backend loads)."""
    from repmet.runtime.backends import verifying_backend

    check_repository(root)
    return verifying_backend("onnx").detector_runner(root / names["detection"] / "1" / "model.onnx",
                                                     root / names["box_embedding"] / "1" / "model.onnx", "cpu", 0)


class EnsembleRunner:
    """The repository's ensemble run in-process, step by step through ONNX Runtime, tensors routed
    by the configs' input_map / output_map exactly as Triton routes them. Used to verify the
    repository against PyTorch; it is not a server."""

    name = "triton-ensemble"
    device = "cpu"

    def __init__(self, root: Path, ensemble: str) -> None:
        from repmet.runtime.backends.onnxruntime.runners import onnxruntime_sessions

        self.configs = check_repository(root)
        self.ensemble = self.configs[ensemble]
        self.sessions = {}
        for step in self.ensemble.ensemble_scheduling.step:
            model = self.configs[step.model_name]
            path = root / model.name / "1" / (model.default_model_filename or "model.onnx")
            (self.sessions[model.name],) = onnxruntime_sessions([path])

    def run(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = dict(tensors)
        for step in self.ensemble.ensemble_scheduling.step:
            session = self.sessions[step.model_name]
            feeds = {key: np.ascontiguousarray(tensors[value], np.float32) for key, value in step.input_map.items()}
            names = list(step.output_map)
            for key, array in zip(names, session.run(names, feeds)):
                tensors[step.output_map[key]] = array
        return {t.name: tensors[t.name] for t in self.ensemble.output}

    def embed(self, images: np.ndarray) -> np.ndarray:
        dim = self.ensemble.input[1].dims[-1]
        return self.run({"images": images, "representatives": np.zeros((1, 1, dim), np.float32)})["embeddings"]

    def head(self, embeddings: np.ndarray, representatives: np.ndarray):
        step = self.ensemble.ensemble_scheduling.step[-1]
        outputs = self.sessions[step.model_name].run(["distances", "posteriors"], {
            "embeddings": np.ascontiguousarray(embeddings, np.float32),
            "representatives": np.ascontiguousarray(representatives, np.float32)})
        return outputs[0], outputs[1]
