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


def smpte_midi(path: Path, division: int, notes=((60, 0, 1000),)) -> Path:
    """A type-0 MIDI file with an SMPTE time division (bytes written by hand: mido writes the division
    as given, and 0x8000 / 0xE700 are what an adversarial tester found)."""
    events = b""
    t = 0
    for pitch, on, off in notes:
        events += bytes(mido.midifiles.midifiles.encode_variable_int(on - t)) + bytes([0x90, pitch, 80])
        events += bytes(mido.midifiles.midifiles.encode_variable_int(off - on)) + bytes([0x80, pitch, 0])
        t = off
    events += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IhhH", 6, 0, 1, division & 0xFFFF)
    data = header + b"MTrk" + struct.pack(">I", len(events)) + events
    return write(path, data)


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def symlink(path: Path, target: str) -> Path:
    path.symlink_to(target)
    return path


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.write(b"onset_s,offset_s,pitch,group\n")
        f.truncate(size)
    return path


def lying_json_header(good: dict, inflated: int) -> Path:
    """project.json whose data inflates to ``inflated`` bytes while its zip header declares 1000."""
    m = members(good["project"])
    out = good["dir"] / "lying_json.demix"
    zip_of(out, [(k, v) for k, v in m.items() if k != "project.json"])
    body = m["project.json"] + b" " * (inflated - len(m["project.json"]))
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("project.json", body)
    data = bytearray(out.read_bytes())
    # patch the declared uncompressed size (local header and central directory) of project.json to 1000
    name = b"project.json"
    for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        i = 0
        while (i := data.find(sig, i)) >= 0:
            local = sig == b"PK\x03\x04"
            at = i + (26 if local else 28)
            name_len = struct.unpack("<H", data[at : at + 2])[0]
            start = i + (30 if local else 46)
            if data[start : start + name_len] == name:
                data[i + size_at : i + size_at + 4] = struct.pack("<I", 1000)
            i += 4
    out.write_bytes(bytes(data))
    return out


