"""3D from the rig's calibrated cameras: camera model, triangulation, temporal filter and
3D joint kinematics. Pure numpy/OpenCV, no I/O besides the camera file."""
