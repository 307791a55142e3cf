"""The analysis of a recording (DESIGN.md §2.1): the magnitude spectrogram V the decompositions fit,
with the grid it was made on. Lives in core because the document (model) holds one and the project
file (io) remakes one on load; numpy + scipy only."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from demixer.core.audio import Audio, analysis_signal
from demixer.core.stft import STFTParams, bin_freqs, frame_times, log_compress, spectrogram

__all__ = ["Analysis", "analyse"]


@dataclass(eq=False)
class Analysis:
    """The analysis STFT of a piece: V (K × N) from the mono downmix at ``params.sr``."""

    params: STFTParams
    V: np.ndarray
    duration: float
    #: the mono analysis-rate signal V was made from (the staged fit's scout analyses it on a finer grid)
    signal: np.ndarray | None = field(default=None, repr=False)
    compress: float | None = None  # γ when V is log(1 + γ|X|)

    @property
    def n_bins(self) -> int:
        return self.V.shape[0]

    @property
    def n_frames(self) -> int:
        return self.V.shape[1]

    @property
    def times(self) -> np.ndarray:
        return frame_times(self.n_frames, self.params.sr, self.params.hop)

    @property
    def freqs(self) -> np.ndarray:
        return bin_freqs(self.params.n_fft, self.params.sr)


def analyse(audio: Audio, params: STFTParams | None = None, compress: float | None = None,
            signal: np.ndarray | None = None) -> Analysis:
    """Magnitude spectrogram of the mono downmix, resampled to the analysis rate. ``signal``: that
    downmix (``analysis_signal(audio, params.sr)``) when the caller has made it already (the
    synchronisation analyses the same signal): it is not made twice."""
    params = params or STFTParams()
    x = analysis_signal(audio, params.sr) if signal is None else np.asarray(signal, dtype=np.float32)
    if x.size < 2:
        raise ValueError("audio is too short to analyse (fewer than 2 samples at the analysis rate)")
    V = spectrogram(x, params.n_fft, params.hop, params.window)  # in blocks: no whole complex STFT
    if compress:
        V = log_compress(V, compress)
    return Analysis(params=params, V=V, duration=audio.duration, signal=x, compress=compress or None)
