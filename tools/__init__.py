"""vidagent's perception tools: video decoding, frame sampling, segmentation, vision models."""

from tools.actions import (
    ActionParams,
    ActionRecognizer,
    Taxonomy,
    load_action_head,
    save_action_head,
)
from tools.captioner import Captioner, CaptionerParams, ServedCaptioner, ServedCaptionerParams
from tools.contact_sheet import (
    contact_sheet,
    describe_video,
    save_contact_sheet,
    video_contact_sheet,
)
from tools.embedder import EmbedderParams, SegmentEmbedder, VisualEncoder
from tools.models import ModelLoadError, ModelRunError, PerceptionTool, ToolOutput, load_model
from tools.perceive import PerceiveSummary, VideoResult, perceive, perceive_many
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
    "ActionParams",
    "ActionRecognizer",
    "Captioner",
    "CaptionerParams",
    "EmbedderParams",
    "FrameBatch",
    "ModelLoadError",
    "ModelRunError",
    "PerceiveSummary",
    "PerceptionTool",
    "SegmentEmbedder",
    "ServedCaptioner",
    "ServedCaptionerParams",
    "ShotParams",
    "Taxonomy",
    "ToolOutput",
    "VideoResult",
    "VideoSource",
    "VisualEncoder",
    "build_timeline",
    "contact_sheet",
    "describe_video",
    "detect_shots",
    "fixed_segments",
    "fps_indices",
    "load_action_head",
    "load_model",
    "open_video",
    "perceive",
    "perceive_many",
    "probe_video",
    "sample_fps",
    "sample_frames",
    "sample_segments",
    "sample_uniform",
    "save_action_head",
    "save_contact_sheet",
    "segment_indices",
    "segments_from_cuts",
    "shot_segments",
    "uniform_indices",
    "video_contact_sheet",
]
