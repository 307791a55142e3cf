"""Without a score (issue 16): the draft's note F-measure and the separation it gives, on the dev set
ignoring its scores, next to the with-score separation; then on material that is not in shared/.

    .venv/bin/python benchmarks/bench_noscore.py                  # dev set + other material
    .venv/bin/python benchmarks/bench_noscore.py --pieces chorale_bwv255 --no-other

Per piece: the draft is made as ``demixer separate MIX --voices 4`` (chorales) / ``--hands`` (piano)
makes it (:func:`demixer.engine.draft.draft_score`), then separated exactly as ``separate`` does
(:func:`demixer.engine.separation.separate_audio`); the with-score figure separates with score.csv.
Note F: mir_eval.transcription against score_exact.csv (onset within 50 ms, pitch exact, offsets
ignored). Voice/hand accuracy: the fraction of the draft's matched notes whose group is the true one
(voices: as :func:`~demixer.engine.draft.revoice` chose them again by timbre, what is separated).
CPU: process time on one BLAS thread, draft and separation apart.

Other material (never in shared/): synthetic four-voice progressions and melodies over an Alberti bass
(harmonic tones with attacks and decays, tests/support/synth.py), and dev stems of *different* pieces
mixed together (soprano and alto of one chorale with tenor and bass of another; the right hand of one
piano piece with the left hand of the other). Nothing is tuned per piece: every run uses the defaults.
Whether a piece is a chorale or piano (for --voices 4 / --hands and the category means) comes from its
name, as it would from the user.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # support.synth: the synthetic material the tests use too

DEFAULT_DATA = Path("/work/shared/data/dev")
TARGETS_SDR = (("chorales", 4.0), ("piano", 8.0), ("all", 5.0))
TARGETS_F = (("chorales", 0.6), ("piano", 0.75))
SR = 22050


def note_f(ref, est) -> tuple[float, float, float]:
    import mir_eval

    if not est:
        return 0.0, 0.0, 0.0
    ri = np.array([[n.onset, n.offset] for n in ref])
    rp = np.array([440.0 * 2 ** ((n.pitch - 69) / 12) for n in ref])
    ei = np.array([[n.onset, n.offset] for n in est])
    ep = np.array([440.0 * 2 ** ((n.pitch - 69) / 12) for n in est])
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ri, rp, ei, ep, onset_tolerance=0.05, offset_ratio=None
    )
    return float(p), float(r), float(f)


def group_accuracy(ref, est) -> float:
    """Of the draft's notes that match a true note (onset ≤ 50 ms, same pitch), the share in its group."""
    import mir_eval

    if not est:
        return float("nan")
    ri = np.array([[n.onset, n.offset] for n in ref])
    rp = np.array([440.0 * 2 ** ((n.pitch - 69) / 12) for n in ref])
    ei = np.array([[n.onset, n.offset] for n in est])
    ep = np.array([440.0 * 2 ** ((n.pitch - 69) / 12) for n in est])
    match = mir_eval.transcription.match_notes(ri, rp, ei, ep, onset_tolerance=0.05, offset_ratio=None)
    if not match:
        return float("nan")
    return float(np.mean([ref[i].group == est[j].group for i, j in match]))


def sdr(stems: dict[str, np.ndarray], est: dict[str, np.ndarray]) -> dict[str, float]:
    import mir_eval

    from demixer.io.audio import to_mono

    names = list(stems)
    n = min(min(len(s) for s in stems.values()), min(to_mono(e).size for e in est.values()))
    R = np.stack([np.asarray(stems[k], dtype=np.float64)[:n] for k in names])
    E = np.stack([to_mono(est[k])[:n].astype(np.float64) if k in est else np.zeros(n) for k in names])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s, _, _, _ = mir_eval.separation.bss_eval_sources(R, E, compute_permutation=False)
    return dict(zip(names, (float(v) for v in s), strict=True))


def run_piece(name: str, mix: np.ndarray, stems: dict[str, np.ndarray], truth, score=None) -> dict:
    """Draft → separate; and (when ``score`` is given) separate with it."""
    from threadpoolctl import threadpool_limits

    from demixer.engine.draft import draft_score, revoice
    from demixer.engine.separation import separate_audio
    from demixer.io.audio import Audio

    audio = Audio(mix[None, :].astype(np.float32), SR)
    piano = "piano" in name
    row = {"piece": name, "category": "piano" if piano else "chorales"}
    with threadpool_limits(limits=1, user_api="blas"):
        t0 = time.process_time()
        draft = draft_score(audio, hands=piano, voices=None if piano else 4)
        row["cpu_draft"] = time.process_time() - t0
        t0 = time.process_time()
        draft = revoice(draft, audio)  # what separation_notes does: voices again by timbre (hands: as drafted)
        out, _, _ = separate_audio(audio, draft.for_separation())
        row["cpu_sep"] = time.process_time() - t0
        row["sdr_draft"] = float(np.mean(list(sdr(stems, out).values())))
        if score is not None:
            out_s, _, _ = separate_audio(audio, score)
            row["sdr_score"] = float(np.mean(list(sdr(stems, out_s).values())))
        auto = draft_score(audio)
    row["auto"] = f"{auto.mode}{'' if auto.n_voices is None else ' ' + str(auto.n_voices)}"
    row["n_ref"], row["n_est"] = len(truth), len(draft.notes)
    row["P"], row["R"], row["F"] = note_f(truth, draft.notes)
    row["group_acc"] = group_accuracy(truth, draft.notes)
    return row


