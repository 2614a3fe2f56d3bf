"""BlazePose (Bazarevsky et al. 2020, "BlazePose: On-device Real-time Body Pose tracking")
on the raw TFLite models from MediaPipe 0.10.14, re-implemented as plain numpy/OpenCV code.

The public entry point is :class:`edge_models.pose.pipeline.PosePipeline`.
"""
from edge_models.pose.pipeline import PipelineStats, PosePipeline  # noqa: F401
from edge_models.pose.selection import BeltRoi  # noqa: F401
