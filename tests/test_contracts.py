"""The seams between stages: the method registry, models built in one place, self-describing
checkpoints, one posterior formula, one format table, and which stage may import which."""

import ast
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from repmet.errors import UserError
from repmet.artifact.graph_formats import CLI_FORMATS, FORMATS
from repmet.methods import available_methods, get_method, open_checkpoint, register_method
from repmet.methods.config_loading import config_from_dict, load_config
from repmet.methods.registry import method_sections
from repmet.ops.posterior import class_log_posterior, class_posterior

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT_ROOT / "repmet"


def test_export_eval_and_the_eager_runtime_backend_import_nothing_from_the_trainers():
    modules = ["repmet.export.artifact_writer", "repmet.export.cli_export", "repmet.evaluate.cli_eval",
               "repmet.runtime.backends.eager.runners", "repmet.methods"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "print(sorted(m for m in sys.modules if m == 'repmet.train' or m.startswith('repmet.train.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_the_artifact_contract_imports_no_stage_and_no_torch():
    """repmet.artifact (schema, reader, writer, fingerprint, gallery file) is what export writes and
    every runtime reads: it imports neither of them, nor torch (the ONNX Runtime backend runs
    without it)."""
    code = ("import sys, pkgutil, importlib, repmet.artifact as a\n"
            "for m in pkgutil.iter_modules(a.__path__): importlib.import_module('repmet.artifact.' + m.name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith(('repmet.runtime', "
            "'repmet.export', 'repmet.train', 'repmet.evaluate', 'repmet.methods'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def _method_name_uses(path: Path, names: set[str], sections: set[str]) -> list[str]:
    """Comparisons with a method's name, subscripts by it, and reads of a method's config section."""
    found = []
    where = path.relative_to(PROJECT_ROOT) if PROJECT_ROOT in path.parents else path.name
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operand in operands:
                values = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
                if any(isinstance(v, ast.Constant) and v.value in names for v in values):
                    found.append(f"{where}:{node.lineno} compares with a method name")
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value in names:
            found.append(f"{where}:{node.lineno} indexes by a method name")
        elif isinstance(node, ast.Attribute) and node.attr in sections and not (isinstance(node.value, ast.Name) and node.value.id == "repmet"):
            found.append(f"{where}:{node.lineno} reads a method's section .{node.attr}")
    return found


def test_nothing_outside_the_methods_branches_on_a_method_name():
    names = set(available_methods())
    sections = set(method_sections())
    assert {"protonets", "repmet", "magnet"} <= names
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if PACKAGE / "methods" in path.parents:
            continue
        offenders += _method_name_uses(path, names, sections)
    assert offenders == []


def test_the_method_name_check_finds_what_it_looks_for(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("if config.method == 'magnet':\n    k = config.magnet.clusters_per_class\n"
                     "y = table['protonets']\n")
    assert len(_method_name_uses(probe, {"magnet", "repmet", "protonets"}, {"magnet"})) == 3


def test_each_method_owns_its_config_section_and_unknown_methods_are_refused():
    config = load_config(PROJECT_ROOT / "configs" / "repmet_flowers_lite0_cpu.yaml")
    assert config.repmet.reps_per_class == 1 and "magnet" not in config.to_dict()
    with pytest.raises(UserError, match="key 'method': unknown method 'dml'; available: magnet, protonets, repmet"):
        config_from_dict({"method": "dml"}, source="x.yaml")
    with pytest.raises(UserError, match=r"x.yaml: key 'repmet.sigma' is 0.0; it must be greater than 0"):
        config_from_dict({"method": "repmet", "repmet": {"sigma": 0.0}}, source="x.yaml")
    with pytest.raises(UserError, match=r"unknown key 'magnet.k'"):
        config_from_dict({"method": "magnet", "magnet": {"k": 2}}, source="x.yaml")
    with pytest.raises(ValueError, match="registered twice"):
        register_method(get_method("repmet"))


def test_a_version_1_checkpoint_describes_itself_when_opened():
    """The shipped Omniglot checkpoints predate self-describing checkpoints."""
    bundle = torch.load(PROJECT_ROOT / "checkpoints" / "omniglot" / "protonets_1_5.pt", weights_only=True)
    assert bundle["format_version"] == 1 and "preprocess" not in bundle
    trained = open_checkpoint(PROJECT_ROOT / "checkpoints" / "omniglot" / "protonets_1_5.pt")
    assert trained.preprocess.to_dict() == {"color": "L", "resize": "exact", "resize_to": 28,
                                            "interpolation": "lanczos", "crop": 28, "invert": True,
                                            "mean": [0.0], "std": [1.0]}
    assert tuple(trained.gallery.representatives.shape) == (0, 1, 64) and not trained.gallery.normalized
    assert trained.gallery.sigma == pytest.approx(math.sqrt(0.5)) and trained.class_names == []


@pytest.mark.parametrize("distance_sigma", [(0.5, 1), (0.8, 3), (math.sqrt(0.5), 1)])
def test_the_one_posterior_formula_equals_its_definition(distance_sigma):
    sigma, k = distance_sigma
    rng = np.random.default_rng(0)
    distances = rng.uniform(0, 4, size=(6, 5, k))
    naive = np.zeros((6, 5))
    for b in range(6):
        scores = [math.exp(-min(distances[b, c]) / (2 * sigma * sigma)) for c in range(5)]
        naive[b] = [s / sum(scores) for s in scores]
    tensor = torch.from_numpy(distances).float()
    np.testing.assert_allclose(class_posterior(tensor, sigma).numpy(), naive, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(class_log_posterior(tensor, sigma).exp().numpy(), naive, rtol=1e-5, atol=1e-7)


def test_one_format_table_serves_export_and_runtime():
    """The export format plug-ins, the artifact contract's table of graph keys and the runtime
    backend plug-ins agree: every format's graphs have a backend, every backend runs a format's
    graphs (or model.pt)."""
    from repmet.export.formats import EXPORT_FORMATS, format_names
    from repmet.runtime.backends import RUNTIME_BACKENDS, backend_names

    exported = {(EXPORT_FORMATS.get(n).name, EXPORT_FORMATS.get(n).graph_key) for n in format_names()}
    assert exported == {(f.cli_name, f.graph_key) for f in FORMATS}
    assert set(CLI_FORMATS) == {"torchscript", "onnx", "int8", "trt", "aoti", "triton"}
    keys = {RUNTIME_BACKENDS.get(name).graph_key for name in backend_names()}
    served_elsewhere = {EXPORT_FORMATS.get(n).graph_key for n in format_names() if EXPORT_FORMATS.get(n).served_by}
    assert served_elsewhere == {"triton"}  # a Triton repository is run by Triton, and checked offline at export
    assert keys == {f.graph_key for f in FORMATS} - served_elsewhere | {None}
    assert set(backend_names()) == {"torch", "torchscript", "onnxruntime", "onnxruntime-int8", "tensorrt", "aoti"}


def test_export_names_no_format_outside_its_plugin_folder():
    """A format is a plug-in: the writer, the detector builder and the CLI loop over the registry."""
    from repmet.export.formats import format_names

    names = set(format_names())
    formats = PACKAGE / "export" / "formats"
    plugin_folders = [path for path in formats.iterdir() if (path / "__init__.py").is_file()]
    offenders = [hit for path in sorted((PACKAGE / "export").rglob("*.py"))
                 if not any(folder in path.parents for folder in plugin_folders)
                 for hit in _name_constants(path, names)]
    assert offenders == [], "\n".join(offenders)


def _name_constants(path: Path, names: set[str]) -> list[str]:
    """String constants equal to one of ``names`` (docstrings and messages are longer strings)."""
    return [f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} names {node.value!r}"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names]


def test_the_runtime_names_no_backend_outside_its_plugin_folder():
    """A backend is a plug-in: the runtime asks the registry, so a new backend touches only its own
    folder under repmet/runtime/backends/ (its __init__ registers it)."""
    from repmet.runtime.backends import backend_names

    names = set(backend_names())
    backends = PACKAGE / "runtime" / "backends"
    plugin_code = [path for path in backends.iterdir() if (path / "__init__.py").is_file()]
    plugin_code += [backends / "torch_common.py"]  # what the three torch plug-ins share
    plugin_code += [PACKAGE / "runtime" / "cpp"]  # the C++ runtime: its own backends, its own tools
    offenders = [hit for path in sorted((PACKAGE / "runtime").rglob("*.py"))
                 if not any(code == path or code in path.parents for code in plugin_code)
                 for hit in _name_constants(path, names)]
    assert offenders == [], "\n".join(offenders)
    planted = backends / "__init__.py"
    assert _name_constants(planted, names) == []  # and the check itself finds a planted name:
    assert _name_constants(Path(__file__), {"onnxruntime"}), "the check found nothing it should have"


TASKS = {"classification", "detection"}


def _task_branches(path: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """Comparisons with a task name (``task == "detection"``, ``task in ("detection", ...)``)."""
    hits = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            operands += [e for o in operands if isinstance(o, (ast.Tuple, ast.List, ast.Set)) for e in o.elts]
            if any(isinstance(o, ast.Constant) and o.value in TASKS for o in operands):
                hits.append(f"{path.relative_to(root)}:{node.lineno} compares with a task name")
    return hits


def test_no_stage_branches_on_a_task_name(tmp_path):
    """Tasks are tables, not branches: export asks EXPORT_TASKS for the builder, the runtime asks
    RUNTIME_TASKS for the class, evaluation asks its registry; each task's code is its own module."""
    from repmet.export.tasks import EXPORT_TASKS
    from repmet.runtime.few_shot_runtime import RUNTIME_TASKS

    assert EXPORT_TASKS.names() == RUNTIME_TASKS.names() == sorted(TASKS)
    offenders = [hit for stage in ("export", "runtime", "evaluate", "train")
                 for path in sorted((PACKAGE / stage).rglob("*.py")) for hit in _task_branches(path)]
    assert offenders == [], "\n".join(offenders)
    planted = tmp_path / "planted.py"
    planted.write_text("def f(task):\n    return 1 if task in ('detection', 'x') else task != 'classification'\n")
    assert len(_task_branches(planted, tmp_path)) == 2, "the check missed a planted branch"


def test_an_artifact_opens_as_the_runtime_of_its_task(omniglot_artifact):
    from repmet.runtime import FewShotClassifier, FewShotDetector, open_runtime

    runtime = open_runtime(omniglot_artifact, backend="onnxruntime")
    assert type(runtime) is FewShotClassifier and runtime.backend.name == "onnxruntime"
    with pytest.raises(UserError, match="is a classification artifact; load it with FewShotClassifier, not "
                                        "FewShotDetector"):
        FewShotDetector.load(omniglot_artifact)


def test_auto_is_a_priority_list_over_what_the_artifact_and_machine_allow(omniglot_artifact, tmp_path):
    import json
    import shutil

    from repmet.artifact.reader import Artifact
    from repmet.runtime.backends import RUNTIME_BACKENDS, backend_names, choose_backend

    order = [name for name in backend_names() if RUNTIME_BACKENDS.get(name).auto_priority is not None]
    assert order[-1] == "torch"  # the eager model.pt, which every artifact has, comes last
    artifact = Artifact.open(omniglot_artifact)
    chosen = choose_backend(artifact, "cpu")
    allowed = [n for n in order if RUNTIME_BACKENDS.get(n).has_graphs(artifact)
               and RUNTIME_BACKENDS.get(n).unavailable_reason("cpu") is None]
    assert chosen.name == allowed[0]
    for name in backend_names():  # every plug-in answers whether it can run here, in a sentence when not
        reason = RUNTIME_BACKENDS.get(name).unavailable_reason("cpu")
        assert reason is None or (isinstance(reason, str) and len(reason) > 20)
    # without the chosen backend's graphs, auto takes the next one
    copy = tmp_path / "copy"
    shutil.copytree(omniglot_artifact, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["graphs"].pop(chosen.graph_key)
    (copy / "metadata.json").write_text(json.dumps(meta))
    fewer = Artifact.__new__(Artifact)
    fewer.__dict__.update(artifact.__dict__, metadata=meta)
    assert choose_backend(fewer, "cpu").name == allowed[1]


def test_a_second_backend_for_the_same_graphs_plugs_in_without_touching_anything_else(omniglot_artifact, data_root,
                                                                                     monkeypatch):
    """The seam the format table lacked: ONNX Runtime with its sequential executor and one thread,
    registered from outside the package for the same .onnx graphs, classifies like onnxruntime."""
    import onnxruntime as ort
    from artifact_fixtures import omniglot_class_images

    from repmet.runtime import FewShotClassifier
    from repmet.runtime.backends import RUNTIME_BACKENDS, RuntimeBackend, backend_names
    from repmet.runtime.backends.base import Backend

    class SequentialOrt(Backend):
        name = "ort-sequential"

        def __init__(self, embedding_path, head_path):
            options = ort.SessionOptions()
            options.execution_mode, options.intra_op_num_threads = ort.ExecutionMode.ORT_SEQUENTIAL, 1
            self._embedding, self._head = (ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
                                           for p in (embedding_path, head_path))

        def embed(self, images):
            return self._embedding.run(["embeddings"], {"images": images})[0]

        def head(self, embeddings, representatives):
            distances, posteriors = self._head.run(["distances", "posteriors"], {"embeddings": embeddings,
                                                                                 "representatives": representatives})
            return distances, posteriors

    class SequentialOrtPlugin(RuntimeBackend):
        name, graph_key, tasks = "ort-sequential", "onnx", ("classification",)

        def open_classifier(self, artifact, device, threads):
            return SequentialOrt(artifact.graph("onnx", "embedding"), artifact.graph("onnx", "head"))

    RUNTIME_BACKENDS.names()  # the built-ins first, as a plug-in package would find them
    monkeypatch.setitem(RUNTIME_BACKENDS._entries, "ort-sequential", SequentialOrtPlugin())
    assert "ort-sequential" in backend_names()
    ours = FewShotClassifier.load(omniglot_artifact, backend="ort-sequential")
    reference = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime")
    assert ours.backend.name == "ort-sequential"
    classes = omniglot_class_images(data_root, classes=4)
    for classifier in (ours, reference):
        for label, images in classes:
            classifier.enroll(label, images[:1])
    queries = [image for _, images in classes for image in images[1:6]]
    found, expected = ours.classify(queries, top_k=4), reference.classify(queries, top_k=4)
    for a, b in zip(found, expected):
        assert sorted(a.labels) == sorted(b.labels)
        np.testing.assert_allclose(sorted(a.posteriors), sorted(b.posteriors), atol=1e-5)


def test_every_name_table_is_one_registry_helper():
    """Models, detection and region backbones, methods, losses and distances are all looked up
    through repmet.registry.Registry: one way to register, list and refuse a name."""
    from repmet.losses import LOSSES
    from repmet.methods.registry import METHODS
    from repmet.models.detection.backbones import DETECTION_BACKBONES, REGION_BACKBONES
    from repmet.models.registry import MODELS
    from repmet.ops.distances import DISTANCES
    from repmet.registry import Registry

    tables = {"model": MODELS, "method": METHODS, "loss": LOSSES, "distance": DISTANCES,
              "detection backbone": DETECTION_BACKBONES, "region backbone": REGION_BACKBONES}
    for kind, registry in tables.items():
        assert isinstance(registry, Registry) and registry.kind == kind
        assert registry.names() == sorted(registry.names()) and registry.names()
        with pytest.raises(UserError, match=rf"^config.yaml: unknown {kind} 'nope'; available: "
                                            rf"{', '.join(registry.names())}$"):
            registry.get("nope", "config.yaml")
    assert {"conv4", "efficientnet_lite0"} <= set(MODELS.names())
    assert DETECTION_BACKBONES.names() == ["efficientnet_lite0", "resnet50"]


def test_a_registry_registers_once_and_loads_its_builtins_on_first_lookup():
    from repmet.registry import Registry

    loaded = []
    registry = Registry("widget", lambda: (loaded.append(True), registry.register("builtin", 1)))
    registry.register("mine", 2)
    assert loaded == []  # registering never loads the built-ins
    assert registry.get("builtin") == 1 and registry.names() == ["builtin", "mine"] and loaded == [True]
    assert "mine" in registry and "other" not in registry and loaded == [True]
    with pytest.raises(ValueError, match="widget name 'mine' is registered twice"):
        registry.register("mine", 3)

    @registry.register("decorated")
    def factory():
        return 4

    assert registry.get("decorated")() == 4


def _import_graph() -> dict[str, set[str]]:
    """repmet's modules -> the repmet modules each imports anywhere in its file (function-level
    imports count: a lazy import that breaks a circle at run time is still a circle in the design)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        # a registry loading the built-in entries of its own package is the plug-in pattern, not a circle
        package = name.rsplit(".", 1)[0]
        graph[name] = {m for m in found if m in modules and m != name and not (m == package and
                                                                                name.endswith(".registry"))}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, circles, counter = {}, {}, set(), [], [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    circles.append(sorted(members))
    return circles


def test_no_import_circles():
    assert _circles(_import_graph()) == []


def test_the_circle_check_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


# Which stage may import which (anything may import the shared parts: config, methods, models, ops,
# losses, data, ...). Export verifies through the runtime, training validates through evaluation.
MAY_IMPORT = {"shared": set(), "runtime": set(), "evaluate": set(), "train": {"evaluate"},
              "export": {"runtime", "evaluate"}, "serve": {"runtime"}}  # the service adds transport over the runtime
# No upward import is left: methods name their evaluation (repmet.evaluate.registry) instead of
# calling the evaluate stage, and none may appear.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def _stage(module: str) -> str:
    part = module.split(".")[1] if module.count(".") else ""
    return part if part in MAY_IMPORT else "shared"


def test_no_stage_imports_one_it_may_not():
    upward = {(module, imported) for module, imports in _import_graph().items() for imported in imports
              if not module.startswith("repmet.runtime.cpp.")  # tool scripts beside the C++ sources
              and _stage(imported) not in ("shared", _stage(module), *MAY_IMPORT[_stage(module)])}
    assert upward == KNOWN_UPWARD
