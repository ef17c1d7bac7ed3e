"""The paper comparison: the baselines MOD and Rewarded Soups, and the study of every method.

- `dpo`: one DPO-tuned LoRA policy per objective (trl), shared by MOD and Rewarded Soups;
- `mod`: MOD, the policies' log-probabilities mixed by the preference;
- `soups`: Rewarded Soups, the policies' weights interpolated by the preference;
- `study`, `stages`, `replies`, `results`, `markdown`: train and sweep every method under
  matched settings, cached stage by stage, and write the comparison (`bench/compare.py`,
  `uniarm compare`).
"""

from uniarm.baselines.dpo import DPOSettings, load_policies, read_policies, train_policies
from uniarm.baselines.mod import mod_decoder
from uniarm.baselines.soups import RewardedSoup
from uniarm.baselines.study import METHODS, StudyConfig, run_study

__all__ = [
    "METHODS",
    "DPOSettings",
    "RewardedSoup",
    "StudyConfig",
    "load_policies",
    "mod_decoder",
    "read_policies",
    "run_study",
    "train_policies",
]
