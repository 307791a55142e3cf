"""A corpus of bad inputs — recordings, scores and project files — generated here, run through the CLI
(``demixer separate``; projects through the headless loader ``load_project``) and through the window's
loaders (``MainWindow.open_audio`` / ``open_score`` / ``ProjectIO.open_project``, questions answered by
the test). Every rejected case must give a clear error naming the file and the reason — one line and exit
status 2 in the CLI, a dialog in the GUI — and never a traceback or a crash; accepted edge cases (many
channels, 192 kHz, silence, very long with a warning, …) must simply work.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from demixer.cli.main import main
from demixer.engine.projects import project_from_audio
from demixer.io.errors import InputError
from demixer.io.project_file import load_project, read_project_file, save_project

SR = 8000
SCORE_CSV = "onset_s,offset_s,pitch,group\n0.0,1.0,60,lh\n0.5,1.8,72,rh\n"


@dataclass
class Case:
    name: str
    kind: str  # "audio", "score" or "project"
    build: Callable[[Path, dict], Path]  # (folder, the good files) → the file to open
    reason: str | None  # expected in the error; None: the input is accepted
    warn: str | None = None  # CLI warning expected for an accepted input
    env: dict = field(default_factory=dict)
    gui_answers: dict = field(default_factory=dict)  # ProjectIO.ask answers by question kind

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


# ============================================================================================ helpers
def tone(path, seconds=2.0, sr=SR, channels=1, value=None, subtype="FLOAT", fmt=None):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.2 * np.sin(2 * np.pi * 262 * t) + 0.1 * np.sin(2 * np.pi * 523 * t)
    if value is not None:
        x = np.full_like(t, value)
    data = np.repeat(x[:, None], channels, axis=1).astype(np.float32)
    sf.write(path, data, sr, subtype=subtype, format=fmt)
    return path


def write(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def midi_file(path: Path, notes=((60, 0, 480),), tempo_only=False) -> Path:
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    if not tempo_only:
        t = 0
        for pitch, on, off in notes:
            track.append(mido.Message("note_on", note=pitch, velocity=80, time=on - t))
            track.append(mido.Message("note_off", note=pitch, velocity=0, time=off - on))
            t = off
    mid.save(path)
    return path


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def zip_of(path: Path, items: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are one of the hostile cases
        for name, data in items:
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def npz_of(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def variant(good: dict, name: str, meta=None, arrays=None, drop=(), extra=()) -> Path:
    """The good project with project.json changed by ``meta(dict)``, arrays by ``arrays(dict)``."""
    m = members(good["project"])
    if meta is not None:
        m["project.json"] = json.dumps(meta(json.loads(m["project.json"]))).encode()
    if arrays is not None:
        a = dict(read_project_file(good["project"]).arrays)
        m["arrays.npz"] = npz_of(**arrays(a))
    for k in drop:
        m.pop(k)
    return zip_of(good["dir"] / name, list(m.items()) + list(extra))


def project_elsewhere(good: dict, folder: Path) -> tuple[Path, Path]:
    """A copy of the good recording and a project for it, in ``folder``."""
    folder.mkdir()
    audio = folder / "take.wav"
    shutil.copy(good["audio"], audio)
    p = load_project(good["project"]).project
    from demixer.io.audio import read_audio

    p.audio = read_audio(audio)
    save_project(p, folder / "take.demix")
    return folder / "take.demix", audio


def lying_npy_header(good: dict) -> Path:
    """An npz whose W.npy header declares a far bigger shape than its data."""
    a = dict(read_project_file(good["project"]).arrays)
    raw = io.BytesIO()
    np.lib.format.write_array(raw, a["W"])
    data = raw.getvalue()
    header = np.lib.format.header_data_from_array_1_0(a["W"])
    header["shape"] = (10**9, 10**6)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    hlen = len(np.lib.format.magic(1, 0)) + struct.unpack("<H", data[8:10])[0] + 2
    fake = buf.getvalue() + data[hlen:]
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as zf:
        for k, v in a.items():
            if k == "W":
                zf.writestr("W.npy", fake)
            else:
                b = io.BytesIO()
                np.lib.format.write_array(b, v)
                zf.writestr(f"{k}.npy", b.getvalue())
    m = members(good["project"])
    m["arrays.npz"] = npz.getvalue()
    return zip_of(good["dir"] / "lying.demix", list(m.items()))


def bomb(good: dict, name: str, inner: bool) -> Path:
    """A member declaring 64 MiB of zeros (a few KiB compressed), in the archive or in its npz."""
    m = members(good["project"])
    out = good["dir"] / name
    if inner:
        npz = io.BytesIO()
        with (
            zipfile.ZipFile(io.BytesIO(m["arrays.npz"])) as src,
            zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as dst,
        ):
            for info in src.infolist():
                dst.writestr(info.filename, src.read(info))
            with dst.open("zeros.npy", "w", force_zip64=True) as f:
                for _ in range(64):
                    f.write(bytes(1 << 20))
        m["arrays.npz"] = npz.getvalue()
        return zip_of(out, list(m.items()))
    zip_of(out, list(m.items()))
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w", force_zip64=True) as f:
        for _ in range(64):
            f.write(bytes(1 << 20))
    return out


SMALL_CAP = {"DEMIXER_MAX_PROJECT_BYTES": str(16 * 1024**2)}


# ============================================================================================ the corpus
def _audio_cases() -> list[Case]:
    A = "audio"
    return [
        Case("empty file", A, lambda d, g: write(d / "empty.wav", b""), "the file is empty"),
        Case("header only", A, lambda d, g: tone(d / "hdr.wav", seconds=0), "audio is empty"),
        Case(
            "truncated header", A, lambda d, g: write(d / "cut.wav", g["audio"].read_bytes()[:20]), "not an audio file"
        ),
        Case("text named .wav", A, lambda d, g: write(d / "text.wav", "this is not audio"), "not an audio file"),
        Case(
            "PNG named .flac",
            A,
            lambda d, g: write(d / "img.flac", b"\x89PNG\r\n\x1a\n" + bytes(200)),
            "not an audio file",
        ),
        Case(
            "random bytes .mp3",
            A,
            lambda d, g: write(d / "noise.mp3", np.random.default_rng(1).bytes(4000)),
            "not an audio file",
        ),
        Case(
            "truncated FLAC", A, lambda d, g: write(d / "cut.flac", g["flac"].read_bytes()[:600]), "not an audio file"
        ),
        Case(
            "MIDI file as audio",
            A,
            lambda d, g: shutil.copy(g["midi"], d / "score_as_audio.mid") and d / "score_as_audio.mid",
            "not an audio file",
        ),
        Case("a folder", A, lambda d, g: (d / "folder.wav").mkdir() or d / "folder.wav", "is a folder"),
        Case("missing file", A, lambda d, g: d / "missing.wav", "file not found"),
        Case("NaN samples", A, lambda d, g: tone(d / "nan.wav", value=np.nan), "NaN or infinite"),
        Case("Inf samples", A, lambda d, g: tone(d / "inf.wav", value=np.inf), "NaN or infinite"),
        Case("1 sample", A, lambda d, g: tone(d / "one.wav", seconds=1 / SR), "too short to analyse"),
        Case("shorter than one frame", A, lambda d, g: tone(d / "short.wav", seconds=0.02), "too short to analyse"),
        # accepted edge cases
        Case("10 channels", A, lambda d, g: tone(d / "ten.wav", channels=10), None),
        Case("192 kHz", A, lambda d, g: tone(d / "hi.wav", seconds=1.0, sr=192_000), None),
        Case("silent", A, lambda d, g: tone(d / "silent.wav", value=0.0), None, warn="silent"),
        Case(
            "very long",
            A,
            lambda d, g: tone(d / "long.wav"),
            None,
            warn="very long recording",
            env={"DEMIXER_MEMORY_LIMIT": "1M"},
            gui_answers={"long_audio": "range"},
        ),
        Case("truncated data", A, lambda d, g: write(d / "half.wav", g["audio"].read_bytes()[:20_000]), None),
        Case("WAV named .mp3", A, lambda d, g: write(d / "really_wav.mp3", g["audio"].read_bytes()), None),
    ]


def _score_cases() -> list[Case]:
    S = "score"
    return [
        Case(
            "random bytes .mid",
            S,
            lambda d, g: write(d / "noise.mid", np.random.default_rng(2).bytes(300)),
            "not a valid MIDI file",
        ),
        Case("empty .mid", S, lambda d, g: write(d / "empty.mid", b""), "not a valid MIDI file"),
        Case(
            "truncated MIDI", S, lambda d, g: write(d / "cut.mid", g["midi"].read_bytes()[:30]), "not a valid MIDI file"
        ),
        Case("MIDI without notes", S, lambda d, g: midi_file(d / "tempo.mid", tempo_only=True), "no notes"),
        Case("binary .csv", S, lambda d, g: write(d / "bin.csv", bytes(range(256)) * 4), "not a CSV text file"),
        Case(
            "CSV without header", S, lambda d, g: write(d / "nohdr.csv", "1,2,3\n4,5,6\n"), "no recognised CSV header"
        ),
        Case(
            "CSV NaN onset",
            S,
            lambda d, g: write(d / "nan.csv", "onset_s,offset_s,pitch,group\nnan,1,60,a\n"),
            "not a finite number",
        ),
        Case(
            "CSV pitch 300",
            S,
            lambda d, g: write(d / "p300.csv", "onset_s,offset_s,pitch,group\n0,1,300,a\n"),
            "outside 0..127",
        ),
        Case(
            "CSV negative onset",
            S,
            lambda d, g: write(d / "neg.csv", "onset_s,offset_s,pitch,group\n-1,1,60,a\n"),
            "negative onset",
        ),
        Case(
            "CSV offset before onset",
            S,
            lambda d, g: write(d / "back.csv", "onset_s,offset_s,pitch,group\n1,0.5,60,a\n"),
            "is before onset",
        ),
        Case(
            "CSV wrong field count",
            S,
            lambda d, g: write(d / "fields.csv", "onset_s,offset_s,pitch,group\n0,1,60,a,b,c\n"),
            "expected 4 fields",
        ),
        Case("CSV header only", S, lambda d, g: write(d / "hdronly.csv", "onset_s,offset_s,pitch,group\n"), "no notes"),
        Case("score as .txt", S, lambda d, g: write(d / "score.txt", SCORE_CSV), "unsupported score format"),
        Case("missing score", S, lambda d, g: d / "gone.csv", "file not found"),
        Case(
            "notes after the end",
            S,
            lambda d, g: write(d / "late.csv", "onset_s,offset_s,pitch,group\n10,11,60,a\n"),
            "no notes fall within",
        ),
        # accepted: partly past the end (clipped, with a warning)
        Case(
            "partly past the end",
            S,
            lambda d, g: write(d / "partly.csv", "onset_s,offset_s,pitch,group\n0,1,60,a\n1.5,9,72,b\n20,21,64,a\n"),
            None,
            warn="runs past the end",
        ),
    ]


def _project_cases() -> list[Case]:
    P = "project"

    def v(name, **kw):
        return lambda d, g: variant(g, name, **kw)

    def traversal(d, g):
        return variant(g, "traversal.demix", extra=[("../../escape.txt", b"x")])

    def absolute_member(d, g):
        return variant(g, "absolute.demix", extra=[("/etc/evil", b"x")])

    def duplicate(d, g):
        m = members(g["project"])
        return zip_of(g["dir"] / "dup.demix", list(m.items()) + [("project.json", m["project.json"])])

    def many_members(d, g):
        return variant(g, "many.demix", extra=[(f"pad{i}.txt", b"") for i in range(100)])

    def deep_json(d, g):
        m = members(g["project"])
        m["project.json"] = b"[" * 100_000 + b"]" * 100_000
        return zip_of(g["dir"] / "deep.demix", list(m.items()))

    def audio_gone(d, g):
        path, audio = project_elsewhere(g, d / "gone")
        audio.unlink()
        return path

    def audio_changed(d, g):
        path, audio = project_elsewhere(g, d / "changed")
        tone(audio, seconds=2.0, value=0.05)
        return path

    def audio_garbage(d, g):
        path, audio = project_elsewhere(g, d / "garbage")
        audio.write_bytes(b"not audio any more")
        return path

    def a_folder(d, g):
        (d / "folder.demix").mkdir()
        return d / "folder.demix"

    def truncated(d, g):
        data = g["project"].read_bytes()
        return write(d / "truncated.demix", data[: len(data) // 2])

    def newer(m):
        return {**m, "schema_version": 99}

    def no_version(m):
        return {k: x for k, x in m.items() if k != "schema_version"}

    def pitch_text(m):
        return {**m, "components": [{**m["components"][0], "pitch": "C4"}] + m["components"][1:]}

    def nfft_text(m):
        return {**m, "stft": {**m["stft"], "n_fft": "big"}}

    def hop_changed(m):
        return {**m, "stft": {**m["stft"], "hop": m["stft"]["hop"] // 2}}

    def tol_inf(m):
        return {**m, "score": {**m["score"], "tol_pitch": 1e999}}

    def notes_not_list(m):
        return {**m, "notes": {"onset": 0}}

    def pickled(a):
        return {**a, "H": np.array([{"evil": True}], dtype=object)}

    def nan_h(a):
        return {**a, "H": np.full_like(a["H"], np.nan)}

    def negative_w(a):
        return {**a, "W": -a["W"] - 1}

    def short_h(a):
        return {**a, "H": a["H"][:, :-2], "H0": a["H0"][:, :-2], "allow_H": a["allow_H"][:, :-2]}

    def shape_n(m):
        return {**m, "shape": {**m["shape"], "N": m["shape"]["N"] - 2}}

    def float_mask(a):
        return {**a, "allow_W": a["allow_W"].astype(np.float32)}

    def complex_w(a):
        return {**a, "W": a["W"].astype(np.complex64)}

    def garbage_view(d, g):
        m = members(g["project"])
        m["view.json"] = b"\xff\xfe not json"
        return zip_of(g["dir"] / "badview.demix", list(m.items()))

    def v0(d, g):
        folder = d / "v0"
        folder.mkdir()
        shutil.copy(g["audio"], folder / "old.wav")
        good = read_project_file(g["project"])
        meta = good.meta
        k = good.arrays
        v0_meta = {
            "version": 0,
            "audio": "old.wav",
            "stft": {x: meta["stft"][x] for x in ("n_fft", "hop", "sr")},
            "model": "nmf",
            "n_iter": 5,
            "components": [[c["name"], c["pitch"], c["kind"], c["source"]] for c in meta["components"]],
            "sources": [s["name"] for s in meta["sources"]],
            "notes": [],
        }
        arrays = npz_of(W=k["W"], H=k["H"], allow_W=k["allow_W"], allow_H=k["allow_H"])
        return zip_of(folder / "old.demix", [("project.json", json.dumps(v0_meta).encode()), ("arrays.npz", arrays)])

    return [
        Case("empty file", P, lambda d, g: write(d / "empty.demix", b""), "empty"),
        Case("text file", P, lambda d, g: write(d / "text.demix", "hello"), "not a zip archive"),
        Case("truncated archive", P, truncated, "not a zip archive, or a truncated one"),
        Case("a folder", P, a_folder, "is a folder"),
        Case("missing file", P, lambda d, g: d / "nowhere.demix", "file not found"),
        Case("path traversal member", P, traversal, "unsafe member name"),
        Case("absolute member name", P, absolute_member, "unsafe member name"),
        Case("duplicate member", P, duplicate, "appears twice"),
        Case("hundred members", P, many_members, "members"),
        Case("zip bomb", P, lambda d, g: bomb(g, "bomb.demix", inner=False), "over the limit", env=SMALL_CAP),
        Case("npz bomb", P, lambda d, g: bomb(g, "npzbomb.demix", inner=True), "over the limit", env=SMALL_CAP),
        Case("lying npy header", P, lambda d, g: lying_npy_header(g), "its header declares shape"),
        Case("pickle in npz", P, v("pickle.demix", arrays=pickled), "pickle"),
        Case("no project.json", P, v("nojson.demix", drop=["project.json"]), "missing member project.json"),
        Case("no arrays.npz", P, v("noarrays.demix", drop=["arrays.npz"]), "missing member arrays.npz"),
        Case(
            "project.json not JSON",
            P,
            lambda d, g: zip_of(
                g["dir"] / "notjson.demix",
                [("project.json", b"{oops"), ("arrays.npz", members(g["project"])["arrays.npz"])],
            ),
            "not valid JSON",
        ),
        Case("project.json a list", P, v("list.demix", meta=lambda m: [m]), "expected a JSON object"),
        Case("deeply nested JSON", P, deep_json, "not valid JSON"),
        Case("newer schema", P, v("newer.demix", meta=newer), "newer Demixer"),
        Case("no schema_version", P, v("noversion.demix", meta=no_version), "no schema_version"),
        Case("pitch as text", P, v("pitchtext.demix", meta=pitch_text), "components[0].pitch must be"),
        Case("n_fft as text", P, v("nfft.demix", meta=nfft_text), "stft.n_fft must be"),
        Case("infinite tolerance", P, v("inf.demix", meta=tol_inf), "score.tol_pitch must be a finite number"),
        Case("notes not a list", P, v("notes.demix", meta=notes_not_list), "notes must be a list"),
        Case("NaN in H", P, v("nan.demix", arrays=nan_h), "H contains NaN"),
        Case("negative W", P, v("neg.demix", arrays=negative_w), "W contains negative values"),
        Case("float mask", P, v("floatmask.demix", arrays=float_mask), "allow_W must be boolean"),
        Case("complex W", P, v("complex.demix", arrays=complex_w), "unsupported dtype"),
        Case(
            "arrays shorter than the audio",
            P,
            v("short.demix", arrays=short_h, meta=shape_n),
            "do not fit the recording",
        ),
        Case("arrays unlike project.json", P, v("unlike.demix", arrays=short_h), "but project.json says"),
        Case("STFT changed under the arrays", P, v("hop.demix", meta=hop_changed), "do not fit the recording"),
        Case("recording deleted", P, audio_gone, "was not found", gui_answers={}),
        Case(
            "recording replaced",
            P,
            audio_changed,
            "is not the one the project was saved with",
            gui_answers={"audio_mismatch": "cancel"},
        ),
        Case(
            "recording now garbage",
            P,
            audio_garbage,
            "is not the one the project was saved with",
            gui_answers={"audio_mismatch": "cancel"},
        ),
        # accepted
        Case("garbage view.json", P, garbage_view, None),
        Case("schema 0 project", P, v0, None),
    ]


CASES = _audio_cases() + _score_cases() + _project_cases()
REJECTED = [c for c in CASES if c.reason is not None]


def test_the_corpus_is_large_and_every_file_is_distinct():
    names = [str(c) for c in CASES]
    assert len(names) == len(set(names))
    counts = {k: sum(c.kind == k for c in CASES) for k in ("audio", "score", "project")}
    print(
        f"\nbad-input corpus: {len(CASES)} cases ({len(REJECTED)} rejected, {len(CASES) - len(REJECTED)} accepted); "
        f"{counts}"
    )
    assert len(REJECTED) >= 60


# ============================================================================================ fixtures
@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    """The good files the corpus is made from: a recording (WAV, FLAC), a score (CSV, MIDI), a project."""
    d = tmp_path_factory.mktemp("good")
    audio = tone(d / "good.wav")
    flac = tone(d / "good.flac", subtype="PCM_16")
    score = write(d / "good.csv", SCORE_CSV)
    midi = midi_file(d / "good.mid", notes=((60, 0, 960), (72, 960, 1700)))
    from demixer.engine.separation import SeparationSettings
    from demixer.io.audio import read_audio
    from demixer.io.score import read_score
    from demixer.model.project import RunRecord

    p = project_from_audio(read_audio(audio), read_score(score), SeparationSettings())
    p.add_run(RunRecord("#1 NMF", "nmf", [2.0, 1.0], 2))
    save_project(p, d / "good.demix", {"log_frequency": False})
    return {"dir": d, "audio": audio, "flac": flac, "score": score, "midi": midi, "project": d / "good.demix"}


@pytest.fixture()
def case_file(request, good, tmp_path, monkeypatch):
    case: Case = request.param
    for k, val in case.env.items():
        monkeypatch.setenv(k, val)
    folder = tmp_path / "case"
    folder.mkdir()
    path = Path(case.build(folder, good))
    return case, path


def by_kind(*kinds):
    return [pytest.param(c, id=str(c)) for c in CASES if c.kind in kinds]


# ============================================================================================ the CLI
def _cli(argv, capsys) -> tuple[int, list[str]]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    return code, [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize("case_file", by_kind("audio", "score"), indirect=True)
def test_cli_separate(case_file, good, tmp_path, capsys):
    case, path = case_file
    argv = (
        ["separate", path, "--score", good["score"]]
        if case.kind == "audio"
        else ["separate", good["audio"], "--score", path]
    )
    code, lines = _cli([*argv, "--out", tmp_path / "out", "--iters", "2", "--quiet"], capsys)
    errors = [x for x in lines if x.startswith("demixer: error:")]
    if case.reason is None:
        assert code == 0, lines
        assert not errors
        if case.warn:
            assert any(case.warn in x and str(path) in x for x in lines), lines
        assert list((tmp_path / "out").glob("*.wav"))
        return
    assert code == 2, lines
    assert len(errors) == 1 and lines[-1] == errors[0], lines  # exactly one error line, last
    assert str(path) in errors[0] and case.reason in errors[0], (case.reason, errors[0])
    assert all(x.startswith("demixer: warning:") for x in lines[:-1]), lines


@pytest.mark.parametrize("case_file", by_kind("project"), indirect=True)
def test_headless_project_loader(case_file):
    case, path = case_file
    if case.reason is None:
        loaded = load_project(path)
        assert loaded.project.n_components > 0
        return
    with pytest.raises(InputError) as info:
        load_project(path)
    exc = info.value
    assert exc.path == str(path) and case.reason in exc.reason, (case.reason, exc.reason)
    assert "\n" not in str(exc) and "Traceback" not in str(exc)
    assert str(exc) == f"{path}: {exc.reason}"


# ============================================================================================ the GUI
@pytest.fixture(scope="module")
def gui(qapp, tmp_path_factory, good):
    """One window for the whole corpus (QSettings and recovery files in temporary folders)."""
    from PySide6.QtCore import QSettings

    folder = tmp_path_factory.mktemp("gui-settings")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    qapp.setOrganizationName("DemixerBadInputTests")
    old = os.environ.get("DEMIXER_RECOVERY_DIR")
    os.environ["DEMIXER_RECOVERY_DIR"] = str(folder / "recovery")
    from demixer.gui.main_window import MainWindow

    w = MainWindow()
    w.show()
    assert w.open_audio(good["audio"], good["score"])
    yield w
    w.stop_runs()
    w.project_io.ask_async = lambda kind, title, text, info, buttons, default, then: then("discard")
    w.close()
    w.deleteLater()
    if old is None:
        os.environ.pop("DEMIXER_RECOVERY_DIR", None)
    else:
        os.environ["DEMIXER_RECOVERY_DIR"] = old


@pytest.fixture()
def window(gui, good, qtbot):
    """The corpus window on the good recording, with every question answered by the test."""
    asked = []
    io = gui.project_io

    def ask(kind, title, text, informative="", buttons=(), default=None):
        asked.append(kind)
        return gui._answers.get(kind, "cancel")

    io.ask = ask
    io.ask_audio_file = lambda project, expected: asked.append("audio_file") or None
    gui._answers = {"long_audio": "all"}
    if gui.project is None or gui.project.audio.path != str(good["audio"]) or gui.project_io.path:
        assert gui.open_audio(good["audio"], good["score"])
    gui.errors.clear()
    asked.clear()
    gui._answers = {}
    gui._asked = asked
    yield gui
    if gui.last_dialog is not None:
        gui.last_dialog.close()
        gui.last_dialog = None


def _gui_open(window, case: Case, path: Path, good) -> bool:
    window._answers = dict(case.gui_answers)
    if case.kind == "audio":
        return window.open_audio(path)
    if case.kind == "score":
        return window.open_score(path)
    return window.project_io.open_project(path)


@pytest.mark.parametrize("case_file", by_kind("audio", "score", "project"), indirect=True)
def test_gui_loaders(case_file, window, good, qtbot):
    case, path = case_file
    before = window.project
    ok = _gui_open(window, case, path, good)
    if case.reason is None:
        assert ok, window.errors
        assert window.project is not before and not window.errors
        return
    assert not ok
    assert window.project is before  # the current project stays
    assert len(window.errors) == 1, window.errors
    message = window.errors[0]
    assert str(path) in message and case.reason in message, (case.reason, message)
    box = window.last_dialog
    assert box is not None and box.isVisible() and "Traceback" not in box.informativeText()
    assert path.name in box.text() or str(path) in box.informativeText()
    if case.kind == "score":  # and through "open audio with this score" too
        window.errors.clear()
        assert not window.open_audio(good["audio"], path)
        assert window.project is before and str(path) in window.errors[-1] and case.reason in window.errors[-1]
    qtbot.wait(1)  # the event loop still turns: nothing is stuck


@pytest.mark.parametrize("name", ["random bytes .mp3", "NaN samples", "1 sample", "truncated FLAC"])
def test_cli_process_prints_exactly_one_line(name, good, tmp_path):
    """In a real process, where native libraries write to file descriptor 2 too (libmpg123 does)."""
    import subprocess
    import sys

    case = next(c for c in CASES if c.kind == "audio" and c.name == name)
    folder = tmp_path / "case"
    folder.mkdir()
    path = case.build(folder, good)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "demixer",
            "separate",
            str(path),
            "--score",
            str(good["score"]),
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("demixer: error:") and str(path) in lines[0] and case.reason in lines[0]
