"""The ``demixer`` command: the workbench window by default, sub-commands for headless work.

    demixer [FILE] [--score SCORE] [--demo] [--run] [--screenshot PNG] [--export-stems DIR]
                                                                         open the window
    demixer separate MIX --score SCORE [--out DIR] ...                   write one file per source
    demixer align MIX --score SCORE [--out aligned.csv]                  the score in the recording's time
    demixer separate MIX [--voices N | --hands | --hpss] ...             no score: a drafted one, or HPSS
    demixer transcribe MIX [--voices N | --hands] --out draft.mid|.csv   draft a score (cli/noscore.py)
    demixer evaluate --reference DIR --estimate DIR [--json]             BSS Eval SDR/SIR/SAR
    demixer batch INPUT --out DIR [--workers N] [--scheduler ADDR] ...   a corpus, on dask (cli/batch.py)

Bad input gives one line on stderr and exit status 2; Qt is imported only when the window opens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 2
SUBCOMMANDS = ("separate", "align", "evaluate", "transcribe")
#: commands that run BLAS on one thread (threadpool_limits in each). Saying so to OpenBLAS before numpy
#: loads it also keeps OpenBLAS (numpy's and scipy's copies) from starting worker threads that
#: spin-wait: measured 0.07–0.1 s CPU less per command (benchmarks/bench_separate.py, bench_align.py)
ONE_BLAS_THREAD = ("separate", "align", "transcribe")


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _fail(msg: str) -> int:
    print(f"demixer: error: {msg}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _warn(msg: str) -> None:
    print(f"demixer: warning: {msg}", file=sys.stderr)


# ----------------------------------------------------------------------------------------- parsers
def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _midi_pitch(text: str) -> int:
    v = _positive_int(text)
    if v > 127:
        raise argparse.ArgumentTypeError(f"must be a MIDI pitch 1..127, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {v}")
    return v


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, as for every other bad input
        self.exit(EXIT_BAD_INPUT, f"demixer: error: {message}\n")


def _separate_parser() -> argparse.ArgumentParser:
    # Every default shown here is read from the settings objects (engine.separation.SeparationSettings
    # and the model list engine.models), never written twice; tests/e2e/test_cli.py checks the text.
    from demixer.engine.models import model_names, models_help
    from demixer.engine.separation import SeparationSettings

    s = SeparationSettings()
    shares = s.refine
    if shares is not None:
        n_scout, n_tmpl, n_act = (round(100 * x) for x in (
            shares.scout_share, 1 - shares.scout_share - shares.activation_share, shares.activation_share))
        staged = (f"; the staged fit gives {n_scout} %% to the scout, {n_tmpl} %% to templates, "
                  f"{n_act} %% to activations")
    else:
        staged = ""
    p = _Parser(prog="demixer separate", description="Separate a recording into the note groups of its score.")
    p.add_argument("mix", help="the recording (WAV, FLAC, OGG, MP3)")
    p.add_argument("--score", default=None,
                   help="its score (MIDI, MusicXML or CSV onset_s,offset_s,pitch,group); "
                        "without it a draft is transcribed")
    p.add_argument("--out", default="separated", help="output folder (default: ./separated)")
    from demixer.cli.align_cmd import add_separate_options

    add_separate_options(p)
    p.add_argument("--model", choices=model_names(), default=None,
                   help=f"{models_help()} (default {s.model})")
    p.add_argument("--iters", type=_positive_int, default=None,
                   help=f"iterations over all stages, at most (default {s.n_iter}{staged}; a staged fit "
                        "of sustained notes ends its activation stage after one step)")
    p.add_argument("--n-fft", type=_positive_int, default=None, help=f"FFT size (default {s.stft.n_fft})")
    p.add_argument("--hop", type=_positive_int, default=None, help=f"hop size in samples (default {s.stft.hop})")
    p.add_argument("--sr", type=_positive_int, default=None, help=f"analysis sample rate (default {s.stft.sr})")
    p.add_argument("--split", type=_midi_pitch, default=None,
                   help="group notes by pitch: below PITCH → 'low', the rest → 'high' (e.g. 60 = middle C)")
    p.add_argument("--alpha", type=_positive_float, default=None,
                   help=f"mask exponent: 1 = magnitude ratio, 2 = Wiener-like (default {s.alpha:g})")
    p.add_argument("--format", choices=("wav", "flac"), default="wav", help="output format (default wav)")
    p.add_argument("--analyse-first", type=_positive_float, default=None, metavar="SECONDS",
                   help="separate only the first SECONDS of the recording (for one too long for this machine)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    from demixer.cli.noscore import add_draft_options

    add_draft_options(p, hpss=True)
    p.add_argument("--report", metavar="FILE", help="also write a JSON report of the run (cli/report.py)")
    return p


def _evaluate_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="demixer evaluate", description="BSS Eval (v3, mir_eval) of estimated sources.")
    p.add_argument("--reference", required=True, help="folder of reference stems (<name>.wav/.flac)")
    p.add_argument("--estimate", required=True, help="folder of estimated stems with the same names")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _gui_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="demixer",
        description="Demixer: decompose music with NMF and nonnegative autoencoders.",
        epilog="Headless: 'demixer separate --help', 'demixer align --help', 'demixer transcribe --help', "
               "'demixer evaluate --help'.",
    )
    p.add_argument("file", nargs="?", help="audio file or .demix project to open (default: the demo piece)")
    p.add_argument("--score", help="score to load with the audio (MIDI, MusicXML or CSV; aligned to the "
                                   "recording in the background)")
    p.add_argument("--demo", action="store_true", help="open the bundled demo piece")
    p.add_argument("--run", action="store_true", help="start a run with the default model after opening")
    p.add_argument("--screenshot", metavar="PNG", help="after opening (and the run), save a PNG of the window and exit")
    p.add_argument("--export-stems", metavar="DIR",
                   help="after opening (and the run), write the sources as File → Export does (WAV) and exit")
    p.add_argument("--version", action="version", version="demixer 0.1.0")
    return p


# ----------------------------------------------------------------------------------------- separate
class _Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, snap) -> None:
        if not self.enabled:
            return
        width = 30
        frac = snap.iteration / max(1, snap.n_iter)
        bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
        rate = snap.rate
        loss = snap.losses[-1] if snap.losses else float("nan")
        stage = f"  {snap.stage:<11}" if snap.stage else ""
        sys.stderr.write(f"\r[{bar}] {snap.iteration}/{snap.n_iter}{stage}  {rate:6.1f} it/s  loss {loss:.4g}")
        if snap.done:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _settings_from(args):
    from demixer.core.stft import STFTParams
    from demixer.engine.separation import SeparationSettings

    s = SeparationSettings()
    p = s.stft
    try:
        stft = STFTParams(
            n_fft=args.n_fft or p.n_fft, hop=args.hop or p.hop, window=p.window, sr=args.sr or p.sr
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    changes = {"stft": stft}
    if args.model:
        changes["model"] = args.model
    if args.iters:
        changes["n_iter"] = args.iters
    if args.alpha:
        changes["alpha"] = args.alpha
    if args.split is not None:
        from dataclasses import replace

        changes["score"] = replace(s.score, split_pitch=args.split)
    return s.with_(**changes)


def cmd_separate(argv: list[str], *, one_shot: bool = False) -> int:
    args = _separate_parser().parse_args(argv)
    from threadpoolctl import threadpool_limits

    import demixer.engine.separation  # noqa: F401 - loads numpy's and scipy's BLAS, so the limit reaches them

    # One BLAS thread: the staged fit's GEMMs are small enough that OpenBLAS's second thread mostly
    # spin-waits; measured on the 60 s benchmark piece, 2 threads took 2.9× the CPU time and 2.5× the
    # wall time of 1 (benchmarks/bench_separate.py). threadpoolctl only limits libraries already loaded.
    with threadpool_limits(limits=1, user_api="blas"):
        from demixer.cli.report import run_with_report

        if args.hpss:
            from demixer.cli.noscore import separate_hpss

            return run_with_report(args, separate_hpss)
        return run_with_report(args, lambda a: _separate(a, one_shot=one_shot))


def _separate(args, *, one_shot: bool = False) -> int:
    from dataclasses import replace

    from demixer.cli.align_cmd import align_for_separate, read_score_once, save_aligned
    from demixer.cli.noscore import draft_or_regroup
    from demixer.engine.align import ScoreMismatch
    from demixer.engine.fit import Fit, FitState
    from demixer.engine.separation import analyse, initialise, source_names, stem_blocks
    from demixer.io.audio import analysis_signal, block_reader, read_audio
    from demixer.io.errors import InputError
    from demixer.io.export import StemSetWriter
    from demixer.io.limits import audio_warnings, check_analysable, check_fits_machine
    from demixer.io.score import check_score_limits, clip_notes

    try:
        settings = _settings_from(args)
        frames = None
        draft_stft = None
        if not args.score:  # a score is drafted first (on its own, finer grid): its needs count too
            from demixer.engine.draft import DraftSettings

            draft_stft = DraftSettings().stft
        if args.analyse_first is None:  # beyond this machine's memory: refused before any work
            check_fits_machine(args.mix, settings.stft, draft_stft=draft_stft)
            for line in audio_warnings(args.mix, settings.stft):  # very long recording: estimated memory
                _warn(line)
        else:
            from demixer.io.limits import probe_audio

            frames = max(1, int(round(args.analyse_first * probe_audio(args.mix).sr)))
            check_fits_machine(args.mix, settings.stft, frames=frames, draft_stft=draft_stft)
        audio = read_audio(args.mix, frames=frames)
        check_analysable(audio, settings.stft)  # shorter than one analysis frame: refused
        notes = read_score_once(args.score, freeze=one_shot) if args.score else None
        x_analysis = analysis_signal(audio, settings.stft.sr)  # made once: the sync and the fit analyse it
        if notes is not None:
            check_score_limits(notes, audio.duration, args.score)  # before the alignment's work
            notes = align_for_separate(args, audio, notes, settings, _warn, x_analysis)
        notes = draft_or_regroup(args, audio, notes, settings, x_analysis)
        notes, n_clipped, n_dropped = clip_notes(notes, audio.duration)
        if not notes:
            raise InputError(args.score or args.mix, f"no notes fall within the audio's {audio.duration:.2f} s")
        check_score_limits(notes, audio.duration, args.score or args.mix)
        if n_dropped or n_clipped:
            _warn(
                f"{args.score}: score runs past the end of the audio ({audio.duration:.2f} s): "
                f"{n_dropped} notes dropped, {n_clipped} shortened"
            )
        if settings.score.split_pitch is None and all(not n.group for n in notes):
            _warn(f"{args.score}: score has no groups; splitting at middle C (use --split PITCH to choose)")
            settings = settings.with_(score=replace(settings.score, split_pitch=60))
        if not audio.samples.any():  # (no |x| temporary as large as the recording)
            _warn(f"{args.mix}: audio is silent; the sources will be silent too")
        analysis = analyse(audio, settings.stft, settings.compress, x_analysis)
        del x_analysis  # the analysis keeps it while the scout needs it (and drops it then)
        init = initialise(notes, analysis, settings.score)
        # The one fit entry point, as the window's Run: the staged fit from the score's initial state.
        # Without a progress bar nobody reads the losses: the fit skips computing them (same W, H).
        progress = _Progress(enabled=not args.quiet and sys.stderr.isatty())
        runner = Fit(analysis, init.notes, settings, FitState.from_init(init, masks_edited=False), "staged",
                     track_loss=progress.enabled)
        names, _ = source_names(init.components, init.sources)
        info = {"mix": os.path.abspath(args.mix), "score": os.path.abspath(args.score) if args.score else None,
                "sr": audio.sr, "channels": audio.channels, "frames": audio.n_samples}
        writer = StemSetWriter(args.out, names, audio.sr, audio.channels, args.format, info)
        writer.check(audio.n_samples)  # writable, enough space: refused before the fit, not after
        # The stems read the file again a block at a time (same samples), so the decoded recording is
        # not held through the fit (60 min stereo 44.1 kHz: 1.27 GB); MP3/Ogg keep it (no exact seek).
        signal, sr, n_samples = block_reader(audio) or audio.samples, audio.sr, audio.n_samples
        del audio
    except (InputError, CLIError) as exc:
        return _fail(str(exc))
    except ScoreMismatch as exc:
        return _fail(f"{args.score}: {exc} (--align off uses the score's times as they are)")
    except ValueError as exc:
        return _fail(f"{args.mix}: {exc}")
    except MemoryError:
        return _fail(f"{args.mix}: not enough memory (use --analyse-first SECONDS to separate a part)")
    try:
        final = runner.run(_releasing_signal(analysis, progress))
        if args.save_aligned_score:
            save_aligned(args.save_aligned_score, final.extra.get("notes") or init.notes)
        analysis.signal = None  # the scout's signal: not needed for the stems
        _, blocks = stem_blocks(
            signal, sr, n_samples, analysis, final.W, final.H, init.components, init.sources, settings.alpha,
        )
        written = _write_stems(writer, blocks)
    except KeyboardInterrupt:
        return _fail("interrupted")
    except InputError as exc:
        return _fail(str(exc))
    except MemoryError:
        return _fail(f"{args.mix}: not enough memory (use --analyse-first SECONDS to separate a part)")
    finally:
        if hasattr(signal, "close"):
            signal.close()
    out_dir = Path(args.out)
    if writer.foreign:
        _warn(
            f"{out_dir}: {len(writer.foreign)} audio files there are not from this run (not in stems.json): "
            + ", ".join(writer.foreign[:5]) + (", …" if len(writer.foreign) > 5 else "")
        )
    if not args.quiet:
        print(f"wrote {len(written)} sources to {out_dir}: " + ", ".join(p.name for p in written)
              + " (and stems.json: file → group)")
        if writer.removed:
            print(f"removed {len(writer.removed)} stems of the previous run: " + ", ".join(writer.removed))
    return 0


def _releasing_signal(analysis, progress):
    """``progress`` that also drops the analysis's mono signal once the fit runs: the scout has made its
    own analysis from it by its first snapshot, and nothing later needs it (60 min: 0.3 GB)."""

    def call(snap) -> None:
        if snap.stage != "sync":
            analysis.signal = None
        progress(snap)

    return call


def _write_stems(writer, blocks) -> list[Path]:
    """Compute the stems block by block and write them as one set (cli/report.py times this stage)."""
    with writer:
        for _, block in blocks:
            for g, b in enumerate(block):
                writer.write(g, b)
        return writer.commit()


# ----------------------------------------------------------------------------------------- evaluate
def _stem_files(folder: Path) -> dict[str, Path]:
    from demixer.io.audio import SUPPORTED_AUDIO_SUFFIXES

    if not folder.is_dir():
        raise CLIError(f"{folder}: not a folder")
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in SUPPORTED_AUDIO_SUFFIXES}
    if not files:
        raise CLIError(f"{folder}: no audio files found")
    return files


def _name_key(name: str) -> str:
    """Source names as a person reads them: "Soprano" is "soprano", "left_hand" is "left hand"."""
    return " ".join(name.replace("_", " ").casefold().split())


def _match_estimates(refs: dict[str, Path], ests: dict[str, Path], folder: Path) -> dict[str, Path]:
    """The estimate files keyed by the reference's names: the same file name first, else the same name
    read loosely (case, ``_`` for a space), also through the group names ``stems.json`` gives the files
    (a MusicXML part "Soprano" against a reference ``soprano.wav``)."""
    from demixer.io.export import read_stem_index

    index = read_stem_index(folder) or {"stems": []}
    group_of = {Path(s["file"]).stem: s.get("group") for s in index["stems"] if isinstance(s.get("group"), str)}
    loose: dict[str, list[str]] = {}
    for stem in ests:
        for name in {stem, group_of.get(stem) or stem}:
            files = loose.setdefault(_name_key(name), [])
            if stem not in files:
                files.append(stem)
    out = {n: ests[n] for n in refs if n in ests}
    used = set(out.values())
    for n in refs:
        if n in out:
            continue
        found = [ests[f] for f in loose.get(_name_key(n), []) if ests[f] not in used]
        if len(found) > 1:
            raise CLIError(f"{folder}: {', '.join(p.name for p in found)} all match the reference source {n!r}")
        if found:
            out[n] = found[0]
            used.add(found[0])
    return out


def evaluate_folders(reference: Path, estimate: Path) -> dict:
    """BSS Eval v3 (mir_eval) per source name present in both folders; mono downmix of each file."""
    import warnings

    import numpy as np

    from demixer.io.audio import read_audio, to_mono

    refs = _stem_files(reference)
    ests = _match_estimates(refs, _stem_files(estimate), estimate)
    names = [n for n in refs if n in ests]
    if not names:
        raise CLIError(f"no source names in common between {reference} and {estimate}")
    ref_audio = [read_audio(refs[n]) for n in names]
    est_audio = [read_audio(ests[n]) for n in names]
    for n, r, e in zip(names, ref_audio, est_audio, strict=True):
        if r.sr != e.sr:
            raise CLIError(f"{ests[n]}: sample rate {e.sr} differs from the reference's {r.sr}")
    length = min(min(a.n_samples for a in ref_audio), min(a.n_samples for a in est_audio))
    R = np.stack([to_mono(a.samples)[:length] for a in ref_audio]).astype(np.float64)
    E = np.stack([to_mono(a.samples)[:length] for a in est_audio]).astype(np.float64)
    silent = [n for n, r in zip(names, R, strict=True) if not np.any(r)]
    if silent:
        raise CLIError(f"reference sources are silent: {', '.join(silent)} (BSS Eval needs energy)")
    import mir_eval

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(R, E, compute_permutation=False)
    rows = {
        n: {"sdr": float(a), "sir": float(b), "sar": float(c)}
        for n, a, b, c in zip(names, sdr, sir, sar, strict=True)
    }
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in ("sdr", "sir", "sar")}
    return {"sources": rows, "mean": mean, "missing": [n for n in refs if n not in ests]}


def cmd_evaluate(argv: list[str]) -> int:
    args = _evaluate_parser().parse_args(argv)
    from demixer.io.errors import InputError

    try:
        result = evaluate_folders(Path(args.reference), Path(args.estimate))
    except (CLIError, InputError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'source':<16}{'SDR':>8}{'SIR':>8}{'SAR':>8}")
    for name, r in result["sources"].items():
        print(f"{name:<16}{r['sdr']:8.2f}{r['sir']:8.2f}{r['sar']:8.2f}")
    m = result["mean"]
    print(f"{'mean':<16}{m['sdr']:8.2f}{m['sir']:8.2f}{m['sar']:8.2f}")
    if result["missing"]:
        _warn("no estimate for: " + ", ".join(result["missing"]))
    return 0


# ----------------------------------------------------------------------------------------- GUI
def cmd_gui(argv: list[str]) -> int:
    args = _gui_parser().parse_args(argv)
    for path in (args.file, args.score):
        if path and not os.path.exists(path):
            return _fail(f"{path}: file not found")
    if args.export_stems and os.path.exists(args.export_stems) and not os.path.isdir(args.export_stems):
        return _fail(f"{args.export_stems}: not a folder")
    try:
        from demixer.gui.app import run_app
    except ImportError as exc:  # the GUI stack is missing or broken: say so in one line
        return _fail(f"the window cannot start: {exc}")
    return run_app(args)


def main(argv: list[str] | None = None) -> int:
    one_shot = argv is None  # the process's own command line: the process ends with this command
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "batch":  # imports dask, when installed: only for this command
            from demixer.cli.batch import cmd_batch

            return cmd_batch(argv[1:])
        if argv and argv[0] in SUBCOMMANDS:
            cmd, rest = argv[0], argv[1:]
            if cmd in ONE_BLAS_THREAD and "numpy" not in sys.modules:  # a user's own setting wins
                os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
            if cmd == "align":
                from demixer.cli.align_cmd import cmd_align

                return cmd_align(rest, _Parser, _fail, CLIError, one_shot=one_shot)
            if cmd == "transcribe":
                from demixer.cli.noscore import cmd_transcribe

                return cmd_transcribe(rest)
            return cmd_separate(rest, one_shot=one_shot) if cmd == "separate" else cmd_evaluate(rest)
        return cmd_gui(argv)
    except SystemExit as exc:  # argparse's --help / --version / usage errors: return their status
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_BAD_INPUT)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
