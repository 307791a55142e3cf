"""``demixer batch``: ``separate`` over a corpus, on a dask.distributed cluster (local or existing).

    demixer batch INPUT --out DIR [--workers N] [--memory-limit BYTES] [--scheduler ADDRESS]
                  [--reference DIR] [--quiet] [separate's options: --model, --iters, --split, ...]

INPUT is a folder or a manifest CSV (see :func:`discover`). Each piece is one task: a worker runs the
``separate`` command itself, in-process, through :func:`demixer.cli.main.main` with ``--report``
(so a batch separates exactly as ``separate`` does, whatever ``separate`` becomes), into a temporary
folder under ``DIR/.partial/`` that is renamed to ``DIR/<piece>/`` when complete: a piece's folder is
complete or absent. Workers get paths, never arrays. A piece that fails is recorded with its one-line
reason and the batch goes on; a worker that dies (killed, out of memory) has its piece run again by
dask's scheduler. Re-running skips pieces whose ``report.json`` shows the same arguments, version and
inputs (resume). With reference stems, BSS Eval (the code of ``demixer evaluate``) runs on the worker
after the piece and the table of results is printed and written to ``DIR/summary.csv``.

dask is an optional extra (``pip install 'demixer[batch]'``): this module imports it only inside
functions, and nothing else in Demixer imports this module except ``main`` for this command.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demixer.cli.main import (
    EXIT_BAD_INPUT,
    CLIError,
    _fail,
    _Parser,
    _positive_int,
    _separate_parser,
    _settings_from,
)
from demixer.io.export import safe_filename as _safe_name  # noqa: E402 - piece folder names as stem names

PARTIAL = ".partial"
REPORT = "report.json"
SUMMARY = "summary.csv"
INSTALL_HINT = "demixer batch needs dask.distributed: pip install 'demixer[batch]'"
#: Share of a worker's memory limit a piece may plan to use (dask pauses a worker at 80 % and its
#: nanny kills it at 95 %; the estimate of io/limits.py is an upper estimate, this is the margin).
MEMORY_SHARE = 0.8
#: Arguments of ``separate`` that batch sets itself per piece: not part of a piece's settings.
_PER_PIECE = ("mix", "score", "out", "report", "quiet")


# ----------------------------------------------------------------------------------------- pieces
@dataclass(frozen=True)
class Piece:
    """One recording to separate. ``problem``: why it cannot run (found while listing the input)."""

    name: str
    audio: str
    score: str | None = None
    reference: str | None = None
    problem: str | None = None


def _score_suffixes() -> tuple[str, ...]:
    from demixer.io.score import SUPPORTED_SCORE_SUFFIXES

    # CSV first: the exact notes; then MIDI; then whatever else the score reader learns to read
    preferred = tuple(s for s in (".csv", ".mid", ".midi") if s in SUPPORTED_SCORE_SUFFIXES)
    return preferred + tuple(s for s in SUPPORTED_SCORE_SUFFIXES if s not in preferred)


def _audio_suffixes() -> tuple[str, ...]:
    from demixer.io.audio import SUPPORTED_AUDIO_SUFFIXES

    return SUPPORTED_AUDIO_SUFFIXES


def _find_score(audio: Path, folder_piece: bool) -> tuple[str | None, str | None]:
    """(score, problem) for ``audio``: a score of the same stem beside it; in a piece folder, else
    ``score.<ext>``, else the folder's only score file."""
    suffixes = _score_suffixes()
    for suffix in suffixes:
        for cand in (audio.with_suffix(suffix), audio.with_suffix(suffix.upper())):
            if cand.is_file():
                return str(cand), None
    if not folder_piece:
        return None, None
    for suffix in suffixes:
        cand = audio.parent / f"score{suffix}"
        if cand.is_file():
            return str(cand), None
    scores = sorted(p for p in audio.parent.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if len(scores) == 1:
        return str(scores[0]), None
    if len(scores) > 1:
        names = ", ".join(p.name for p in scores[:4]) + (" …" if len(scores) > 4 else "")
        return None, (
            f"{audio.parent}: several scores ({names}); name the one to use {audio.stem}.<ext> or score.<ext>, "
            "or list the pieces in a manifest CSV"
        )
    return None, None


def _find_reference(audio: Path, name: str, reference: Path | None) -> str | None:
    """Reference stems: ``--reference DIR/<piece>/``, else ``stems/<piece>/`` or ``stems/`` beside the audio."""
    audio_suffixes = _audio_suffixes()
    if reference is not None:
        cand = reference / name
        return str(cand) if cand.is_dir() else None
    for cand in (audio.parent / "stems" / name, audio.parent / "stems"):
        if cand.is_dir() and any(p.suffix.lower() in audio_suffixes for p in cand.iterdir()):
            return str(cand)
    return None


def discover(source: Path, reference: Path | None = None, exclude: Path | None = None) -> list[Piece]:
    """The pieces of a corpus, in a stable order.

    A folder: each sub-folder holding one audio file is a piece named after the sub-folder (its score:
    one of the same stem as the audio, else ``score.<ext>``, else the folder's only score file); each
    audio file directly in the folder with a score of the same stem beside it is a piece named after
    the file. A manifest (a ``.csv`` file): rows ``audio,score[,out_name]``, an optional header naming
    those columns, paths relative to the manifest's folder, an empty score for a piece without one.
    Reference stems: see :func:`_find_reference`. Raises :class:`CLIError` when INPUT is unusable.
    """
    if not source.exists():
        raise CLIError(f"{source}: not found")
    pieces = _from_manifest(source, reference) if source.is_file() else _from_folder(source, reference, exclude)
    seen: set[str] = set()
    out = []
    for p in pieces:
        if p.name in seen:  # reported under a name of its own, so that nothing else is overwritten
            problem = f"{p.audio}: another piece is already named {p.name!r} (give it an out_name in a manifest)"
            p = Piece(f"{p.name}~{len(out) + 1}", p.audio, p.score, p.reference, problem)
        seen.add(p.name)
        out.append(p)
    if not out:
        raise CLIError(f"{source}: no pieces found (a folder of piece folders or of audio files with their scores, "
                       "or a manifest CSV audio,score[,out_name])")
    return out


def _from_folder(folder: Path, reference: Path | None, exclude: Path | None) -> list[Piece]:
    audio_suffixes = _audio_suffixes()
    pieces = []
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise CLIError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    for entry in entries:
        if entry.name.startswith(".") or entry.name == "stems":
            continue
        if exclude is not None and entry.resolve() == exclude:
            continue
        if entry.is_dir():
            audio = sorted(p for p in entry.iterdir() if p.is_file() and p.suffix.lower() in audio_suffixes)
            if not audio:
                continue
            name = _safe_name(entry.name)
            if len(audio) > 1:
                names = ", ".join(p.name for p in audio[:4]) + (" …" if len(audio) > 4 else "")
                pieces.append(Piece(name, str(entry), problem=(
                    f"{entry}: {len(audio)} audio files ({names}); a piece folder holds one (or use a manifest CSV)"
                )))
                continue
            score, problem = _find_score(audio[0], folder_piece=True)
            pieces.append(Piece(name, str(audio[0]), score, _find_reference(audio[0], name, reference), problem))
        elif entry.is_file() and entry.suffix.lower() in audio_suffixes:
            score, problem = _find_score(entry, folder_piece=False)
            if score is None:
                continue  # a loose audio file without a score beside it is not taken for a piece
            name = _safe_name(entry.stem)
            pieces.append(Piece(name, str(entry), score, _find_reference(entry, name, reference), problem))
    return pieces


def _from_manifest(manifest: Path, reference: Path | None) -> list[Piece]:
    if manifest.suffix.lower() != ".csv":
        raise CLIError(f"{manifest}: not a folder or a manifest CSV (audio,score[,out_name])")
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"{manifest}: cannot read the manifest ({getattr(exc, 'strerror', None) or exc})") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r) and not r[0].startswith("#")]
    if not rows:
        return []
    cols = {"audio": 0, "score": 1, "out_name": 2}
    header = [c.strip().lower() for c in rows[0]]
    if "audio" in header:
        cols = {k: header.index(k) for k in ("audio", "score", "out_name") if k in header}
        rows = rows[1:]
    base = manifest.parent
    pieces = []
    for i, row in enumerate(rows, start=2 if "audio" in header else 1):
        def cell(key, row=row):
            j = cols.get(key)
            return row[j].strip() if j is not None and j < len(row) else ""

        audio_text = cell("audio")
        if not audio_text:
            raise CLIError(f"{manifest}: line {i}: no audio path")
        audio = (base / audio_text).resolve() if not os.path.isabs(audio_text) else Path(audio_text)
        score_text = cell("score")
        score = str((base / score_text).resolve() if not os.path.isabs(score_text) else Path(score_text)) \
            if score_text else None
        name = _safe_name(cell("out_name") or audio.stem)
        pieces.append(Piece(name, str(audio), score, _find_reference(audio, name, reference)))
    return pieces


