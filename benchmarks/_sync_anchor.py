"""The synchronisation anchor for bench_align.py: synctoolbox 1.4.2 (MrMsDTW on chroma + DLNCO onset
features, the settings of its audio–score tutorial). Runs in its OWN virtualenv (never a Demixer
dependency), as a subprocess:

    /work/venv-sync-anchor/bin/python benchmarks/_sync_anchor.py MIX.wav SCORE.csv OUT.csv

SCORE.csv: ``onset_s,offset_s,pitch,group`` (the nominal score); OUT.csv: the same notes in the
recording's time. Prints the CPU seconds of the synchronisation itself (features + MrMsDTW).
"""

from __future__ import annotations

import csv
import sys
import time

import numpy as np


def main(mix: str, score: str, out: str) -> int:
    import pandas as pd
    import soundfile as sf
    from librosa import resample
    from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw
    from synctoolbox.dtw.utils import compute_optimal_chroma_shift, make_path_strictly_monotonic, shift_chroma_vectors
    from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma, quantized_chroma_to_CENS
    from synctoolbox.feature.csv_tools import df_to_pitch_features, df_to_pitch_onset_features
    from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO
    from synctoolbox.feature.pitch import audio_to_pitch_features
    from synctoolbox.feature.pitch_onset import audio_to_pitch_onset_features
    from synctoolbox.feature.utils import estimate_tuning

    x, sr = sf.read(mix, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    Fs = 22050
    if sr != Fs:
        x = resample(x, orig_sr=sr, target_sr=Fs)
    rows = list(csv.DictReader(open(score)))
    df = pd.DataFrame({
        "start": [float(r["onset_s"]) for r in rows],
        "duration": [float(r["offset_s"]) - float(r["onset_s"]) for r in rows],
        "pitch": [int(r["pitch"]) for r in rows],
        "velocity": [1.0] * len(rows),
        "instrument": [r.get("group", "") for r in rows],
    })
    feature_rate = 50
    step_weights = np.array([1.5, 1.5, 2.0])
    threshold_rec = 10 ** 6
    c0 = time.process_time()
    tuning = estimate_tuning(x, Fs)
    f_pitch = audio_to_pitch_features(f_audio=x, Fs=Fs, tuning_offset=tuning, feature_rate=feature_rate)
    f_chroma = pitch_to_chroma(f_pitch=f_pitch)
    f_chroma_q = quantize_chroma(f_chroma=f_chroma)
    f_onset = audio_to_pitch_onset_features(f_audio=x, Fs=Fs, tuning_offset=tuning)
    f_dlnco = pitch_onset_features_to_DLNCO(f_peaks=f_onset, feature_rate=feature_rate,
                                            feature_sequence_length=f_chroma_q.shape[1])
    s_pitch = df_to_pitch_features(df, feature_rate=feature_rate)
    s_chroma = pitch_to_chroma(f_pitch=s_pitch)
    s_chroma_q = quantize_chroma(f_chroma=s_chroma)
    s_onset = df_to_pitch_onset_features(df)
    s_dlnco = pitch_onset_features_to_DLNCO(f_peaks=s_onset, feature_rate=feature_rate,
                                            feature_sequence_length=s_chroma_q.shape[1])
    shift = compute_optimal_chroma_shift(quantized_chroma_to_CENS(f_chroma_q, 201, 50, feature_rate)[0],
                                         quantized_chroma_to_CENS(s_chroma_q, 201, 50, feature_rate)[0])
    s_chroma_q = shift_chroma_vectors(s_chroma_q, shift)
    s_dlnco = shift_chroma_vectors(s_dlnco, shift)
    wp = sync_via_mrmsdtw(f_chroma1=s_chroma_q, f_onset1=s_dlnco, f_chroma2=f_chroma_q, f_onset2=f_dlnco,
                          input_feature_rate=feature_rate, step_weights=step_weights,
                          threshold_rec=threshold_rec, verbose=False)
    wp = make_path_strictly_monotonic(wp)
    cpu = time.process_time() - c0
    s_t = wp[0] / feature_rate
    a_t = wp[1] / feature_rate
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["onset_s", "offset_s", "pitch", "group"])
        for r in rows:
            on = float(np.interp(float(r["onset_s"]), s_t, a_t))
            off = float(np.interp(float(r["offset_s"]), s_t, a_t))
            w.writerow([on, max(on, off), r["pitch"], r.get("group", "")])
    print(f"{cpu:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:4]))
