"""A draft score from a recording (DESIGN.md §2.7): audio → notes with group names, headless.

    draft_score(audio, voices=4)      transcribe, then voices by pitch rank with continuity
    draft_score(audio, hands=True)    transcribe, then rh / lh by the hand assignment
    draft_score(audio)                transcribe, then choose: hands when the notes decay like struck
                                      strings (a keyboard), else as many voices as usually sound

The result's ``notes`` are ordinary :class:`~demixer.core.notes.Note` objects with group names — the
same list a score reader returns — so the separation, the window's score overlay and a note editor use
them as they use a loaded score. No Qt, no printing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from demixer.core.notes import Note, pitch_to_hz
from demixer.core.refine import decay_stats, is_decaying
from demixer.core.stft import STFTParams, spectrogram
from demixer.core.transcribe import (
    TranscribeParams,
    drop_subharmonics,
    fill_silent_voices,
    onset_strength,
    onset_times,
    pitch_activations,
    track_notes,
)
from demixer.core.voices import HandParams, VoiceParams, assign_hands, assign_voices, voice_names
from demixer.io.audio import Audio, analysis_signal

__all__ = [
    "DRAFT_VOICES", "DraftSettings", "Draft", "draft_score", "draft_from_signal", "MAX_AUTO_VOICES",
    "voice_envelopes", "timbre_matches", "timbre_costs", "timbre_candidates", "revoice", "separation_notes",
]

MAX_AUTO_VOICES = 6
#: (dB per second, fraction of falling steps): notes decaying faster, or falling more often, are a keyboard's
KEYBOARD_DECAY = (-25.0, 0.8)


#: voice-leading costs for drafted notes: a drafted offset runs late (the 186 ms window's half and the
#: room's reverberation), so a voice counts as still holding its note only when the note ends more than
#: 0.2 s after a new onset (``overlap``; 0.08 s for a score), and holding costs less (``busy`` 6, not 14)
#: — else the next note of a legato line goes to another voice. Measured (issue 16's note, second
#: pass): separation +0.56 dB on the dev chorales and +0.48 dB on unseen chorales, every piece up.
DRAFT_VOICES = VoiceParams(overlap=0.2, busy=6.0)


@dataclass(frozen=True)
class DraftSettings:
    """How a draft is made. The analysis grid is finer in time than the separation's (hop 256 at
    22050 Hz: 11.6 ms) for onsets, with a 4096-point window for low pitches (the separation now uses 5120).
    ``voices``: :data:`DRAFT_VOICES` (tolerant of late drafted offsets).
    ``hands_polyphony``: pitches kept per frame for a keyboard (measured on the dev set and synthetic
    chords: more admits more harmonics than chord notes). ``hands_hysteresis_db``: a keyboard's note,
    once on, stays on until its activation falls this far below the onset level (the transcription's
    own ``hysteresis_db`` is 6): a struck note decays, and with 6 dB its drafted offset came long
    before the sound ended — the separation then gave its tail to the other hand. The note F-measure
    (offsets ignored) hardly moves (dev piano 0.78 → 0.77: a longer span now and then swallows a
    re-attack); the separation gains (issue 16's note: dev piano +0.13 dB, unseen piano +0.36 dB;
    4 of 5 pieces up, none down by more than 0.04 dB).
    ``hands_restrike``: a keyboard's notes are tracked with ``TranscribeParams.restrike`` (a pitch's
    next note starts after its previous one ends). Measured (issue 16's note, s16c): piano note F dev
    0.77 → 0.82, unseen 0.72 → 0.75, other 0.83 → 0.87; SDR dev ±0, unseen +0.16, other +0.03 dB.
    ``fill_ratio`` / ``fill_min``: :func:`~demixer.core.transcribe.fill_silent_voices` for three or
    more voices (None: none) — the draft's ``support`` notes, which the separation uses with the notes
    (a voice silent between others has most often a missed note there; without one its energy goes
    to another voice). Measured (issue 16's note, s16): SDR dev chorales +0.56, unseen chorales
    +0.69, other chorale material +1.1 dB; 8 of 9 pieces up, one −0.2.
    ``ghost_octave_db``: voices only (None: off) — a note dropped as a ghost below a real note
    (:func:`~demixer.core.transcribe.drop_subharmonics`) becomes its octave when that octave's band
    holds at least this many dB of the median fundamental of the notes sounding with it: a reed's
    (odd-harmonic) note is explained by the template an octave down, its own pitch then pruned as that
    ghost's harmonic, and dropping the ghost left the voice silent (the voices below moved up into its
    place). Measured (issue 16's note, s16f): SDR dev chorales 3.05 → 4.29, unseen 0.09 → 0.44, other
    chorale material 6.91 → 7.86 dB at −12 (−20: dev and other a little higher; −6: unseen flat).
    ``block_seconds``: a longer recording's pitch activations are fitted in blocks of about this length
    (:func:`~demixer.core.transcribe.pitch_activations`), so a long piece's draft needs memory for its
    spectrogram and one block's NMF, not the NMF of the whole (`demixer transcribe`, 10 minutes: peak
    3.9 GB → 0.83 GB)."""

    stft: STFTParams = field(default_factory=lambda: STFTParams(n_fft=4096, hop=256))
    transcribe: TranscribeParams = field(default_factory=TranscribeParams)
    voices: VoiceParams = field(default_factory=lambda: DRAFT_VOICES)
    hands: HandParams = field(default_factory=HandParams)
    hands_polyphony: int = 4
    hands_hysteresis_db: float = 10.0
    hands_restrike: bool = True
    fill_ratio: float | None = 0.1
    fill_min: float = 0.15
    ghost_octave_db: float | None = -12.0
    block_seconds: float = 120.0


@dataclass
class Draft:
    """A drafted score: ``notes`` (grouped), ``mode`` ("voices" or "hands"), ``n_voices`` (voices mode),
    ``chosen`` (True when the mode was chosen from the audio), and the activations it came from.
    ``support``: guessed notes for voices the draft leaves silent between others — not part of the
    score (not written, not edited), only given to the separation (:meth:`for_separation`); so are
    ``second``: notes of the draft given to a second voice by timbre (:func:`revoice`)."""

    notes: list[Note]
    mode: str
    n_voices: int | None
    chosen: bool
    pitches: np.ndarray = field(repr=False)
    H: np.ndarray = field(repr=False)
    times: np.ndarray = field(repr=False)
    support: list[Note] = field(default_factory=list)
    second: list[Note] = field(default_factory=list)

    def for_separation(self) -> list[Note]:
        """The notes, support notes and second candidates, in time order: what ``separate`` without a
        score uses."""
        return sorted(self.notes + self.support + self.second, key=lambda n: (n.onset, -n.pitch))

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(n.group for n in self.notes))

    def summary(self) -> str:
        """One line: what was drafted."""
        if self.mode == "hands":
            how = "two hands (rh, lh)"
        else:
            how = f"{self.n_voices} voice{'s' if self.n_voices != 1 else ''} ({', '.join(self.groups_in_order())})"
        why = ", chosen from the audio" if self.chosen else ""
        n = len(self.notes)
        return f"drafted {n} note{'s' if n != 1 else ''} as {how}{why}"

    def groups_in_order(self) -> list[str]:
        from demixer.core.voices import voice_names

        return voice_names(self.n_voices) if self.n_voices else self.groups


def _polyphony(notes: list[Note], times: np.ndarray) -> int:
    """The number of notes that usually sound together: the median over frames with sound."""
    if not notes:
        return 1
    count = np.zeros(times.size, dtype=np.int64)
    for n in notes:
        count[(times >= n.onset) & (times < n.offset)] += 1
    busy = count[count > 0]
    return max(1, int(round(float(np.median(busy))))) if busy.size else 1


def _decaying(notes: list[Note], H: np.ndarray, pitches: np.ndarray, times: np.ndarray) -> bool:
    """Whether the notes decay like struck strings (:func:`demixer.core.refine.is_decaying` with the
    stricter ``KEYBOARD_DECAY``: a draft's notes run on into the reverberation, so held notes of winds
    and voices fall by 10–20 dB/s in about 2/3 of the steps; piano notes by 40–80 dB/s in 90 %)."""
    row_of = {int(p): r for r, p in enumerate(pitches.tolist())}
    rows: list[list[int]] = [[] for _ in range(pitches.size)]
    for i, n in enumerate(notes):
        rows[row_of[n.pitch]].append(i)
    stats = decay_stats(notes, H, rows, times)
    return bool(is_decaying(stats.get(""), *KEYBOARD_DECAY))


def draft_from_signal(
    x: np.ndarray,
    sr: float,
    *,
    voices: int | None = None,
    hands: bool = False,
    settings: DraftSettings | None = None,
) -> Draft:
    """:func:`draft_score` for a mono signal ``x`` already at ``settings.stft.sr``."""
    settings = settings or DraftSettings()
    if voices is not None and hands:
        raise ValueError("choose voices or hands, not both")
    if voices is not None and (isinstance(voices, bool) or not isinstance(voices, int) or voices < 1):
        raise ValueError(f"the number of voices must be a whole number >= 1, got {voices!r}")
    p = settings.stft
    if float(sr) != float(p.sr):
        raise ValueError(f"the signal must be at the analysis rate {p.sr} Hz, got {sr}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1 or x.size < 2:
        raise ValueError("the signal must be mono with at least 2 samples")
    V = spectrogram(x, p.n_fft, p.hop, p.window)  # blocked: a long recording's complex STFT is never whole
    tp = settings.transcribe
    pitches, _W, H = pitch_activations(V, p.sr, p.n_fft, tp, block=max(1, round(settings.block_seconds * p.sr / p.hop)))
    times = np.arange(H.shape[1]) * (p.hop / p.sr)
    onsets = onset_times(onset_strength(V), times, tp.onset_threshold) + tp.flux_delay

    def track(max_poly: int | None, octave_db: float | None = None, **changes) -> list[Note]:
        notes = track_notes(H, pitches, times, dataclasses.replace(tp, max_polyphony=max_poly, **changes), onsets)
        if tp.ghost_db is None:
            return notes
        return drop_subharmonics(notes, V, p.sr, p.n_fft, p.hop, tp.ghost_db, octave_db=octave_db,
                                 octave_max=int(pitches.max()))

    chosen = voices is None and not hands
    if chosen:
        probe = track(MAX_AUTO_VOICES)
        if probe and _decaying(probe, H, pitches, times):
            hands = True
        else:
            voices = min(MAX_AUTO_VOICES, _polyphony(probe, times))
    if hands:
        notes = assign_hands(track(settings.hands_polyphony, hysteresis_db=settings.hands_hysteresis_db,
                                   restrike=settings.hands_restrike),
                             settings.hands)
        return Draft(notes, "hands", None, chosen, pitches, H, times)
    assert voices is not None
    notes = assign_voices(track(voices, settings.ghost_octave_db), voices, settings.voices)
    support = []
    if settings.fill_ratio is not None:
        support = fill_silent_voices(notes, voice_names(voices), H, pitches, times, settings.fill_ratio,
                                     settings.fill_min)
    return Draft(notes, "voices", voices, chosen, pitches, H, times, support)


def draft_score(
    audio: Audio, *, voices: int | None = None, hands: bool = False, settings: DraftSettings | None = None
) -> Draft:
    """Draft a score from ``audio`` (mono downmix at the analysis rate): notes, then voices or hands.

    ``voices=N``: N voices from the top (soprano, alto, tenor, bass for 4; else voice1 … voiceN);
    ``hands=True``: ``rh`` and ``lh``; neither: chosen from the audio (:class:`Draft` says which).
    Raises ValueError for bad arguments or audio too short to analyse.
    """
    settings = settings or DraftSettings()
    x = analysis_signal(audio, settings.stft.sr)
    draft = draft_from_signal(x, settings.stft.sr, voices=voices, hands=hands, settings=settings)
    end = float(audio.duration)  # the last frame's half reaches past the end of the audio
    draft.notes = [n if n.offset <= end else dataclasses.replace(n, offset=max(n.onset, end)) for n in draft.notes]
    draft.support = _until(draft.support, end)
    return draft


def _until(notes: list[Note], end: float) -> list[Note]:
    """Guessed notes that start before ``end``, cut there."""
    return [n if n.offset <= end else dataclasses.replace(n, offset=end) for n in notes if n.onset < end]


#: harmonics compared by :func:`timbre_candidates`
TIMBRE_HARMONICS = 10
#: a second voice when its timbre matches better by more than this (issue 16's note, s16d: 0.1 / 0.15 /
#: 0.3 measured; 0.1 and 0.15 raise every set)
TIMBRE_MARGIN = 0.1


def _harmonic_profile(col: np.ndarray, pitch: int, sr: float, n_fft: int) -> np.ndarray:
    """The amplitudes of ``col`` (K,) at the first harmonics of MIDI ``pitch`` (peak of ±1 bin; 0 above K)."""
    f0 = pitch_to_hz(pitch)
    k = np.round(f0 * np.arange(1, TIMBRE_HARMONICS + 1) * n_fft / sr).astype(int)
    k = k[(k >= 1) & (k < col.shape[0] - 1)]
    out = np.zeros(TIMBRE_HARMONICS)
    out[: len(k)] = np.maximum(np.maximum(col[k], col[k - 1]), col[k + 1])
    return out


def _profile_match(obs: np.ndarray, tmpl: np.ndarray) -> float:
    """Correlation of the log amplitudes over the harmonics both have (−1 with fewer than three)."""
    m = (obs > 0) & (tmpl > 0)
    if m.sum() < 3:
        return -1.0
    a = np.log(obs[m])
    b = np.log(tmpl[m])
    a -= a.mean()
    b -= b.mean()
    d = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / d if d > 0 else -1.0


def voice_envelopes(names: list[str], W: np.ndarray, H: np.ndarray, components, sr: float,
                    n_fft: int) -> dict[str, np.ndarray]:
    """Each voice's *envelope*: the energy-weighted (H row sum × W column sum) mean of its fitted pitch
    templates (columns of ``W``), each sampled at its first harmonics and L1-normalised — a timbre in
    harmonic-number space, independent of pitch. Voices with no fitted pitch template are left out."""
    env: dict[str, np.ndarray] = {}
    for g in names:
        acc = np.zeros(TIMBRE_HARMONICS)
        total = 0.0
        for r, c in enumerate(components):
            if c.source != g or c.kind != "pitch" or c.pitch is None:
                continue
            prof = _harmonic_profile(W[:, r], c.pitch, sr, n_fft)
            e = float(H[r].sum() * W[:, r].sum())
            if prof.sum() > 0 and e > 0:
                acc += e * prof / prof.sum()
                total += e
        if total > 0:
            env[g] = acc / total
    return env


def timbre_matches(notes: list[Note], names: list[str], V: np.ndarray, sr: float, n_fft: int, hop: int,
                   env: dict[str, np.ndarray]) -> np.ndarray:
    """(notes × voices): how well each voice's envelope matches each note's observed profile — the
    median over the note's span of V at its harmonics — as the correlation of log amplitudes (−1 with
    fewer than three harmonics to compare; NaN where a voice has no envelope or the note lies past
    the end of V)."""
    out = np.full((len(notes), len(names)), np.nan)
    n_frames = V.shape[1]
    for i, n in enumerate(notes):
        f0 = int(n.onset * sr / hop)
        f1 = min(n_frames, max(f0 + 1, int(n.offset * sr / hop)))
        if f0 >= n_frames:
            continue
        obs = np.median(np.stack([_harmonic_profile(V[:, f], n.pitch, sr, n_fft) for f in range(f0, f1)]), 0)
        for v, g in enumerate(names):
            if g in env:
                out[i, v] = _profile_match(obs, env[g])
    return out


#: the weight of :func:`timbre_costs` in :func:`~demixer.core.voices.assign_voices`'s units (semitones
#: of leap per unit of correlation): a voice matching a note's timbre 0.1 worse than the best costs like
#: a leap of 4 semitones. Measured (issue 16's note, fifth pass): weights 5 / 10 / 20 / 40 / 80 all raise
#: the chorale SDR on dev, unseen and the synthetic/mixed material; 40 kept (the middle of that range).
TIMBRE_WEIGHT = 40.0


def timbre_costs(matches: np.ndarray, weight: float = TIMBRE_WEIGHT) -> np.ndarray:
    """Extra voice costs for :func:`~demixer.core.voices.assign_voices`: per note, ``weight`` × how far
    each voice's match (:func:`timbre_matches`) falls below the note's best."""
    m = np.asarray(matches, dtype=np.float64)
    if not m.size:
        return m
    known = ~np.isnan(m).all(axis=1, keepdims=True)  # a note past the end: no evidence, no cost
    m = np.where(np.isnan(m), -1.0, m)
    return np.where(known, weight * (m.max(axis=1, keepdims=True) - m), 0.0)


def _second_voices(notes: list[Note], names: list[str], matches: np.ndarray, margin: float) -> list[Note]:
    """The notes again in the neighbouring voice whose match beats the note's own voice's by > margin."""
    extra = []
    for n, row in zip(notes, matches, strict=True):
        if n.group not in names:
            continue
        v = names.index(n.group)
        if np.isnan(row[v]):
            continue
        best, best_score = None, row[v] + margin
        for u in (v - 1, v + 1):
            if 0 <= u < len(names) and row[u] > best_score:  # NaN (no envelope) is never greater
                best, best_score = names[u], row[u]
        if best is not None:
            extra.append(dataclasses.replace(n, group=best))
    return extra


def timbre_candidates(notes: list[Note], names: list[str], V: np.ndarray, sr: float, n_fft: int, hop: int,
                      W: np.ndarray, H: np.ndarray, components, margin: float = TIMBRE_MARGIN) -> list[Note]:
    """Second voices for drafted notes, chosen by the voices' fitted timbres (DESIGN.md §2.7).

    Each voice's envelope (:func:`voice_envelopes`) against each note's observed profile
    (:func:`timbre_matches`): when a neighbouring voice's envelope matches better than the note's own
    voice's by more than ``margin``, the note is returned in that voice too — the second separation
    gets both candidates and decides by timbre."""
    env = voice_envelopes(names, W, H, components, sr, n_fft)
    return _second_voices(notes, names, timbre_matches(notes, names, V, sr, n_fft, hop, env), margin)


def revoice(draft: Draft, audio: Audio, settings=None, signal=None,
            draft_settings: DraftSettings | None = None) -> Draft:
    """A voices draft made again with the voices' timbres (DESIGN.md §2.7): after a first separation
    with the draft (its notes and support notes), the voices are chosen again with the fitted timbres
    as extra costs (:func:`timbre_costs`), the support notes follow, and each note whose timbre matches
    a neighbouring voice better by more than ``TIMBRE_MARGIN`` gets that voice as a second candidate
    (``Draft.second``; :func:`timbre_candidates`' rule). Hands, a single voice, or no notes: the draft
    as it is. ``settings``: the separation's; ``signal``: the analysis-rate downmix when the caller
    has made it (``analysis_signal``); ``draft_settings``: those the draft was made with."""
    if draft.mode != "voices" or not draft.n_voices or draft.n_voices < 2 or not draft.notes:
        return draft
    from demixer.engine.separation import SeparationSettings, analyse, fit, initialise

    settings = settings or SeparationSettings()
    ds = draft_settings or DraftSettings()
    names = voice_names(draft.n_voices)
    an = analyse(audio, settings.stft, settings.compress, signal)  # the first pass, as separate_audio does
    init = initialise(draft.for_separation(), an, settings.score)
    final = fit(an, init, settings)
    p = an.params
    env = voice_envelopes(names, final.W, final.H, init.components, p.sr, p.n_fft)
    matches = timbre_matches(draft.notes, names, an.V, p.sr, p.n_fft, p.hop, env)
    voiced = assign_voices(draft.notes, draft.n_voices, ds.voices, timbre_costs(matches).tolist())
    support = draft.support
    if ds.fill_ratio is not None:
        support = _until(fill_silent_voices(voiced, names, draft.H, draft.pitches, draft.times, ds.fill_ratio,
                                            ds.fill_min), float(audio.duration))
    return dataclasses.replace(draft, notes=voiced, support=support,
                               second=_second_voices(voiced, names, matches, TIMBRE_MARGIN))


def separation_notes(draft: Draft, audio: Audio, settings=None, signal=None) -> list[Note]:
    """What ``separate`` without a score separates: :func:`revoice`'s draft for two or more voices, the
    draft itself otherwise — its notes, support notes and second candidates (``for_separation``)."""
    return revoice(draft, audio, settings, signal).for_separation()
