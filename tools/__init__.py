"""vidagent's perception tools: video decoding, frame sampling, segmentation, vision models."""

from tools.sampling import (
    fps_indices,
    sample_fps,
    sample_frames,
    sample_segments,
    sample_uniform,
    segment_indices,
    uniform_indices,
)
from tools.video import FrameBatch, VideoSource, open_video, probe_video

__all__ = [
    "FrameBatch",
    "VideoSource",
    "fps_indices",
    "open_video",
    "probe_video",
    "sample_fps",
    "sample_frames",
    "sample_segments",
    "sample_uniform",
    "segment_indices",
    "uniform_indices",
]