def huge_w_npz(good: dict, rows: int) -> Path:
    """arrays.npz whose W is ``rows`` × R zeros (a few KiB deflated, gigabytes when read)."""
    a = dict(read_project_file(good["project"]).arrays)
    R = a["W"].shape[1]
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, v in a.items():
            with zf.open(f"{k}.npy", "w", force_zip64=True) as f:
                if k != "W":
                    np.lib.format.write_array(f, v)
                    continue
                header = {"descr": "<f4", "fortran_order": False, "shape": (rows, R)}
                np.lib.format.write_array_header_1_0(f, header)
                block = bytes(4 * R * 65536)
                for _ in range(rows // 65536):
                    f.write(block)
                f.write(bytes(4 * R * (rows % 65536)))
    m = members(good["project"])
    m["arrays.npz"] = npz.getvalue()
    return zip_of(good["dir"] / "huge_w.demix", list(m.items()))


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
        # issue 14 item 5: overflowing samples, absurd sample rates; item 8: a FIFO; issue 18 item 7
        Case("float32-max samples", A, lambda d, g: tone(d / "huge.wav", value=3.4e38), "beyond ±1000"),
        Case("1 Hz", A, lambda d, g: tone(d / "sr1.wav", seconds=600, sr=1), "sample rate 1 Hz is outside 1000 Hz"),
        Case("7 Hz", A, lambda d, g: tone(d / "sr7.wav", seconds=60, sr=7), "sample rate 7 Hz is outside 1000 Hz"),
        Case("100 Hz", A, lambda d, g: tone(d / "sr100.wav", sr=100), "sample rate 100 Hz is outside 1000 Hz"),
        Case("FIFO as audio", A, lambda d, g: fifo(d / "pipe.wav"), "not a regular file (a FIFO"),
        Case(
            "random bytes .flac",
            A,
            lambda d, g: write(d / "noise.flac", np.random.default_rng(1).bytes(20000)),
            "no known audio header",
        ),
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
        # issue 14 item 2: SMPTE divisions with 0 ticks per frame; items 3 and 8: not regular files, huge
        Case("SMPTE 0x8000", S, lambda d, g: smpte_midi(d / "smpte0.mid", 0x8000), "SMPTE time division 0x8000"),
        Case("SMPTE 0xE700", S, lambda d, g: smpte_midi(d / "smpte1.mid", 0xE700), "SMPTE time division 0xE700"),
        Case("FIFO score.csv", S, lambda d, g: fifo(d / "score.csv"), "not a regular file (a FIFO"),
        Case("FIFO score.mid", S, lambda d, g: fifo(d / "score.mid"), "not a regular file (a FIFO"),
        Case(
            "/dev/zero as .csv", S, lambda d, g: symlink(d / "zero.csv", "/dev/zero"), "not a regular file (a device"
        ),
        Case(
            "/dev/urandom as .mid",
            S,
            lambda d, g: symlink(d / "rnd.mid", "/dev/urandom"),
            "not a regular file (a device",
        ),
        Case("65 MiB sparse .csv", S, lambda d, g: sparse(d / "big.csv", 65 * 1024**2), "over the limit of 64 MiB"),
        Case("missing score", S, lambda d, g: d / "gone.csv", "file not found"),
        Case(
            "notes after the end",
            S,
            lambda d, g: write(d / "late.csv", "onset_s,offset_s,pitch,group\n10,11,60,a\n"),
            "no notes fall within",
        ),
        Case(
            "SMPTE 25 fps × 40 ticks",
            S,
            lambda d, g: smpte_midi(d / "smpte_ok.mid", 0xE728, notes=((60, 0, 500), (72, 500, 1500))),
            None,
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

    def n_iter_huge(m):
        return {**m, "run": {**m["run"], "n_iter": 10**12}}

    def long_name(m):
        return {**m, "components": [{**m["components"][0], "name": "x" * 1_000_000}] + m["components"][1:]}

    def many_runs(m):
        run = m["runs"][0]
        return {**m, "runs": [run] * 10_000}

    def long_curve(a):
        return {**a, "loss_0": np.ones(200_001)}

    def hop_one(m):
        return {**m, "stft": {**m["stft"], "hop": 1}}

    def consistent_hop_one(d, g):
        """hop = 1 with arrays that fit it: small on disk, a huge V once analysed."""
        pf = read_project_file(g["project"])
        meta = json.loads(members(g["project"])["project.json"])
        N = -(-meta["audio"]["frames"] * meta["stft"]["sr"] // meta["audio"]["sr"]) + 1
        R = pf.arrays["W"].shape[1]
        meta["stft"]["hop"] = 1
        meta["shape"]["N"] = N
        arrays = {k: v for k, v in pf.arrays.items() if k not in ("H", "H0", "allow_H")}
        arrays.update(H=np.zeros((R, N), np.float32), H0=np.zeros((R, N), np.float32), allow_H=np.ones((R, N), bool))
        m = members(g["project"])
        m["project.json"] = json.dumps(meta).encode()
        m["arrays.npz"] = npz_of(**arrays)
        return zip_of(g["dir"] / "hop1ok.demix", list(m.items()))

    return [
        # issue 14 item 9: what the window cannot show, and sizes that amplify memory before a refusal
        Case(
            "run.n_iter = 10**12", P, v("niter.demix", meta=n_iter_huge), "run.n_iter must be a whole number 1..100000"
        ),
        Case("1 MB component name", P, v("name.demix", meta=long_name), "text of at most 200 characters"),
        Case("10,000 runs", P, v("runs.demix", meta=many_runs), "a list of at most 1,000 items"),
        Case("loss curve of 200,001 points", P, v("curve.demix", arrays=long_curve), "a loss curve has at most"),
        Case("stft.hop = 1", P, v("hop1.demix", meta=hop_one), "do not fit the recording"),
        Case(
            "stft.hop = 1 with arrays that fit",
            P,
            consistent_hop_one,
            "more than the 64.0 MiB available",
            env={"DEMIXER_MACHINE_MEMORY": "64M"},
        ),
        Case(
            "project.json inflating past its header",
            P,
            lambda d, g: lying_json_header(g, 64 * 1024**2),
            "does not match its declared size",
        ),
        Case("W of 4 million rows", P, lambda d, g: huge_w_npz(g, 4_000_000), "frequency bins; at most 16,385"),
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


@pytest.mark.parametrize(
    "name", ["random bytes .mp3", "NaN samples", "1 sample", "truncated FLAC", "random bytes .flac", "7 Hz"]
)
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


# ============================================================================================ issue 14
# Each test below reproduces one numbered item of issue 14 with generated inputs (the corpus above holds
# items 2, 3, 5, 8 and 9 as cases: SMPTE, devices and FIFOs, overflowing audio and absurd rates, projects
# the window cannot show or whose sizes amplify memory).


def _separate(argv, capsys) -> tuple[int, list[str], str]:
    code = main(["separate", *[str(a) for a in argv]])
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    return code, [x for x in err.splitlines() if x.strip()], out


def _mix_of(folder: Path) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix == ".wav")
    return sum(sf.read(p, dtype="float64", always_2d=True)[0] for p in files)


def test_issue14_1_group_names_that_are_not_file_names(good, tmp_path, capsys):
    """300-character names (was: OSError "File name too long" and a second traceback) and names that
    collide after sanitising (was: one stem silently overwrote another, so they no longer added up)."""
    groups = ["g" * 300, "left hand", "left_hand", "left?hand", "LEFT HAND", ".", ".."]
    rows = "".join(f"{0.2 * i:.1f},{0.2 * i + 1.0:.1f},{60 + i},{g}\n" for i, g in enumerate(groups))
    score = write(tmp_path / "names.csv", "onset_s,offset_s,pitch,group\n" + rows)
    out = tmp_path / "out"
    code, lines, _ = _separate([good["audio"], "--score", score, "--out", out, "--iters", "2", "--quiet"], capsys)
    assert code == 0, lines
    index = json.loads((out / "stems.json").read_text())
    files = [s["file"] for s in index["stems"]]
    assert [s["group"] for s in index["stems"]][: len(groups)] == groups  # the real names, in order
    assert len({f.casefold() for f in files}) == len(files)  # distinct, also on case-insensitive systems
    assert all(len(f.encode()) <= 110 and f not in (".wav", "..wav") for f in files)
    assert sorted(p.name for p in out.iterdir()) == sorted([*files, "stems.json"])
    mix = sf.read(good["audio"], dtype="float64", always_2d=True)[0]
    assert np.abs(_mix_of(out) - mix).max() < 1e-4  # nothing overwritten: the stems add up


def test_issue14_4_ten_thousand_groups_are_refused_with_the_limit(good, tmp_path, capsys):
    """10,000 groups of one note (was: groups × K × N masks allocated until MemoryError)."""
    rows = "".join(f"{(i % 150) / 100:.2f},{(i % 150) / 100 + 0.3:.2f},{40 + i % 60},g{i}\n" for i in range(10_000))
    score = write(tmp_path / "groups.csv", "onset_s,offset_s,pitch,group\n" + rows)
    code, lines, _ = _separate([good["audio"], "--score", score, "--out", tmp_path / "o", "--quiet"], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0] == f"demixer: error: {score}: 10,000 groups; at most 256 (each group becomes a stem)"
    assert not (tmp_path / "o").exists()


def test_issue14_7_notes_tracks_and_density_beyond_the_limits(good, tmp_path, capsys):
    """1,000,000 notes in 3 s, 20,000 named tracks, and a score far denser than music (were: runs that
    did not end within minutes)."""
    lines_1m = "".join(f"{(i % 3000) / 1000:.3f},{(i % 3000) / 1000 + 0.01:.3f},60,a\n" for i in range(1_000_000))
    million = write(tmp_path / "million.csv", "onset_s,offset_s,pitch,group\n" + lines_1m)
    mid = mido.MidiFile(ticks_per_beat=480)
    for i in range(20_000):
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=f"t{i}", time=0)])
        track.append(mido.Message("note_on", note=60, velocity=80, time=i % 100))
        track.append(mido.Message("note_off", note=60, velocity=0, time=10))
        mid.tracks.append(track)
    tracks = tmp_path / "tracks.mid"
    mid.save(tracks)
    dense = write(
        tmp_path / "dense.csv",
        "onset_s,offset_s,pitch,group\n" + "".join(f"{i / 5000:.4f},{i / 5000 + 0.1:.4f},60,a\n" for i in range(9000)),
    )
    expected = {
        million: "more than 500,000 notes; at most that many are accepted",
        tracks: "20,000 tracks; at most 1,024 are accepted",
        dense: "9,000 notes in 2.0 s of audio (4,500 per second); at most 100 per second",
    }
    for score, reason in expected.items():
        code, lines, _ = _separate([good["audio"], "--score", score, "--out", tmp_path / "o", "--quiet"], capsys)
        assert code == 2 and lines == [f"demixer: error: {score}: {reason}"], lines


