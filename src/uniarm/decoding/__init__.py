"""Guided decoding: a frozen base model steered by one or more reward models (METHOD.md §2)."""

from uniarm.decoding.config import DecodingConfig
from uniarm.decoding.engine import GuidedDecoder
from uniarm.decoding.guides import Guide, ObjectiveGuide, PreferenceGuide
from uniarm.decoding.loading import checkpoint_method, genarm_guides, load_guides
from uniarm.decoding.outputs import Generation, StepInfo
from uniarm.decoding.sampling import choose_tokens, guided_log_probs

__all__ = [
    "DecodingConfig",
    "Generation",
    "Guide",
    "GuidedDecoder",
    "ObjectiveGuide",
    "PreferenceGuide",
    "StepInfo",
    "checkpoint_method",
    "choose_tokens",
    "genarm_guides",
    "guided_log_probs",
    "load_guides",
]
