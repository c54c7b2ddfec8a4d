from setuptools import find_packages, setup

setup(
    name="act-noisy",
    version="0.1.0",
    description="A high-throughput trainer for ACT (Asymmetric Co-Training) on noisy labels",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    classifiers=[
        "License :: OSI Approved :: MIT License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    python_requires=">=3.10",
    packages=find_packages(include=["act", "act.*", "pipelines", "pipelines.*"]),
    package_data={"act": ["demo.yaml"]},
    install_requires=[
        # A range, not a pin: GPU machines often carry their own CUDA build of torch. Both ends are
        # what CI tests (.ci/run: torch 2.11.0 with torchvision 0.26.0, and 2.14.1 with 0.29.1).
        "torch>=2.11,<2.15",
        "torchvision>=0.26,<0.30",
        "numpy>=1.24",
        "pillow>=9",
        "pyyaml>=6",
        "scikit-learn>=1.2",  # the embedded demo's digits data set
        "tqdm>=4.60",
    ],
    extras_require={
        "timm": ["timm>=0.9"],
        "dali": ["nvidia-dali-cuda130>=2.0"],  # the `dali` pipeline; CPU-only runs work too
        # the `ffcv` pipeline; builds from source: apt-get install pkg-config libopencv-dev libturbojpeg0-dev
        "ffcv": ["ffcv==1.0.2"],
        "plots": ["matplotlib>=3.7"],  # curves.png of a run, the curves of `act report --out`
        "tensorboard": ["tensorboard>=2.14"],  # run.tensorboard=true
        "wandb": ["wandb>=0.19.10"],  # run.wandb=online | offline (a pack's runs log at once: reinit="create_new")
        "cleanlab": ["cleanlab>=2.5"],  # benchmarks/label_issues.py only
        "slurm": ["submitit>=1.5"],  # act sweep --executor slurm | submitit-local
        "test": ["pytest>=7", "timm>=0.9", "matplotlib>=3.7", "tensorboard>=2.14", "submitit>=1.5"],
    },
    entry_points={"console_scripts": ["act=act.commands.cli:main"]},
)