@pytest.fixture()
def small_fs(tmp_path):
    """A real 256 KiB file system (tmpfs) at tmp_path/fs, and a function that makes it read-only.
    Needs root (as the CI and the shared machine run); elsewhere the read-only case uses permissions."""
    import subprocess

    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("mounting a small file system needs root")

    def read_only():
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)

    yield mnt, read_only
    subprocess.run(["umount", "-l", str(mnt)])


def test_issue14_6_read_only_folder_says_cannot_write(good, small_fs, capsys):
    """Was: a traceback from tmp.unlink on a read-only file system."""
    mnt, read_only = small_fs
    (mnt / "old").mkdir()
    read_only()
    for out in (mnt / "old", mnt / "new"):
        code, lines, _ = _separate([good["audio"], "--score", good["score"], "--out", out, "--iters", "2"], capsys)
        assert code == 2 and len(lines) == 1, lines
        assert lines[0] == f"demixer: error: {out}: cannot write the stems here (read-only file system)"


def test_issue14_6_full_disk_says_no_space_left(good, small_fs, tmp_path, capsys):
    """Was: "(System error.)". Refused before the fit when the stems cannot fit; and when the disk fills
    while writing, the same reason, nothing half-written and the previous set intact."""
    mnt, _ = small_fs
    mix = tone(tmp_path / "four.wav", seconds=4.0)  # 3 stems × 128 KiB > 256 KiB
    code, lines, _ = _separate([mix, "--score", good["score"], "--out", mnt / "out", "--iters", "2"], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"demixer: error: {mnt / 'out'}: no space left on device: the 2 stems need about")
    # the disk fills up during the write (another program): the writer's own error path
    from demixer.io.export import StemSetWriter

    old = mnt / "old"
    old.mkdir()
    (old / "kept.wav").write_bytes(b"x" * 1000)
    writer = StemSetWriter(old, ["a", "b"], SR, 1)
    writer.check(1000)
    (mnt / "filler").write_bytes(bytes(200 * 1024))
    with pytest.raises(InputError) as info, writer:
        for _ in range(20):
            writer.write(0, np.zeros(SR, np.float32))
            writer.write(1, np.zeros(SR, np.float32))
        writer.commit()
    assert info.value.reason == "cannot write the stems (no space left on device)"
    assert sorted(p.name for p in mnt.iterdir()) == ["filler", "old"]  # no temporary folder left
    assert sorted(p.name for p in old.iterdir()) == ["kept.wav"]


