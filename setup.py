"""caffelite: Caffe-compatible declarative deep learning in pure Python."""
from setuptools import find_packages, setup

setup(
    name="caffelite",
    version="1.0.0",
    description="Caffe-compatible declarative deep learning in pure Python (NumPy/CuPy)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["caffelite", "caffelite.*"]),
    install_requires=[
        "numpy>=1.23",
        # caffe_pb2.py is generated to import under every protobuf from 3.20 to 7.x
        "protobuf>=3.20,<8",
        "pillow>=9",
        "lmdb>=1.0",
    ],
    extras_require={
        "gpu": ["cupy-cuda12x>=13"],
        "hdf5": ["h5py>=3.6"],
        "plot": ["matplotlib>=3.5"],
        "test": ["pytest>=7", "h5py>=3.6", "opencv-python-headless<5", "matplotlib>=3.5"],
        "bench": ["torch>=2.0", "opencv-python-headless<5"],
    },
    entry_points={"console_scripts": ["caffelite=caffelite.cli.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
