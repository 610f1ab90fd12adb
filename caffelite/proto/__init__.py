"""Protocol buffer bindings for the Caffe wire format (see proto/caffe.proto)."""