_KILLER = """
import os, signal, sys
import soundfile as sf
from demixer.cli.main import main
original, calls = sf.SoundFile.write, [0]
def write(self, data):
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AT_WRITE"]):
        os.kill(os.getpid(), signal.SIGKILL)  # a real kill, mid-way through the set
    return original(self, data)
sf.SoundFile.write = write
sys.exit(main(sys.argv[1:]))
"""


def _folder_state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_issue14_10_a_run_killed_mid_write_leaves_the_old_set_and_the_next_run_cleans_up(good, tmp_path, capsys):
    """Was: 5 of 31 kills left a mix of old and new stems, 9 of 31 left temporary files."""
    import subprocess
    import sys

    out = tmp_path / "out"
    score_b = write(tmp_path / "b.csv", "onset_s,offset_s,pitch,group\n0,1,60,x\n0.5,1.8,72,y\n")
    code, lines, _ = _separate([good["audio"], "--score", good["score"], "--out", out, "--iters", "2"], capsys)
    assert code == 0, lines
    before = _folder_state(out)
    assert set(before) == {"lh.wav", "rh.wav", "stems.json"}
    argv = ["separate", good["audio"], "--score", score_b, "--out", out, "--iters", "2", "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, *map(str, argv)], env={**os.environ, "KILL_AT_WRITE": "2"},
        capture_output=True, timeout=300,
    )
    assert proc.returncode == -9
    assert _folder_state(out) == before  # exactly the old set
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.demixer-new-")]
    assert len(left) == 1  # the killed run's temporary folder, recognisable by its name (and its pid)
    code, lines, _ = _separate([good["audio"], "--score", score_b, "--out", out, "--iters", "2"], capsys)
    assert code == 0, lines
    assert set(_folder_state(out)) == {"x.wav", "y.wav", "stems.json"}  # exactly the new set
    assert not [p for p in tmp_path.iterdir() if "demixer-" in p.name]  # cleaned up


_SAVE_KILLER = """
import os, signal, sys
from demixer.io import project_file
from demixer.io.project_file import load_project, save_project
loaded = load_project(sys.argv[1])
def killed(raw, arrays):
    raw.write(b"half")
    os.kill(os.getpid(), signal.SIGKILL)
project_file._write_npz = killed
save_project(loaded.project, sys.argv[2])
"""


def test_issue14_10_a_project_save_killed_mid_write_leaves_a_temporary_file_that_the_next_save_removes(
    good, tmp_path
):
    import subprocess
    import sys

    folder = tmp_path / "p"
    path, _ = project_elsewhere(good, folder)
    before = path.read_bytes()
    proc = subprocess.run([sys.executable, "-c", _SAVE_KILLER, str(path), str(path)], capture_output=True, timeout=300)
    assert proc.returncode == -9
    tmp = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert len(tmp) == 1 and tmp[0].startswith(".take.demix.")  # recognisable: ".<name>.<pid>.<hex>.tmp"
    assert path.read_bytes() == before
    save_project(load_project(path).project, path)
    assert sorted(p.name for p in folder.iterdir()) == ["take.demix", "take.wav"]


