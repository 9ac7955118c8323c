"""pip install of homae_model and the homae_ros Python code, for machines without ROS.

With ROS 2, colcon builds the package from CMakeLists.txt instead (messages, node, launch).
The console scripts below are the training, evaluation and offline tools.
"""

from setuptools import find_packages, setup

CONSOLE_SCRIPTS = [
    "homae-summary=homae_model.cli.summary:main",
    "homae-convert-mano=homae_model.cli.convert_mano:main",
    "homae-make-hand=homae_model.cli.make_hand:main",
    "homae-synth=homae_model.cli.synth:main",
    "homae-train=homae_model.cli.train:main",
    "homae-eval=homae_model.cli.evaluate:main",
    "homae-train-detector=homae_model.cli.train_detector:main",
    "homae-train-sides=homae_model.cli.train_sides:main",
    "homae-tune-object=homae_model.cli.tune_object:main",
    "homae-pretrain=homae_model.cli.pretrain:main",
    "homae-fit-anchor=homae_model.cli.fit_anchor:main",
    "homae-export=homae_model.cli.export:main",
    "homae-bag=homae_ros.tools.bag:main",
    "homae-infer=homae_ros.tools.infer:main",
]

setup(
    name="homae_ros",
    version="0.1.0",
    description="HOMAE hand-object pose estimation: model, training, evaluation and ROS 2 node",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["homae_model", "homae_model.*", "homae_ros", "homae_ros.*"]),
    package_data={"homae_model": ["assets/**/*"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.4",
        "timm>=1.0",
        "smplx>=0.1.28",
        "numpy>=1.26",
        "scipy",
        "opencv-python-headless",
        "pyyaml",
        "omegaconf>=2.3,<2.4",
        "safetensors",
        "tqdm",
        "moderngl",
        "matplotlib",
        "rosbags",
        "onnx",
        "onnxruntime",
    ],
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