# ----------------------------------------------------------------------------------------- resume
def piece_arguments(options: list[str]) -> dict[str, Any]:
    """The arguments ``separate`` parses from ``options`` (as its report records them), without the
    per-piece ones: what "the same settings" means for resume."""
    from demixer.cli.report import jsonable

    ns = _separate_parser().parse_args(["MIX", "--score", "SCORE", *options])
    return {k: v for k, v in jsonable(vars(ns)).items() if k not in _PER_PIECE}


def _same_file(recorded: dict | None, path: str | None) -> bool:
    from demixer.cli.report import file_identity

    if recorded is None or path is None:
        return recorded is None and path is None
    now = file_identity(path, digest=False)
    if now is None or "error" in now or now["path"] != recorded.get("path"):
        return False
    if now["size"] != recorded.get("size"):
        return False
    if now["mtime_ns"] == recorded.get("mtime_ns"):
        return True
    full = file_identity(path)  # touched since: the same bytes still count as the same input
    return full is not None and full.get("sha256") == recorded.get("sha256")


def finished_report(piece: Piece, out: Path, arguments: dict[str, Any]) -> dict | None:
    """The piece's report when ``out/<piece>`` holds a finished run with these arguments and inputs."""
    import demixer

    folder = out / piece.name
    try:
        report = json.loads((folder / REPORT).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or not report.get("ok") or report.get("version") != demixer.__version__:
        return None
    recorded = {k: v for k, v in (report.get("arguments") or {}).items() if k not in _PER_PIECE}
    if recorded != arguments:
        return None
    inputs = report.get("inputs") or {}
    if not (_same_file(inputs.get("audio"), piece.audio) and _same_file(inputs.get("score"), piece.score)):
        return None
    if not all((folder / f).is_file() for f in report.get("files") or []):
        return None
    return report


# ----------------------------------------------------------------------------------------- worker side
_ONE_AT_A_TIME = threading.Lock()  # separate redirects stderr: one piece at a time per process


@dataclass(frozen=True)
class Job:
    """What every task needs besides its piece."""

    out: str
    options: tuple[str, ...]
    stft: tuple[int, int, int]  # n_fft, hop, sr: for the memory estimate
    arguments: dict = field(default_factory=dict)


def _worker_memory() -> tuple[int | None, int]:
    """(the dask worker's memory limit or None, this process's resident memory now)."""
    import psutil

    rss = psutil.Process().memory_info().rss
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        limit = None
    return (int(limit) if limit else None), int(rss)


def separation_memory(frames: int, sr: int, channels: int, stft: tuple[int, int, int]) -> int:
    """Upper estimate (bytes) of what ``separate`` needs for a piece beyond the worker's own memory:
    io/limits.py's estimate, which covers decoding, analysis, the fit and the block-wise stems
    (a 10-minute 44.1 kHz stereo piece: 0.84 GiB estimated, 0.45 GiB measured above the interpreter)."""
    from types import SimpleNamespace

    from demixer.io.limits import estimate_memory

    n_fft, hop, sr_a = stft
    return estimate_memory(frames, sr, channels, SimpleNamespace(n_fft=n_fft, hop=hop, sr=sr_a))


def too_large(piece: Piece, job: Job, limit: int | None, rss: int) -> str | None:
    """Why the piece would not fit in the worker's memory (:func:`separation_memory`), or None."""
    from demixer.io.errors import InputError
    from demixer.io.limits import format_bytes, format_duration, probe_audio

    if not limit:
        return None
    try:
        info = probe_audio(piece.audio)
    except InputError:
        return None  # separate says what is wrong with the file
    need = separation_memory(info.frames, info.sr, info.channels, job.stft)
    if rss + need <= MEMORY_SHARE * limit:
        return None
    return (
        f"{piece.audio}: too large for a worker ({format_duration(info.duration)}, {info.channels} channels at "
        f"{info.sr} Hz needs about {format_bytes(need)}; the worker's memory limit is {format_bytes(limit)}, "
        f"{format_bytes(rss)} in use): use fewer workers or a larger --memory-limit"
    )


def _reason(lines: list[str], status) -> str:
    errors = [ln[len("demixer: error: "):] for ln in lines if ln.startswith("demixer: error: ")]
    if errors:
        return errors[-1]
    if lines:
        return lines[-1]
    return f"separate exited with status {status}"


def _peak_rss() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak * (1 if sys.platform == "darwin" else 1024))


