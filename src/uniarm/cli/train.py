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

from uniarm.config import add_arguments, from_namespace, load_recipe

RECIPE_SECTION = "train"


def register(subparsers) -> None:
    from uniarm.training.config import TrainConfig

    parser = subparsers.add_parser(
        "train",
        help="train a reward model (UniARM, PARM or GenARM)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--recipe", type=Path, help="YAML file of TrainConfig settings")
    parser.add_argument(
        "--overwrite", action="store_true", help="clear the output folder and start again"
    )
    add_arguments(parser, TrainConfig)
    parser.set_defaults(func=run)


def recipe_values(path: Path | None) -> dict:
    """A recipe's settings: the whole file, or its `train:` section when it has one."""
    values = load_recipe(path)
    if isinstance(values.get(RECIPE_SECTION), dict):
        values = values[RECIPE_SECTION]
    return values


def run(args) -> int:
    from uniarm.training import TrainConfig, train

    config = from_namespace(TrainConfig, args, base=recipe_values(args.recipe))
    path = train(config, overwrite=args.overwrite)
    print(path)
    return 0
