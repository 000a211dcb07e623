"""vidagent's perception tools: video decoding, frame sampling, segmentation, vision models."""

from tools.contact_sheet import (
    contact_sheet,
    describe_video,
    save_contact_sheet,
    video_contact_sheet,
)
from tools.sampling import (
    fps_indices,
    sample_fps,
    sample_frames,
    sample_segments,
    sample_uniform,
    segment_indices,
    uniform_indices,
)
from tools.segmenter import (
    ShotParams,
    build_timeline,
    detect_shots,
    fixed_segments,
    segments_from_cuts,
    shot_segments,
)
from tools.video import FrameBatch, VideoSource, open_video, probe_video

__all__ = [
    "FrameBatch",
    "ShotParams",
    "VideoSource",
    "build_timeline",
    "contact_sheet",
    "describe_video",
    "detect_shots",
    "fixed_segments",
    "fps_indices",
    "open_video",
    "probe_video",
    "sample_fps",
    "sample_frames",
    "sample_segments",
    "sample_uniform",
    "save_contact_sheet",
    "segment_indices",
    "segments_from_cuts",
    "shot_segments",
    "uniform_indices",
    "video_contact_sheet",
]
