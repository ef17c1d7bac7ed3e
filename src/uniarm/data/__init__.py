"""Preference data: loaders for the shared data folders and the hub, one schema, prompt splits."""

from uniarm.data.schema import PreferencePair, Turn, render_prompt

__all__ = ["PreferencePair", "Turn", "render_prompt"]