def test_issue14_11_stems_of_an_earlier_run_are_removed_and_other_files_reported(good, tmp_path, capsys):
    """Was: stems of an earlier run with other group names stayed beside the new ones, unexplained."""
    out = tmp_path / "out"
    code, lines, _ = _separate([good["audio"], "--score", good["score"], "--out", out, "--iters", "2"], capsys)
    assert code == 0, lines
    (out / "mine.wav").write_bytes((out / "lh.wav").read_bytes())  # the user's own file
    (out / "notes.txt").write_text("keep me")
    score_b = write(tmp_path / "b.csv", "onset_s,offset_s,pitch,group\n0,1,60,lh\n0.5,1.8,72,violin\n")
    code, lines, stdout = _separate([good["audio"], "--score", score_b, "--out", out, "--iters", "2"], capsys)
    assert code == 0, lines
    assert sorted(p.name for p in out.iterdir()) == ["lh.wav", "mine.wav", "notes.txt", "stems.json", "violin.wav"]
    assert "removed 1 stems of the previous run: rh.wav" in stdout
    assert lines == [
        f"demixer: warning: {out}: 1 audio files there are not from this run (not in stems.json): mine.wav"
    ]
    index = json.loads((out / "stems.json").read_text())
    assert [(s["file"], s["group"]) for s in index["stems"]] == [("lh.wav", "lh"), ("violin.wav", "violin")]
    assert (out / "notes.txt").read_text() == "keep me"


def test_issue14_12_beyond_the_machine_memory_refused_before_the_work_with_the_option_that_works(
    good, tmp_path, capsys, monkeypatch
):
    """Was: it only warned, then died after minutes with a numpy MemoryError traceback and an empty
    folder. The estimate is checked against the machine's memory before anything is decoded."""
    from demixer.engine.separation import SeparationSettings
    from demixer.io.limits import estimate_memory

    stft = SeparationSettings().stft  # the STFT `separate` analyses with
    long = tone(tmp_path / "long.wav", seconds=20.0)
    one_s = estimate_memory(SR, SR, 1, stft)
    monkeypatch.setenv("DEMIXER_MACHINE_MEMORY", str(int(estimate_memory(10 * SR, SR, 1, stft) * 1.05)))
    out = tmp_path / "out"
    code, lines, _ = _separate([long, "--score", good["score"], "--out", out, "--iters", "2"], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"demixer: error: {long}: separating 0:20 (1 channels at {SR} Hz) needs about ")
    assert "this machine has available; use --analyse-first 10 (the first 0:10 fit)" in lines[0]
    assert not out.exists() and one_s > 0
    code, lines, _ = _separate(
        [long, "--score", good["score"], "--out", out, "--iters", "2", "--analyse-first", "10"], capsys
    )
    assert code == 0, lines
    assert all(sf.info(p).frames == 10 * SR for p in out.glob("*.wav"))


def test_issue14_9_the_loader_does_not_amplify_memory_before_refusing(good, tmp_path):
    """Was: a 1 MB project.json inflating to 1 GiB cost 2.1 GB before the CRC check refused it, and a
    2 MB npz holding a 1.9 GiB W cost 3.95 GB. Here at 64 MiB / 48 MiB scale: the peak stays small."""
    import tracemalloc

    cases = [lying_json_header(good, 64 * 1024**2), huge_w_npz(good, 4_000_000)]
    for path in cases:
        tracemalloc.start()
        try:
            with pytest.raises(InputError):
                load_project(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024**2, (path.name, peak)


def test_issue14_10_the_current_folder_as_output_is_written_in_place_not_swapped(good, tmp_path, capsys, monkeypatch):
    """`--out .`: the folder a shell stands in is never swapped away; the stems are moved in and
    stems.json written last, and a second run replaces them."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(good["audio"], tmp_path / "mix.wav")
    for _ in range(2):
        code, lines, _ = _separate(["mix.wav", "--score", good["score"], "--out", ".", "--iters", "2"], capsys)
        assert code == 0, lines
        assert sorted(p.name for p in tmp_path.iterdir()) == ["lh.wav", "mix.wav", "rh.wav", "stems.json"]
        assert Path.cwd() == tmp_path and tmp_path.is_dir()
