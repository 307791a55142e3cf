"""The score-free paths of the ``demixer`` command (DESIGN.md §2.7).

    demixer transcribe MIX [--voices N | --hands] --out draft.mid|draft.csv
    demixer separate MIX [--voices N | --hands]      no --score: a drafted one (said in one line)
    demixer separate MIX --hpss                      harmonic.wav and percussive.wav

Kept apart from :mod:`demixer.cli.main` so that the main module only registers these.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["add_draft_options", "cmd_transcribe", "draft_or_regroup", "separate_hpss"]


def add_draft_options(p: argparse.ArgumentParser, *, hpss: bool) -> None:
    """``--voices N | --hands`` (and ``--hpss`` for separate), mutually exclusive."""
    from demixer.cli.main import _positive_int

    g = p.add_mutually_exclusive_group()
    g.add_argument("--voices", type=_positive_int, default=None, metavar="N",
                   help="N voices by pitch rank and voice leading (4: soprano alto tenor bass)")
    g.add_argument("--hands", action="store_true", help="two hands, rh and lh (a keyboard)")
    if hpss:
        g.add_argument("--hpss", action="store_true",
                       help="no score: split into harmonic and percussive sources (median filtering)")


def _transcribe_parser() -> argparse.ArgumentParser:
    from demixer.cli.main import _Parser

    p = _Parser(prog="demixer transcribe",
                description="Draft a score from a recording: notes, then voices or hands.")
    p.add_argument("mix", help="the recording (WAV, FLAC, OGG, MP3)")
    p.add_argument("--out", required=True, help="the draft: .mid (one named track per group) or .csv")
    add_draft_options(p, hpss=False)
    from demixer.cli.main import _positive_float

    p.add_argument("--analyse-first", type=_positive_float, default=None, metavar="SECONDS",
                   help="draft only the first SECONDS of the recording (for one too long for this machine)")
    p.add_argument("--quiet", action="store_true", help="no summary line")
    return p


def _draft(args, audio):
    from demixer.engine.draft import draft_score

    return draft_score(audio, voices=args.voices, hands=bool(args.hands))


def cmd_transcribe(argv: list[str]) -> int:
    from demixer.cli.main import _fail

    args = _transcribe_parser().parse_args(argv)
    out = Path(args.out)
    if out.suffix.lower() not in (".mid", ".midi", ".csv"):
        return _fail(f"{out}: unsupported draft format {out.suffix or '(no suffix)'!r}; use .mid or .csv")
    from threadpoolctl import threadpool_limits

    import demixer.engine.draft  # noqa: F401 - loads numpy's and scipy's BLAS before the limit
    from demixer.io.audio import read_audio
    from demixer.io.errors import InputError
    from demixer.io.limits import check_analysable, check_fits_machine, probe_audio
    from demixer.io.score_out import write_score

    with threadpool_limits(limits=1, user_api="blas"):
        try:
            from demixer.engine.draft import DraftSettings
            from demixer.engine.separation import SeparationSettings

            # beyond this machine's memory: refused before anything is decoded (voices are chosen
            # again after a first separation, so its needs count too)
            frames = None
            if args.analyse_first is not None:
                frames = max(1, int(round(args.analyse_first * probe_audio(args.mix).sr)))
            check_fits_machine(args.mix, SeparationSettings().stft, frames=frames,
                               draft_stft=DraftSettings().stft, doing="drafting a score for")
            audio = read_audio(args.mix, frames=frames)
            check_analysable(audio, DraftSettings().stft)
            draft = _draft(args, audio)
            if draft.notes:
                from demixer.engine.draft import revoice

                draft = revoice(draft, audio)  # voices: chosen again by their fitted timbres (a first fit)
        except InputError as exc:
            return _fail(str(exc))
        except ValueError as exc:
            return _fail(f"{args.mix}: {exc}")
        except MemoryError:
            return _fail(f"{args.mix}: not enough memory (use --analyse-first SECONDS to draft a part)")
    if not draft.notes:
        return _fail(f"{args.mix}: no notes found (is the recording silent?)")
    try:
        write_score(out, draft.notes)
    except InputError as exc:
        return _fail(str(exc))
    if not args.quiet:
        print(f"{draft.summary()}; wrote {out}")
    return 0


def draft_or_regroup(args, audio, notes, settings=None, signal=None):
    """For ``separate``: with no score, a drafted one (announced in one line on stderr); with a score
    and ``--voices``/``--hands``, the score's notes regrouped that way. Raises ValueError / InputError.
    Drafted voices get second candidates by timbre from a first separation with ``settings`` (of the
    analysis ``signal`` when the caller has it: not resampled twice)."""
    from demixer.io.errors import InputError

    if notes is None:
        draft = _draft(args, audio)
        if not draft.notes:
            raise InputError(args.mix, "no notes found to draft a score from (is the recording silent?)")
        print(f"demixer: no --score given: {draft.summary()}", file=sys.stderr)
        from demixer.engine.draft import separation_notes

        return separation_notes(draft, audio, settings, signal)
    if args.voices:
        from demixer.core.voices import assign_voices

        return assign_voices(notes, args.voices)
    if args.hands:
        from demixer.core.voices import assign_hands

        return assign_hands(notes)
    return notes


def separate_hpss(args) -> int:
    """``separate --hpss``: harmonic and percussive stems written to ``--out``."""
    from demixer.cli.main import _fail
    from demixer.engine.hpss import hpss_stems
    from demixer.io.audio import read_audio
    from demixer.io.errors import InputError
    from demixer.io.limits import check_analysable

    if args.score:
        return _fail("--hpss needs no score; leave out --score")
    try:
        from demixer.core.stft import STFTParams

        audio = read_audio(args.mix)
        params = STFTParams(n_fft=args.n_fft or 2048, hop=args.hop or 512, sr=args.sr or 22050)
        check_analysable(audio, params)
        sources = hpss_stems(audio, params)
    except InputError as exc:
        return _fail(str(exc))
    except ValueError as exc:
        return _fail(f"{args.mix}: {exc}")
    from demixer.cli.main import _write_stems
    from demixer.io.export import StemSetWriter

    names = list(sources)
    info = {"mix": os.path.abspath(args.mix), "score": None, "sr": audio.sr, "channels": audio.channels,
            "frames": audio.n_samples, "method": "hpss"}
    try:
        writer = StemSetWriter(args.out, names, audio.sr, audio.channels, args.format, info)
        writer.check(audio.n_samples)
        written = _write_stems(writer, [(0, [sources[n] for n in names])])
    except InputError as exc:
        return _fail(str(exc))
    if not args.quiet:
        print(f"wrote {len(written)} sources to {args.out}: " + ", ".join(p.name for p in written)
              + " (and stems.json: file → group)")
    return 0
