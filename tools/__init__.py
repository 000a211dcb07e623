"""vidagent's perception tools: video decoding, frame sampling, segmentation, vision models."""

from vidagent.tools.actions import (
    ActionParams,
    ActionRecognizer,
    Taxonomy,
    load_action_head,
    save_action_head,
)
from vidagent.tools.captioner import (
    Captioner,
    CaptionerParams,
    ServedCaptioner,
    ServedCaptionerParams,
)
from vidagent.tools.contact_sheet import (
    contact_sheet,
    describe_video,
    save_contact_sheet,
    video_contact_sheet,
)
from vidagent.tools.models import (
    ModelLoadError,
    ModelRunError,
    PerceptionTool,
    ToolOutput,
    load_model,
)
from vidagent.tools.perceive import PerceiveSummary, VideoResult, perceive, perceive_many
from vidagent.tools.sampling import (
    fps_indices,
    sample_fps,
    sample_frames,
    sample_segments,
    sample_uniform,
    segment_indices,
    uniform_indices,
)
from vidagent.tools.segmenter import (
    ShotParams,
    build_timeline,
    detect_shots,
    fixed_segments,
    segments_from_cuts,
    shot_segments,
)
from vidagent.tools.video import FrameBatch, VideoSource, open_video, probe_video
from vidagent.tools.visual_embedder import EmbedderParams, SegmentEmbedder, VisualEncoder

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
