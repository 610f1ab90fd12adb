"""The ``caffelite`` command line: Caffe's ``caffe`` tool and its companion tools."""
