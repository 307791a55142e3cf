"""Synthetic recordings from note lists: harmonic tones with an attack and a decay (test material that
is not in shared/). Used by the tests and by benchmarks/bench_noscore.py."""

from __future__ import annotations

import numpy as np

from demixer.core.notes import Note


def tone(pitch: int, dur: float, sr: int, *, decay_db_s: float, n_harm: int = 12, tilt: float = 1.0,
         inharm: float = 0.0, attack: float = 0.01, release: float = 0.05, odd: bool = False, phase=None) -> np.ndarray:
    """One note: harmonics of ``pitch`` with amplitudes ``1 / m ** tilt`` (only odd ones when ``odd``;
    ``inharm`` stretches partial m by √(1 + inharm·m²), as a piano string), an ``attack`` s linear rise,
    an exponential decay of ``decay_db_s`` dB/s (negative; 0 = held) and a ``release`` s fade."""
    n = int(round((dur + release) * sr))
    t = np.arange(n) / sr
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    rng = np.random.default_rng(pitch if phase is None else phase)
    x = np.zeros(n)
    for m in range(1, n_harm + 1):
        if odd and m % 2 == 0 and m > 1:
            continue
        fm = m * f0 * np.sqrt(1 + inharm * m * m)
        if fm >= sr / 2 * 0.95:
            break
        x += np.sin(2 * np.pi * fm * t + rng.uniform(0, 2 * np.pi)) / m**tilt
    env = 10 ** (decay_db_s * t / 20) * np.minimum(1.0, t / attack)
    env *= np.clip((dur + release - t) / release, 0.0, 1.0)
    return x * env


def render(
    notes: list[Note], sr: int, duration: float, timbres: dict[str, dict], default: dict | None = None
) -> dict[str, np.ndarray]:
    """Per-group signals (1-D float32, ``duration`` s) of ``notes``; ``timbres[group]`` are :func:`tone`
    keyword arguments (``default`` for groups not named)."""
    out: dict[str, np.ndarray] = {}
    n_total = int(round(duration * sr))
    for note in notes:
        kw = dict(timbres.get(note.group, default or {"decay_db_s": 0.0}))
        gain = kw.pop("gain", 1.0)
        y = tone(note.pitch, note.offset - note.onset, sr, **kw) * gain * ((note.velocity or 100) / 127)
        buf = out.setdefault(note.group, np.zeros(n_total))
        i = int(round(note.onset * sr))
        j = min(n_total, i + y.size)
        if j > i:
            buf[i:j] += y[: j - i]
    return {g: (0.1 * b).astype(np.float32) for g, b in out.items()}


def chorale_notes(seed: int, n_chords: int = 16, beat: float = 0.6) -> list[Note]:
    """A four-voice homophonic progression (random, voice-led): soprano, alto, tenor, bass, each a
    note per chord (a held note when the pitch repeats half the time), with a crossing-free spacing."""
    rng = np.random.default_rng(seed)
    centres = {"soprano": 70, "alto": 64, "tenor": 57, "bass": 48}
    cur = dict(centres)
    notes = []
    t = 0.2
    for _ in range(n_chords):
        dur = beat * rng.choice([1, 1, 2])
        prev = None
        for name in ("soprano", "alto", "tenor", "bass"):
            p = cur[name] + int(rng.integers(-2, 3))
            p = int(np.clip(p, centres[name] - 5, centres[name] + 5))
            if prev is not None:
                p = min(p, prev - 3)
            cur[name] = p
            prev = p
            notes.append(Note(round(t, 4), round(t + dur - 0.02, 4), p, name, 100))
        t += dur
    return notes


def piano_notes(seed: int, n_bars: int = 6, beat: float = 0.5) -> list[Note]:
    """A melody above an Alberti bass (lh: low–high–middle–high per beat, one octave above the root,
    reaching G4 — above middle C — while the melody stays just above the figure): rh and lh."""
    rng = np.random.default_rng(seed)
    notes = []
    t = 0.2
    mel = 72
    roots = [48, 41, 43, 48, 45, 50, 43, 48]
    for bar in range(n_bars):
        root = roots[(bar + seed) % len(roots)]
        chord = [root, root + 7, root + 4, root + 7]  # Alberti figure
        for b in range(4):
            for k, p in enumerate(chord):
                s = t + b * beat + k * beat / 4
                notes.append(Note(round(s, 4), round(s + beat / 4 - 0.01, 4), p + 12, "lh", 80))
            mel = int(np.clip(mel + rng.integers(-3, 4), root + 21, 86))  # above the figure's top
            notes.append(Note(round(t + b * beat, 4), round(t + (b + 1) * beat - 0.02, 4), mel, "rh", 110))
        t += 4 * beat
    return notes
