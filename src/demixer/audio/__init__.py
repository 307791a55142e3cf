"""Playback (DESIGN.md §3): numpy + sounddevice only, sounddevice imported lazily; never imports Qt."""

from demixer.audio.mix import mix_sources
from demixer.audio.player import PlaybackUnavailable, Player, playback_status

__all__ = ["PlaybackUnavailable", "Player", "mix_sources", "playback_status"]