def dev_pieces(data: Path, names: list[str] | None):
    from demixer.io.audio import read_audio, to_mono
    from demixer.io.score import read_score

    for d in sorted(p for p in data.iterdir() if p.is_dir()):
        if names and d.name not in names:
            continue
        mix = to_mono(read_audio(d / "mixture.wav").samples)
        stems = {p.stem: to_mono(read_audio(p).samples) for p in sorted((d / "stems").glob("*.wav"))}
        yield d.name, mix, stems, read_score(d / "score_exact.csv"), read_score(d / "score.csv")


def other_pieces(data: Path):
    """Material not in shared/: synthetic pieces and cross-piece stem mixes (see the module doc)."""
    from support.synth import chorale_notes, piano_notes, render

    from demixer.io.audio import read_audio, to_mono
    from demixer.io.score import read_score

    voices = {
        "soprano": dict(decay_db_s=0.0, tilt=1.0, attack=0.04),
        "alto": dict(decay_db_s=0.0, odd=True, attack=0.03),
        "tenor": dict(decay_db_s=-2.0, tilt=0.7, attack=0.05),
        "bass": dict(decay_db_s=0.0, tilt=0.5, attack=0.05),
    }
    piano = dict(decay_db_s=-20.0, attack=0.003, inharm=0.0004, n_harm=15)
    for seed in (11, 12):
        notes = chorale_notes(seed)
        stems = render(notes, SR, max(n.offset for n in notes) + 0.5, voices)
        yield f"synth_chorale_{seed}", sum(stems.values()), stems, notes
        notes = piano_notes(seed)
        stems = render(notes, SR, max(n.offset for n in notes) + 0.5, {}, piano)
        yield f"synth_piano_{seed}", sum(stems.values()), stems, notes

    def load(piece, group):
        return to_mono(read_audio(data / piece / "stems" / f"{group}.wav").samples)

    def notes_of(piece, groups):
        return [n for n in read_score(data / piece / "score_exact.csv") if n.group in groups]

    pairs = [
        ("chorale_bwv255", ("soprano", "alto"), "chorale_bwv296", ("tenor", "bass")),
        ("piano_mozart_k545", ("rh",), "piano_joplin_maple_leaf", ("lh",)),
    ]
    for a, ga, b, gb in pairs:
        if not ((data / a).is_dir() and (data / b).is_dir()):
            continue
        stems = {g: load(a, g) for g in ga} | {g: load(b, g) for g in gb}
        n = min(len(s) for s in stems.values())
        stems = {g: s[:n] for g, s in stems.items()}
        truth = sorted(notes_of(a, ga) + notes_of(b, gb), key=lambda n: (n.onset, n.pitch))
        kind = "piano" if "piano" in a else "chorale"
        yield f"mixed_{kind}_{a.split('_')[-1]}+{b.split('_')[-1]}", sum(stems.values()), stems, truth


def _fmt(v, spec):
    return "   n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'piece':<34}{'notes':>9}{'P':>6}{'R':>6}{'F':>6}{'group':>7}{'SDR draft':>10}{'SDR score':>10}"
          f"{'CPU draft':>10}{'CPU sep':>9}  auto")
    for r in rows:
        print(f"{r['piece']:<34}{r['n_est']:>4}/{r['n_ref']:<4}{r['P']:6.2f}{r['R']:6.2f}{r['F']:6.2f}"
              f"{_fmt(r['group_acc'], '7.2f')}{r['sdr_draft']:10.2f}{_fmt(r.get('sdr_score'), '10.2f')}"
              f"{r['cpu_draft']:9.1f}s{r['cpu_sep']:8.1f}s  {r['auto']}")


def means(rows: list[dict]) -> dict:
    out = {}
    for cat in ("chorales", "piano", "all"):
        sel = [r for r in rows if cat == "all" or r["category"] == cat]
        if sel:
            out[cat] = {k: float(np.mean([r[k] for r in sel if k in r])) if any(k in r for r in sel) else None
                        for k in ("F", "sdr_draft", "sdr_score")}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--pieces", nargs="*", default=None)
    ap.add_argument("--no-other", action="store_true", help="only the dev set")
    args = ap.parse_args(argv)
    from _common import machine_info

    for line in machine_info():
        print(line)
    rows = [run_piece(n, m, s, t, sc) for n, m, s, t, sc in dev_pieces(args.data, args.pieces)]
    print_table(f"{args.data.name} set, scores ignored (draft: --voices 4 for chorales, --hands for piano)", rows)
    m = means(rows)
    print(f"\n{'mean':<10}{'F':>6}{'SDR draft':>11}{'SDR score':>11}")
    for cat, v in m.items():
        print(f"{cat:<10}{v['F']:6.2f}{v['sdr_draft']:11.2f}{_fmt(v['sdr_score'], '11.2f')}")
    verdicts = []
    for cat, thr in TARGETS_SDR:
        if cat in m:
            v = m[cat]["sdr_draft"]
            verdicts.append(f"SDR {cat} {v:.2f} >= {thr}: {'PASS' if v >= thr else 'MISS'}")
    for cat, thr in TARGETS_F:
        if cat in m:
            verdicts.append(f"F {cat} {m[cat]['F']:.2f} >= {thr}: {'PASS' if m[cat]['F'] >= thr else 'MISS'}")
    print("\n".join(verdicts))
    if not args.no_other:
        other = [run_piece(n, mx, s, t) for n, mx, s, t in other_pieces(args.data)]
        print_table("material not in shared/ (synthetic; dev stems of different pieces mixed)", other)
        mo = means(other)
        for cat, v in mo.items():
            print(f"{cat:<10}{v['F']:6.2f}{v['sdr_draft']:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
