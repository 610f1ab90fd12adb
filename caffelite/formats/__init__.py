"""Reading and writing Caffe's files: prototxt, caffemodel, mean files, upgrades."""
