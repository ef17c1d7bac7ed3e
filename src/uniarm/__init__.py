"""uniarm: multi-objective test-time alignment with one preference-conditioned reward model.

A small autoregressive reward model (ARM) with the MoSLoRA adapter is trained on
multi-objective preference pairs; at decoding time it steers a frozen base LLM token by token
towards any mix of objectives, chosen per request (UniARM). PARM, GenARM, MOD and Rewarded
Soups are implemented alongside as baselines.
"""

__version__ = "0.1.0"
