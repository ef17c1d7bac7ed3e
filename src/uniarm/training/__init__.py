"""Training the reward models: UniARM, PARM and GenARM ARMs on preference pairs.

`train(TrainConfig(...))` runs (or resumes, or reuses) one training run and returns the folder
of the trained ARM; `uniarm train` is the same from the command line.
"""

from uniarm.training.config import METHODS, TrainConfig
from uniarm.training.train import train

__all__ = ["METHODS", "TrainConfig", "train"]
