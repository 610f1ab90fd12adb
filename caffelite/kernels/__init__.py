"""Shared array math written once for any array module ``xp`` (NumPy or CuPy).

Layers import what they need from the submodules (``im2col``, ...); nothing here branches on
the device.
"""