def _evaluate(reference: str, folder: Path) -> dict:
    from demixer.cli.main import evaluate_folders
    from demixer.io.errors import InputError

    t0 = time.perf_counter()
    try:
        result = evaluate_folders(Path(reference), folder)
    except (CLIError, InputError, ValueError) as exc:
        result = {"error": str(exc)}
    return {"reference": reference, **result, "seconds": time.perf_counter() - t0}


def run_piece(piece: Piece, job: Job, evaluate_only: bool = False) -> dict:
    """The task: separate one piece with the ``separate`` command and publish its folder atomically
    (or, ``evaluate_only``, add BSS Eval to a finished piece's report). Never raises for a bad piece:
    returns ``{"piece", "status": "done"|"failed", "reason", ...}``."""
    with _ONE_AT_A_TIME:
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            result = _run_piece(piece, job, evaluate_only)
        except Exception as exc:  # e.g. the output folder vanished: still this piece's one-line reason
            result = {"status": "failed", "reason": f"{piece.audio}: {type(exc).__name__}: {exc}"}
        result.update(piece=piece.name, seconds=time.perf_counter() - w0, cpu_s=time.process_time() - c0,
                      pid=os.getpid(), peak_rss=_peak_rss())
        return result


def _run_piece(piece: Piece, job: Job, evaluate_only: bool) -> dict:
    from demixer.cli.main import main
    from demixer.cli.report import write_json

    out = Path(job.out)
    final = out / piece.name
    if evaluate_only:
        report = json.loads((final / REPORT).read_text())
        report.setdefault("batch", {})["evaluation"] = _evaluate(piece.reference, final)
        write_json(final / REPORT, report)
        return {"status": "done", "report": report, "evaluated_only": True}
    limit, rss = _worker_memory()
    refusal = too_large(piece, job, limit, rss)
    if refusal:
        return {"status": "failed", "reason": refusal}
    started_at = time.time()
    partial = out / PARTIAL / f"{piece.name}.{uuid.uuid4().hex[:12]}"
    stems_dir = partial / piece.name
    report_path = partial / REPORT
    partial.mkdir(parents=True)
    try:
        argv = ["separate", piece.audio, *(["--score", piece.score] if piece.score else []),
                "--out", str(stems_dir), *job.options, "--quiet", "--report", str(report_path)]
        err, stdout = io.StringIO(), io.StringIO()
        thread_cpu = time.thread_time()  # separate's own CPU time (one BLAS thread: this thread)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(stdout):
            try:
                status = main(argv)
            except Exception as exc:  # a bug in separate: still one piece, still one line
                status = None
                print(f"demixer: error: {piece.audio}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        thread_cpu = time.thread_time() - thread_cpu
        lines = [ln.rstrip() for ln in err.getvalue().splitlines() if ln.strip()]
        if status != 0 or not report_path.is_file():
            return {"status": "failed", "reason": _reason(lines, status), "stderr": lines}
        report = json.loads(report_path.read_text())
        batch: dict[str, Any] = {
            "piece": piece.name, "reference": piece.reference, "stderr": lines, "pid": os.getpid(),
            "memory_limit": limit, "peak_rss": _peak_rss(), "started_at": started_at, "separated_at": time.time(),
            "thread_cpu_s": thread_cpu,
        }
        if piece.reference:
            batch["evaluation"] = _evaluate(piece.reference, stems_dir)
        report["batch"] = batch
        write_json(stems_dir / REPORT, report)
        _publish(stems_dir, final, partial)
        return {"status": "done", "report": report}
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _publish(ready: Path, final: Path, partial: Path) -> None:
    """Rename the complete folder into place; an older run's folder is moved aside first."""
    if final.exists():
        old = partial / ".replaced"
        os.rename(final, old)
    os.rename(ready, final)


# ----------------------------------------------------------------------------------------- progress
class BatchProgress:
    """Pieces done, failed and an ETA: a bar redrawn on a terminal, one line per piece otherwise,
    nothing per piece with ``--quiet``."""

    def __init__(self, total: int, to_run: int, quiet: bool, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.to_run = total, to_run
        self.done = self.failed = 0
        self.skipped = total - to_run
        self.t0 = time.perf_counter()
        self.quiet = quiet
        self.bar = not quiet and self.stream.isatty()

    def eta(self) -> str:
        from demixer.io.limits import format_duration

        finished = self.done + self.failed
        if not finished:
            return "?"
        rate = (time.perf_counter() - self.t0) / finished
        return format_duration(rate * (self.to_run - finished))

    def __call__(self, result: dict) -> None:
        if result["status"] == "done":
            self.done += 1
        else:
            self.failed += 1
        finished = self.skipped + self.done + self.failed
        if self.bar:
            width = 30
            n = int(width * finished / max(1, self.total))
            self.stream.write(f"\r[{'#' * n}{'-' * (width - n)}] {finished}/{self.total} pieces  "
                              f"{self.failed} failed  ETA {self.eta()}   ")
            if finished == self.total:
                self.stream.write("\n")
        elif not self.quiet:
            what = (f"done in {result.get('seconds', 0):.1f} s" if result["status"] == "done"
                    else f"failed: {result.get('reason')}")
            self.stream.write(f"demixer: batch: [{finished}/{self.total}] {result['piece']} {what} "
                              f"(ETA {self.eta()})\n")
        self.stream.flush()


# ----------------------------------------------------------------------------------------- summary
def summary_rows(results: list[dict]) -> list[dict]:
    """Rows of summary.csv: per piece and source (with BSS Eval), per piece mean, failures; then the
    mean per source name over the pieces and over every (piece, source)."""
    rows: list[dict] = []
    by_source: dict[str, list[dict]] = {}
    every: list[dict] = []
    for r in results:
        total = (((r.get("report") or {}).get("timings") or {}).get("total") or {}).get("wall_s")
        base = {"piece": r["piece"], "status": r["status"], "seconds": total, "reason": r.get("reason", "")}
        evaluation = ((r.get("report") or {}).get("batch") or {}).get("evaluation")
        if r["status"] != "done" or not evaluation:
            rows.append({**base, "source": ""})
            continue
        if "error" in evaluation:
            rows.append({**base, "source": "", "reason": f"evaluation: {evaluation['error']}"})
            continue
        for name, m in evaluation["sources"].items():
            rows.append({**base, "source": name, **m})
            by_source.setdefault(name, []).append(m)
            every.append(m)
        rows.append({**base, "source": "mean", **evaluation["mean"]})
    for name, ms in by_source.items():
        rows.append({"piece": "mean", "source": name, "status": f"{len(ms)} pieces", **_mean(ms)})
    if every:
        rows.append({"piece": "mean", "source": "all", "status": f"{len(every)} sources", **_mean(every)})
    return rows


def _mean(ms: list[dict]) -> dict:
    return {k: sum(m[k] for m in ms) / len(ms) for k in ("sdr", "sir", "sar")}


def write_summary(path: Path, rows: list[dict]) -> None:
    cols = ("piece", "source", "status", "sdr", "sir", "sar", "seconds", "reason")
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if r.get(c) is None else (f"{r[c]:.3f}" if isinstance(r.get(c), float) else r[c])
                        for c in cols])
    os.replace(tmp, path)


