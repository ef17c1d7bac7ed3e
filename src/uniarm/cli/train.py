"""`uniarm train`: train a UniARM, PARM or GenARM reward model on a task's preference pairs.

    uniarm train --method uniarm --task safety --output-dir runs/safety-uniarm
    uniarm train --recipe recipes/safety-uniarm.yaml --lr 5e-3       # flags override the recipe
    accelerate launch --multi_gpu --num_processes 4 -m uniarm train --recipe RECIPE   # GPUs
    torchrun --nproc_per_node 2 -m uniarm train ...                                 # CPUs

Run again with the same settings to resume a killed run (or to reuse a finished one);
other settings on the same folder are refused unless `--overwrite` is given. Prints the
folder of the trained ARM.
"""

from __future__ import annotations

from pathlib import Path

from uniarm.config import add_arguments, add_bool_argument, from_namespace, load_recipe

RECIPE_SECTION = "train"
# The flag names every sub-command uses; TrainConfig's fields keep their own as aliases.
RENAME = {"num_threads": "threads"}


def register(subparsers) -> None:
    from uniarm.training.config import TrainConfig

    parser = subparsers.add_parser(
        "train",
        help="train a reward model (UniARM, PARM or GenARM)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--recipe", type=Path, help="YAML file of TrainConfig settings")
    add_bool_argument(
        parser, "--overwrite", default=False, help="clear the output folder and start again"
    )
    add_arguments(parser, TrainConfig, rename=RENAME)
    parser.set_defaults(func=run)


def recipe_values(path: Path | None) -> dict:
    """A recipe's settings: the whole flat file, or its `train:` section (see uniarm.config)."""
    return load_recipe(path, RECIPE_SECTION)


def run(args) -> int:
    from uniarm.training import TrainConfig, train

    config = from_namespace(TrainConfig, args, base=recipe_values(args.recipe))
    path = train(config, overwrite=args.overwrite)
    print(path)
    return 0
