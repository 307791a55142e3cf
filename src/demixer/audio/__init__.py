"""Playback (DESIGN.md §3): numpy + sounddevice only, sounddevice imported lazily; never imports Qt."""

from demixer.audio.player import PlaybackUnavailable, Player, playback_status
from demixer.core.mix import mix_sources

__all__ = ["PlaybackUnavailable", "Player", "mix_sources", "playback_status"]