def format_table(rows: list[dict]) -> list[str]:
    """The BSS Eval table (pieces with an evaluation, and the means)."""
    scored = [r for r in rows if "sdr" in r]
    if not scored:
        return []
    w = max(12, *(len(r["piece"]) + 2 for r in scored))
    s = max(10, *(len(r["source"]) + 2 for r in scored))
    lines = [f"{'piece':<{w}}{'source':<{s}}{'SDR':>8}{'SIR':>8}{'SAR':>8}"]
    last = None
    for r in scored:
        shown = r["piece"] if r["piece"] != last else ""
        last = r["piece"]
        lines.append(f"{shown:<{w}}{r['source']:<{s}}{r['sdr']:8.2f}{r['sir']:8.2f}{r['sar']:8.2f}")
    return lines


# ----------------------------------------------------------------------------------------- command
def _batch_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="demixer batch", allow_abbrev=False,
        description="Separate every piece of a corpus with `demixer separate`, on a dask.distributed cluster.",
        epilog="Any other option is passed to `demixer separate` for every piece (see demixer separate --help).",
    )
    p.add_argument("input", help="a folder (piece folders, or audio files with a score of the same name beside them) "
                                 "or a manifest CSV audio,score[,out_name]")
    p.add_argument("--out", required=True, help="output folder: OUT/<piece>/<group>.wav, report.json; summary.csv")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="worker processes of the local cluster (default: one per CPU)")
    p.add_argument("--memory-limit", default=None,
                   help="memory limit per local worker, bytes or with K/M/G (default: the machine's memory / workers)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="use an existing dask cluster (e.g. tcp://host:8786)")
    p.add_argument("--reference", metavar="DIR", help="reference stems: DIR/<piece>/<group>.wav (BSS Eval)")
    p.add_argument("--quiet", action="store_true", help="no progress lines (failures and the summary still print)")
    return p


def _cluster(args, n_workers: int | None):
    """(client, cluster or None): the existing cluster at --scheduler, or a LocalCluster."""
    import logging

    from distributed import Client, LocalCluster

    if args.scheduler:
        try:
            return Client(args.scheduler, timeout="20s"), None
        except OSError as exc:
            raise CLIError(f"{args.scheduler}: cannot reach the dask scheduler ({exc})") from None
    import psutil

    from demixer.io.limits import _parse_bytes

    n = n_workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    limit = psutil.virtual_memory().total // n
    if args.memory_limit:
        limit = _parse_bytes(args.memory_limit)
        if limit is None:
            raise CLIError(f"--memory-limit: expected bytes like 4G or 4000M, got {args.memory_limit!r}")
    import dask

    # Two of dask's worker defaults cost the pieces CPU (measured, benchmarks/bench_batch.py):
    # - the statistical profiler samples every thread's stack 100 times a second (~10 % of a piece);
    # - MALLOC_TRIM_THRESHOLD_=65536 in the workers' environment turns off glibc's adaptive mmap
    #   threshold, so every large array is a fresh mmap and page-faults anew: 7× the page faults and
    #   +36 % CPU on a loop of separate. Pieces run one at a time, so memory is reused, not hoarded.
    with dask.config.set({"distributed.worker.profile.enabled": False,
                          "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, memory_limit=limit, dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
    return Client(cluster), cluster


def cmd_batch(argv: list[str]) -> int:
    args, rest = _batch_parser().parse_known_args(argv)
    try:
        import distributed  # noqa: F401
    except ImportError:
        return _fail(INSTALL_HINT)
    # The rest is separate's: check it once, here, with separate's own parser (one line, exit 2).
    try:
        ns = _separate_parser().parse_args(["MIX", "--score", "SCORE", *rest])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    if ns.score != "SCORE" or ns.report is not None or ns.out != _separate_parser().get_default("out"):
        return _fail("--score, --out and --report are set by batch for each piece")
    try:
        settings = _settings_from(ns)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        pieces = discover(Path(args.input), Path(args.reference).resolve() if args.reference else None, out.resolve())
    except CLIError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{args.out}: cannot create the output folder ({exc.strerror or exc})")
    st = settings.stft
    job = Job(out=str(out.resolve()), options=tuple(rest), stft=(st.n_fft, st.hop, st.sr),
              arguments=piece_arguments(rest))
    return run_batch(pieces, job, args)


def run_batch(pieces: list[Piece], job: Job, args) -> int:
    out = Path(job.out)
    shutil.rmtree(out / PARTIAL, ignore_errors=True)  # left by a batch that was killed
    results: dict[str, dict] = {}
    to_run: list[tuple[Piece, bool]] = []
    for piece in pieces:
        if piece.problem:
            results[piece.name] = {"piece": piece.name, "status": "failed", "reason": piece.problem}
            continue
        report = finished_report(piece, out, job.arguments)
        if report is None:
            to_run.append((piece, False))
            continue
        results[piece.name] = {"piece": piece.name, "status": "done", "report": report, "skipped": True,
                               "seconds": (report.get("timings") or {}).get("total", {}).get("wall_s")}
        evaluation = (report.get("batch") or {}).get("evaluation") or {}
        if piece.reference and evaluation.get("reference") != piece.reference:
            to_run.append((piece, True))  # finished, but not yet evaluated against this reference
    # longest first: fewer idle workers at the end
    to_run.sort(key=lambda pe: (pe[1], -_size(pe[0].audio)))
    progress = BatchProgress(len(pieces), sum(1 for _, e in to_run if not e), args.quiet)
    for r in results.values():
        if r["status"] == "failed":
            progress(r)
    t0 = time.perf_counter()
    if to_run:
        code = _run_on_cluster(to_run, job, args, results, progress)
        if code is not None:
            return code
    wall = time.perf_counter() - t0
    ordered = [results[p.name] for p in pieces]
    rows = summary_rows(ordered)
    write_summary(out / SUMMARY, rows)
    shutil.rmtree(out / PARTIAL, ignore_errors=True)
    _print_summary(ordered, rows, wall, out)
    return 1 if any(r["status"] != "done" for r in ordered) else 0


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _run_on_cluster(to_run, job: Job, args, results: dict, progress: BatchProgress) -> int | None:
    from distributed import as_completed

    try:
        client, cluster = _cluster(args, args.workers)
    except CLIError as exc:
        return _fail(str(exc))
    try:
        futures = {}
        for piece, evaluate_only in to_run:
            key = f"demixer-{'evaluate' if evaluate_only else 'separate'}-{piece.name}-{uuid.uuid4().hex[:8]}"
            fut = client.submit(run_piece, piece, job, evaluate_only, key=key, pure=False)
            futures[fut] = (piece, evaluate_only)
        for fut in as_completed(futures):
            piece, evaluate_only = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # the task itself never raises: the worker died (KilledWorker) or similar
                result = {"piece": piece.name, "status": "failed",
                          "reason": f"{piece.audio}: the worker running it died ({type(exc).__name__}: {exc})"}
            if evaluate_only:
                if result["status"] == "done":
                    results[piece.name]["report"] = result["report"]
                continue
            results[piece.name] = result
            progress(result)
    except KeyboardInterrupt:
        return _fail("interrupted; finished pieces are kept: run the same command again to resume")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return None


def _print_summary(results: list[dict], rows: list[dict], wall: float, out: Path) -> None:
    from demixer.io.limits import format_duration

    done = [r for r in results if r["status"] == "done"]
    skipped = sum(1 for r in done if r.get("skipped"))
    failed = [r for r in results if r["status"] != "done"]
    ran = [r for r in done if not r.get("skipped")]
    per = ""
    if ran:
        sep = [((r.get("report") or {}).get("timings") or {}).get("total", {}).get("wall_s") or 0.0 for r in ran]
        ev = [(((r.get("report") or {}).get("batch") or {}).get("evaluation") or {}).get("seconds") or 0.0 for r in ran]
        per = f"; per piece on a worker: separate {sum(sep) / len(ran):.1f} s"
        if any(ev):
            per += f", BSS Eval {sum(ev) / len(ran):.1f} s"
    print(f"batch: {len(results)} pieces: {len(done)} done ({skipped} already done), {len(failed)} failed; "
          f"{format_duration(wall)} wall{per}")
    for line in format_table(rows):
        print(line)
    for r in failed:
        print(f"failed: {r['piece']}: {r.get('reason')}")
    print(f"wrote {out / SUMMARY}")


__all__ = ["Piece", "Job", "discover", "run_piece", "cmd_batch", "finished_report", "summary_rows"]
