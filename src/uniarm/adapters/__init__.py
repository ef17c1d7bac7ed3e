"""Adapters: MoSLoRA (UniARM), PBLoRA (PARM) and plain LoRA (GenARM), and the ARM wrapper."""

from uniarm.adapters.arm import PreferenceARM, read_arm_config
from uniarm.adapters.config import AdapterConfig
from uniarm.adapters.moslora import MoSLoRALinear
from uniarm.adapters.pblora import PBLoRALinear

__all__ = ["AdapterConfig", "MoSLoRALinear", "PBLoRALinear", "PreferenceARM", "read_arm_config"]
