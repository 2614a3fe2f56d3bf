"""Rig calibration: a printable ChArUco board, per-node board detection, a joint bundle
adjustment of all four cameras, and a check that a camera has not moved since."""
