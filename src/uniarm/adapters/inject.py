"""Put adapter layers in place of a model's target linear layers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from uniarm.errors import UniarmError


def find_targets(model: nn.Module, target_modules: Sequence[str]) -> list[str]:
    """Names of the nn.Linear modules whose last name part is one of `target_modules`."""
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in target_modules
    ]
    if not names:
        linear = sorted(
            {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
        )
        raise UniarmError(
            f"no linear layer of the model matches the target modules {list(target_modules)}",
            f"the model's linear layers are named: {', '.join(linear)}",
        )
    return names


def inject(
    model: nn.Module, target_modules: Sequence[str], make: Callable[[nn.Linear], nn.Module]
) -> dict[str, nn.Module]:
    """Replace every target linear layer by `make(layer)`; return the new layers by name."""
    created = {}
    for name in find_targets(model, target_modules):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = make(getattr(parent, child))
        setattr(parent, child, layer)
        created[name] = layer
    return created
