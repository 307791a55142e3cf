"""``demixer align`` and the synchronisation step of ``demixer separate`` (DESIGN.md §2.5b).

    demixer align MIX --score SCORE [--out aligned.csv] [--quiet]

writes the score in the recording's time (CSV ``onset_s,offset_s,pitch,group,velocity``) and prints one
line: tempo ratio, lead-in, match confidence. A score that does not match the recording is refused in
one line with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["align_parser", "cmd_align", "add_separate_options", "align_for_separate", "save_aligned"]

# what counts as "already aligned" is decided in demixer.engine.align (already_aligned, too_few_onsets):
# the window's alignment judges a score the same way


def align_parser(parser_cls) -> argparse.ArgumentParser:
    p = parser_cls(prog="demixer align", description="Synchronise a score to a recording of it.")
    p.add_argument("mix", help="the recording (WAV, FLAC, OGG, MP3)")
    p.add_argument("--score", required=True, help="its score (MIDI, MusicXML or CSV), at any tempo")
    p.add_argument("--out", default=None, help="CSV to write (default: <score name>.aligned.csv beside the score)")
    p.add_argument("--quiet", action="store_true", help="no summary line")
    return p


def summary(alignment, n_notes: int) -> str:
    return (f"aligned {n_notes} notes: tempo ratio {alignment.tempo_ratio:.2f} "
            f"(recording {'faster' if alignment.tempo_ratio > 1 else 'slower'} than the score), "
            f"lead-in {alignment.lead_in:.2f} s, match confidence {alignment.confidence:.2f}")


def cmd_align(argv: list[str], parser_cls, fail, cli_error, *, one_shot: bool = False) -> int:
    args = align_parser(parser_cls).parse_args(argv)
    from pathlib import Path

    from demixer.engine.align import ScoreMismatch, align_score
    from demixer.io.audio import read_audio
    from demixer.io.errors import InputError
    from demixer.io.score import write_score_csv

    out = Path(args.out) if args.out else Path(args.score).with_suffix(".aligned.csv")
    try:
        audio = read_audio(args.mix)
        notes = read_score_once(args.score, freeze=one_shot)
        with _one_blas_thread():
            result = align_score(audio, notes)
        write_score_csv(out, sorted(result.notes, key=lambda n: (n.onset, n.pitch, n.group)))
    except ScoreMismatch as exc:
        return fail(f"{args.score}: {exc}")
    except InputError as exc:
        return fail(str(exc))
    except ValueError as exc:
        return fail(f"{args.mix}: {exc}")
    except KeyboardInterrupt:
        return fail("interrupted")
    if result.n_dropped:
        print(f"demixer: warning: {args.score}: the recording plays only the score's beginning: "
              f"{result.n_dropped} later notes left out", file=sys.stderr)
    if not args.quiet:
        print(summary(result.alignment, len(result.notes)) + f"; wrote {out}")
    return 0


def read_score_once(path, *, freeze: bool = False):
    """``read_score`` for a command. With ``freeze`` (the process is this one command: ``main`` called with
    the process's own command line), a MusicXML score first imports music21 (~600 modules) and freezes
    what exists then (``gc.freeze``): those objects live until the process ends, and the collections
    during the parse, the alignment and at exit no longer walk them. Measured 0.1 s CPU of ``demixer
    align``'s 1 s budget (DESIGN.md §6). Never in a long-lived process (the window, a batch worker, a
    test run): there a frozen object that later becomes garbage would never be freed."""
    import gc
    from pathlib import Path

    from demixer.io.musicxml import MUSICXML_SUFFIXES, import_music21
    from demixer.io.score import read_score

    if freeze and Path(path).suffix.lower() in MUSICXML_SUFFIXES and "music21" not in sys.modules:
        gc.disable()  # the import makes no garbage: no collection needed while it runs
        try:
            import_music21()
        except ImportError:
            pass  # read_score says what is missing, naming the file
        finally:
            gc.enable()
        gc.freeze()
    return read_score(path)


def _one_blas_thread():
    """BLAS on one thread for the alignment. When OpenBLAS was told so before numpy loaded it (``main``
    sets ``OPENBLAS_NUM_THREADS=1`` for this command unless the user set it), nothing is left to do, and
    threadpoolctl's import and library scan (0.02–0.03 s CPU of the 1 s budget) are skipped."""
    import contextlib
    import os

    if os.environ.get("OPENBLAS_NUM_THREADS") == "1":
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


# ----------------------------------------------------------------------------------------- separate
def add_separate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--align", choices=("auto", "off"), default="auto",
                   help="synchronise the score to the recording first (auto, the default) or use its "
                        "times as they are (off)")
    p.add_argument("--save-aligned-score", metavar="FILE", default=None,
                   help="also write the score as aligned and refined (CSV)")


def align_for_separate(args, audio, notes, settings, warn, signal=None):
    """The notes to separate with: warped onto ``audio`` unless ``--align off`` or already aligned.
    Notes the warp puts past the recording's end are returned too (the caller clips and warns).
    ``signal``: the fit's analysis signal (mono at ``settings.stft.sr``), reused when that is the
    synchronisation's rate. Raises :class:`~demixer.engine.align.ScoreMismatch` for a score that does
    not match."""
    if getattr(args, "align", "auto") == "off":
        return notes
    from demixer.engine.align import ScoreMismatch, align_score, already_aligned, mismatch_reason, too_few_onsets

    if too_few_onsets(notes):
        return notes
    from demixer.core.sync import warp_notes
    from demixer.engine.align import ANALYSIS_SR

    # the staged fit's scout refines each note (DESIGN.md §2.5b); other models get it here
    from demixer.engine.models import model_info

    staged = settings.refine is not None and model_info(settings.model).staged
    if settings.stft.sr != ANALYSIS_SR:
        signal = None
    result = align_score(audio, notes, refine=not staged, check=False, signal=signal)
    warped = warp_notes(notes, result.alignment)
    if already_aligned(notes, result.alignment):
        return notes  # already aligned: keep the score exactly as given
    if not result.alignment.matches:
        raise ScoreMismatch(mismatch_reason(result.alignment))
    if not getattr(args, "quiet", False):
        print(summary(result.alignment, len(result.notes)))
    if staged:
        return warped
    if result.n_dropped:
        warn(f"{args.score}: the recording plays only the score's beginning: {result.n_dropped} later notes "
             "left out")
    return result.notes


def save_aligned(path, notes) -> None:
    from demixer.io.score import write_score_csv

    write_score_csv(path, sorted(notes, key=lambda n: (n.onset, n.pitch, n.group)))
