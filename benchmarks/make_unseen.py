"""Render an UNSEEN validation set for bench_quality.py: pieces, instruments, SoundFonts and timing that
are not in /work/shared/data, so that defaults are not tuned to the dev set.

Runs in a separate environment (music21 and mido are *not* Demixer dependencies):

    apt-get install -y fluidsynth timgm6mb-soundfont musescore-general-soundfont-small
    python3 -m venv /work/venv-material && /work/venv-material/bin/pip install music21==10.5.1 mido soundfile scipy
    /work/venv-material/bin/python benchmarks/make_unseen.py --out /work/unseen
    .venv/bin/python benchmarks/bench_quality.py --data /work/unseen --jobs 1

Protocol as the dev set's (shared/data/README.md): scores from the music21 corpus, every note group rendered
on its own with FluidSynth (reverb send 40, no chorus), 44.1 kHz → 22050 Hz mono, the mixture is exactly
the sum of the 16-bit stems; chorales at equal stem RMS, piano hands at their own levels. Different from
dev: other chorales and piano pieces (Bach's WTC prelude, a Chopin mazurka, a Clara Schumann polonaise),
other instruments (flute, oboe, viola, cello, brass, saxes, …), two SoundFonts other than FluidR3
(TimGM6mb and MuseScore General), a slowly drifting tempo, per-note timing and velocity variation, and
24 s excerpts. ``score.csv`` holds the notes as rendered (aligned, like dev's), ``score_jitter100ms.csv``
every onset/offset moved independently by up to ±100 ms.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SR = 22050
RENDER_SR = 44100
SF_TIM = "/usr/share/sounds/sf2/TimGM6mb.sf2"
SF_MS = "/usr/share/sounds/sf3/MuseScore_General.sf3"
SEED = 20261203

# id, corpus, soundfont, qpm, groups [(name, part, program, velocity)]
PIECES = [
    ("chorale_bwv66_6", "bach/bwv66.6", SF_TIM, 80,
     [("soprano", 0, 73, 84), ("alto", 1, 68, 84), ("tenor", 2, 41, 84), ("bass", 3, 42, 84)]),
    ("chorale_bwv26_6", "bach/bwv26.6", SF_MS, 66,
     [("soprano", 0, 56, 84), ("alto", 1, 65, 84), ("tenor", 2, 60, 84), ("bass", 3, 58, 84)]),
    ("chorale_bwv253", "bach/bwv253", SF_MS, 76,
     [("soprano", 0, 64, 84), ("alto", 1, 69, 84), ("tenor", 2, 57, 84), ("bass", 3, 43, 84)]),
    ("piano_bach_bwv846", "bach/bwv846", SF_MS, 66, [("rh", 0, 0, 78), ("lh", 1, 0, 68)]),
    ("piano_chopin_mazurka06_2", "chopin/mazurka06-2", SF_TIM, 126, [("rh", 0, 0, 80), ("lh", 1, 0, 66)]),
    ("piano_clara_polonaise_op1n1", "schumann_clara/polonaise_op1n1", SF_MS, 96,
     [("rh", 0, 0, 82), ("lh", 1, 0, 70)]),
]


def part_notes(part, rng, tempo_fn, dur_s, velocity, vel_spread):
    """(onset_s, offset_s, pitch, velocity) of a music21 part, ties merged, chords expanded."""
    out = []
    for el in part.stripTies().flatten().notes:
        ql = float(el.duration.quarterLength)
        if ql <= 0:  # grace notes
            continue
        q0 = float(el.getOffsetInHierarchy(part))
        on = tempo_fn(q0) + float(np.clip(rng.normal(0, 0.008), -0.02, 0.02))
        off = tempo_fn(q0 + ql) - 0.01
        if on >= dur_s:
            continue
        on = max(on, 0.0)
        off = min(max(off, on + 0.05), dur_s)
        pitches = el.pitches if el.isChord else [el.pitch]
        v = int(np.clip(round(velocity + rng.normal(0, vel_spread)), 30, 120))
        for p in pitches:
            out.append((on, off, int(p.midi), v))
    out.sort()
    # one key cannot sound twice: cut a note at the next onset of the same pitch
    last: dict[int, int] = {}
    for i, (on, _off, p, _v) in enumerate(out):
        j = last.get(p)
        if j is not None and out[j][1] > on - 0.005:
            a = out[j]
            out[j] = (a[0], max(a[0] + 0.03, on - 0.005), a[2], a[3])
        last[p] = i
    return out


def make_tempo(qpm, rng):
    """seconds(quarter) for a tempo that drifts slowly (±4 %) around qpm."""
    phase = rng.uniform(0, 2 * math.pi)
    qs = np.arange(0, 400, 0.01)
    rate = qpm * (1 + 0.04 * np.sin(2 * math.pi * qs / 16 + phase))
    secs = np.concatenate([[0.0], np.cumsum(0.01 * 60.0 / rate[:-1])])
    return lambda q: float(np.interp(q, qs, secs))


def write_midi(path: Path, notes, program: int):
    import mido

    tpb, tempo = 480, 500000  # 1 s = 960 ticks
    mid = mido.MidiFile(ticks_per_beat=tpb)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    tr.append(mido.Message("program_change", program=program, time=0))
    tr.append(mido.Message("control_change", control=91, value=40, time=0))
    tr.append(mido.Message("control_change", control=93, value=0, time=0))
    ev = []
    for on, off, p, v in notes:
        ev.append((round(on * 960), 1, p, v))
        ev.append((round(off * 960), 0, p, 0))
    ev.sort()
    t = 0
    for tick, kind, p, v in ev:
        msg = "note_on" if kind else "note_off"
        tr.append(mido.Message(msg, note=p, velocity=v if kind else 0, time=tick - t))
        t = tick
    mid.save(path)


def render(sf: str, mid: Path, wav: Path, n: int) -> np.ndarray:
    import soundfile
    from scipy.signal import resample_poly

    subprocess.run(["fluidsynth", "-ni", "-q", "-R", "1", "-C", "0", "-g", "0.5", "-r", str(RENDER_SR),
                    "-O", "float", "-T", "wav", "-F", str(wav), sf, str(mid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    x, sr = soundfile.read(wav, dtype="float64", always_2d=True)
    assert sr == RENDER_SR
    y = resample_poly(x.mean(axis=1), 1, 2)
    out = np.zeros(n)
    out[: min(n, y.size)] = y[:n]
    return out


def jitter(notes, ms, rng):
    out = []
    for on, off, p, g in notes:
        a = max(0.0, on + rng.uniform(-ms, ms) / 1000)
        b = off + rng.uniform(-ms, ms) / 1000
        out.append((a, max(b, a + 0.05), p, g))
    return out


def write_csv(path: Path, notes, with_velocity=False):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["onset_s", "offset_s", "pitch", "group"] + (["velocity"] if with_velocity else []))
        for n in sorted(notes, key=lambda n: (n[0], n[2])):
            w.writerow([f"{n[0]:.6f}", f"{n[1]:.6f}", n[2], n[3]] + ([n[4]] if with_velocity else []))


def make_piece(out: Path, spec, dur_s: float, tail_s: float, seed: int):
    import soundfile
    from music21 import corpus

    pid, name, sf, qpm, groups = spec
    rng = np.random.default_rng(seed)
    score = corpus.parse(name)
    tempo = make_tempo(qpm, rng)
    piano = all(g[2] <= 7 for g in groups)
    n = int(round((dur_s + tail_s) * SR))
    stems, all_notes, meta_groups = {}, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for gname, part, program, vel in groups:
            notes = part_notes(score.parts[part], rng, tempo, dur_s, vel, 8.0 if piano else 4.0)
            mid = Path(tmp) / f"{gname}.mid"
            write_midi(mid, notes, program)
            stems[gname] = render(sf, mid, Path(tmp) / f"{gname}.wav", n)
            all_notes += [(on, off, p, gname, v) for on, off, p, v in notes]
            meta_groups.append({"name": gname, "part": part, "program": program, "velocity": vel,
                                "n_notes": len(notes), "pitch_min": min(x[2] for x in notes),
                                "pitch_max": max(x[2] for x in notes)})
    if not piano:  # equal stem RMS, as dev's chorales
        target = np.mean([np.sqrt(np.mean(s**2)) for s in stems.values()])
        stems = {g: s * target / max(np.sqrt(np.mean(s**2)), 1e-12) for g, s in stems.items()}
    peak = np.max(np.abs(sum(stems.values())))
    scale = 10 ** (-3 / 20) / peak
    ints = {g: np.round(s * scale * 32767).astype(np.int32) for g, s in stems.items()}
    mix = sum(ints.values())
    assert np.abs(mix).max() < 32767
    d = out / pid
    (d / "stems").mkdir(parents=True, exist_ok=True)
    for g, s in ints.items():
        soundfile.write(d / "stems" / f"{g}.wav", s.astype(np.int16), SR, subtype="PCM_16")
        meta_groups[[m["name"] for m in meta_groups].index(g)]["rms_dbfs"] = round(
            20 * math.log10(np.sqrt(np.mean((s / 32768.0) ** 2)) + 1e-12), 3)
    soundfile.write(d / "mixture.wav", mix.astype(np.int16), SR, subtype="PCM_16")
    write_csv(d / "score_exact.csv", all_notes, with_velocity=True)
    plain = [(a, b, p, g) for a, b, p, g, _ in all_notes]
    write_csv(d / "score.csv", plain)
    write_csv(d / "score_jitter100ms.csv", jitter(plain, 100, np.random.default_rng(seed + 1)))
    sf_bytes = Path(sf).read_bytes()
    meta = {"id": pid, "generator": {"script": "benchmarks/make_unseen.py", "seed": seed, "set": "unseen"},
            "source": {"music21_corpus": name, "qpm": qpm, "tempo_drift": 0.04, "onset_sd_s": 0.008},
            "audio": {"sr": SR, "duration_s": dur_s + tail_s, "excerpt_s": dur_s, "tail_s": tail_s,
                      "mixture_is_sum_of_stems": True, "subtype": "PCM_16"},
            "render": {"synth": "fluidsynth", "render_sr": RENDER_SR, "gain": 0.5, "reverb_send_cc91": 40,
                       "chorus": False, "level": "none" if piano else "equal_rms",
                       "soundfont": {"name": Path(sf).name, "sha256": hashlib.sha256(sf_bytes).hexdigest()}},
            "groups": meta_groups}
    (d / "meta.json").write_text(json.dumps(meta, indent=1))
    return pid


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/work/unseen"))
    ap.add_argument("--seconds", type=float, default=24.0)
    ap.add_argument("--pieces", default="", help="comma-separated ids (default: all)")
    args = ap.parse_args()
    want = {p.strip() for p in args.pieces.split(",") if p.strip()}
    args.out.mkdir(parents=True, exist_ok=True)
    done = []
    for i, spec in enumerate(PIECES):
        if want and spec[0] not in want:
            continue
        done.append(make_piece(args.out, spec, args.seconds, 1.0, SEED + 10 * i))
        print("made", done[-1])
    (args.out / "set.json").write_text(json.dumps({"set": "unseen", "seed": SEED, "pieces": [p[0] for p in PIECES]},
                                                  indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
