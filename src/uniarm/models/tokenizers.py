"""Check that a base model and a reward model can share one token stream.

Guided decoding adds their next-token log-probabilities id by id, so both must map every
shared id to the same token. One vocabulary may extend the other with a few added tokens
(or a model's logit matrix may be padded beyond its tokenizer); logits are then cut to the
shared part.
"""

from __future__ import annotations

from uniarm.errors import UniarmError


def shared_vocab_size(base_tokenizer, arm_tokenizer, base_logits: int, arm_logits: int) -> int:
    """The number of leading token ids both models agree on; raise when they do not agree."""
    base_vocab = base_tokenizer.get_vocab()
    arm_vocab = arm_tokenizer.get_vocab()
    base_by_id = {i: t for t, i in base_vocab.items()}
    arm_by_id = {i: t for t, i in arm_vocab.items()}
    shared = min(len(base_by_id), len(arm_by_id))

    mismatched = [i for i in range(shared) if base_by_id.get(i) != arm_by_id.get(i)]
    if mismatched:
        i = mismatched[0]
        raise UniarmError(
            f"the base model and the reward model use different tokenizers: "
            f"{len(mismatched)} of {shared} shared ids differ (id {i} is "
            f"{base_by_id.get(i)!r} for the base and {arm_by_id.get(i)!r} for the reward model)",
            "train or pick a reward model of the same tokenizer family as the base model",
        )
    for name, tok in (("base", base_tokenizer), ("reward", arm_tokenizer)):
        if tok.eos_token_id is not None and tok.eos_token_id >= shared:
            raise UniarmError(f"the {name} model's EOS id lies outside the shared vocabulary")
    if base_tokenizer.eos_token_id != arm_tokenizer.eos_token_id:
        raise UniarmError(
            "the base model and the reward model disagree on the end-of-sequence token "
            f"({base_tokenizer.eos_token!r} vs {arm_tokenizer.eos_token!r})",
            "use models of one tokenizer family",
        )
    return min(shared, base_logits, arm_logits)
