"""Left padding, position ids and batch assembly, against values written out by hand."""

import torch

from uniarm.decoding.batching import chunk_rows, left_pad, next_positions, prefill_positions
from uniarm.decoding.prompts import EncodedPrompt


def test_left_pad_and_positions():
    ids, mask = left_pad([(5, 6, 7), (8,)], pad_id=0, device="cpu")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert prefill_positions(mask).tolist() == [[0, 1, 2], [0, 0, 0]]
    grown = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], dim=1)
    assert next_positions(grown).tolist() == [[3], [1]]


def test_rows_of_one_prompt_stay_together_longest_first():
    short, long = EncodedPrompt((1,)), EncodedPrompt((1, 2, 3))
    encoded = [short, long, short, long, EncodedPrompt((4, 5))]
    assert chunk_rows(encoded, batch_size=10) == [[1, 3, 4, 0, 2]]
    assert chunk_rows(encoded, batch_size=2) == [[1, 3], [4, 0], [2]]
