"""The note list that scores are turned into (DESIGN.md §2.3)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Note:
    """One score note: onset and offset in seconds, MIDI pitch, group (source) name, velocity.

    ``program`` is the General MIDI program (0-127) of the note's instrument when the score says it,
    else None; it lets the pipeline decide e.g. whether onset templates suit the instrument.
    """

    onset: float
    offset: float
    pitch: int
    group: str = ""
    velocity: int | None = None
    program: int | None = None

    def __post_init__(self) -> None:
        if not (self.offset >= self.onset >= 0.0):
            raise ValueError(f"note needs 0 <= onset <= offset, got onset {self.onset}, offset {self.offset}")
        if not 0 <= int(self.pitch) <= 127:
            raise ValueError(f"note pitch must be a MIDI number 0..127, got {self.pitch}")


def pitch_name(pitch: int) -> str:
    """MIDI pitch → name with octave, e.g. 60 → 'C4', 61 → 'C#4'."""
    names = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    return f"{names[int(pitch) % 12]}{int(pitch) // 12 - 1}"


def pitch_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((float(pitch) - 69.0) / 12.0)
