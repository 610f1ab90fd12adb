#!/usr/bin/env sh
# Train LeNet on MNIST with Caffe's solver settings (models/lenet/solver.prototxt).
# The idx files ship in data/mnist; they become LMDBs on first use. Extra arguments go to
# `caffelite train` (e.g. -gpu 0, or -snapshot models/lenet/lenet_iter_5000.solverstate).
set -e
cd "$(dirname "$0")/../.."
for split in train t10k; do
    db=data/mnist_$( [ "$split" = t10k ] && echo test || echo train )_lmdb
    if [ ! -d "$db" ]; then
        caffelite convert_mnist_data "data/mnist/$split-images-idx3-ubyte.gz" \
            "data/mnist/$split-labels-idx1-ubyte.gz" "$db"
    fi
done
caffelite train -solver models/lenet/solver.prototxt "$@"
