"""Project files (.demix): exact round trip, atomic writes, moved audio, schema versions, hostile archives."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile

import numpy as np
import pytest
import soundfile as sf

from demixer.core.notes import Note
from demixer.core.stft import STFTParams
from demixer.engine.projects import project_from_audio
from demixer.engine.separation import SeparationSettings
from demixer.io import project_file as pfmod
from demixer.io.audio import read_audio
from demixer.io.errors import InputError
from demixer.io.project_file import (
    SCHEMA_VERSION,
    AudioMismatchError,
    AudioNotFoundError,
    load_project,
    migrate,
    read_project_file,
    save_project,
)
from demixer.model.project import Project, RunParams, RunRecord

SR = 8000
STFT = STFTParams(n_fft=256, hop=64, sr=SR)


def tone(path, seconds=1.0, freqs=(262.0, 523.0), sr=SR, amp=0.2):
    t = np.arange(int(sr * seconds)) / sr
    x = sum(amp * np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32)
    sf.write(path, x, sr, subtype="FLOAT")
    return path


def make_project(folder, name="piece.wav") -> Project:
    audio_path = tone(folder / name)
    notes = [Note(0.0, 0.5, 60, "lh", 80, 0), Note(0.3, 0.9, 72, "rh", None, None)]
    settings = SeparationSettings().with_(stft=STFT, n_iter=3)
    p = project_from_audio(read_audio(audio_path), notes, settings, score_path=str(folder / "score.csv"))
    # edits the file must keep: a run with its loss curve, an encoder, a locked, renamed component
    rng = np.random.default_rng(3)
    p.set_factors((p.W * 1.5).astype(p.W.dtype), p.H + np.float32(0.25), rng.random((p.n_components, p.n_bins)))
    p.components[0].locked = True
    p.components[1].name = "renamed ✓"
    p.allow_H[0, :5] = False
    p.add_run(RunRecord("#1 NMF", "nmf", [3.0, 2.0, float("inf")], 3, "cancelled", 4.0, 0.25))
    p.add_run(RunRecord("#2 NAE", "nae", [1.5], 1, "finished", None, 0.1))
    p.run_counter = 2
    p.set_run_params(RunParams(model="nae", n_iter=7, seed=4, normalize=True, alpha=2.0, compress=1.0))
    return p


VIEW = {"ranges": {"V": [[0.0, 1.0], [0.0, 4000.0]]}, "log_frequency": True, "db_range": 60.0, "tool": "brush"}


def assert_same_project(a: Project, b: Project) -> None:
    for name in ("W", "H", "W_E", "allow_W", "allow_H", "W0", "H0"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), f"{name} differs"  # bit for bit
    assert a.components == b.components
    assert a.sources == b.sources
    assert a.notes == b.notes
    assert a.stft == b.stft and a.score == b.score and a.run == b.run
    assert a.run_counter == b.run_counter
    fields = ("label", "model", "n_iter", "stopped", "initial_loss", "elapsed")
    assert [tuple(getattr(r, f) for f in fields) for r in a.runs] == [
        tuple(getattr(r, f) for f in fields) for r in b.runs
    ]
    for ra, rb in zip(a.runs, b.runs, strict=True):
        assert np.array_equal(np.array(ra.losses), np.array(rb.losses))
    assert np.array_equal(a.V, b.V)
    assert os.path.abspath(a.score_path) == os.path.abspath(b.score_path)


def test_save_load_round_trip_is_exact(tmp_path):
    p = make_project(tmp_path)
    (tmp_path / "score.csv").write_text("onset_s,offset_s,pitch,group\n")
    path = tmp_path / "piece.demix"
    save_project(p, path, VIEW)
    loaded = load_project(path)
    assert_same_project(p, loaded.project)
    assert loaded.view == VIEW
    assert loaded.warnings == [] and not loaded.audio_changed
    # the members are what the format says; the npz opens with numpy alone, no pickles
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["arrays.npz", "project.json", "view.json"]
        meta = json.loads(zf.read("project.json"))
        with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as npz:
            assert {"W", "H", "W_E", "allow_W", "allow_H", "W0", "H0", "loss_0", "loss_1"} == set(npz.files)
    assert meta["schema_version"] == SCHEMA_VERSION
    assert meta["audio"]["path"] == "piece.wav"  # relative to the project file
    assert meta["audio"]["sha256"] == pfmod.file_sha256(tmp_path / "piece.wav")
    assert meta["audio"]["size"] == (tmp_path / "piece.wav").stat().st_size
    # and saving the loaded project again gives the same arrays and metadata
    save_project(loaded.project, tmp_path / "again.demix", VIEW)
    assert_same_project(p, load_project(tmp_path / "again.demix").project)


def test_a_project_moved_with_its_audio_finds_it_by_the_relative_path(tmp_path):
    src = tmp_path / "a"
    src.mkdir()
    p = make_project(src)
    save_project(p, src / "x.demix")
    dst = tmp_path / "b"
    shutil.move(src, dst)
    loaded = load_project(dst / "x.demix")
    assert loaded.audio_path == str(dst / "piece.wav")
    assert np.array_equal(loaded.project.W, p.W)


def test_a_project_moved_alone_finds_its_audio_by_the_absolute_path(tmp_path):
    p = make_project(tmp_path)
    save_project(p, tmp_path / "x.demix")
    other = tmp_path / "elsewhere" / "deeper"
    other.mkdir(parents=True)
    shutil.move(tmp_path / "x.demix", other / "x.demix")
    loaded = load_project(other / "x.demix")
    assert loaded.audio_path == str(tmp_path / "piece.wav")


def test_missing_audio_is_reported_and_can_be_located(tmp_path):
    p = make_project(tmp_path)
    save_project(p, tmp_path / "x.demix")
    moved = tmp_path / "moved.wav"
    os.rename(tmp_path / "piece.wav", moved)
    with pytest.raises(AudioNotFoundError) as info:
        load_project(tmp_path / "x.demix")
    assert "piece.wav" in info.value.reason and "not found" in info.value.reason
    assert info.value.path == str(tmp_path / "x.demix")
    loaded = load_project(tmp_path / "x.demix", audio_path=moved)
    assert loaded.audio_changed and np.array_equal(loaded.project.H, p.H)


def test_different_audio_is_refused_unless_allowed_and_must_fit(tmp_path):
    p = make_project(tmp_path)
    save_project(p, tmp_path / "x.demix")
    tone(tmp_path / "piece.wav", freqs=(300.0,))  # same length, other content
    with pytest.raises(AudioMismatchError) as info:
        load_project(tmp_path / "x.demix")
    assert "sha256" in info.value.reason and "piece.wav" in info.value.reason
    loaded = load_project(tmp_path / "x.demix", allow_mismatch=True)
    assert loaded.audio_changed and any("differs" in w for w in loaded.warnings)
    tone(tmp_path / "piece.wav", seconds=0.5)  # shorter: the arrays cannot fit
    with pytest.raises(InputError) as info:
        load_project(tmp_path / "x.demix", allow_mismatch=True)
    assert "samples where the project used" in info.value.reason or "do not fit" in info.value.reason


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    p = make_project(tmp_path)
    path = tmp_path / "x.demix"
    save_project(p, path)
    before = path.read_bytes()
    p.H[:] = 0
    calls = {"n": 0}
    real = np.lib.format.write_array

    def dies_mid_way(f, a, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # after two arrays are in the temporary file
            raise OSError(28, "No space left on device")
        return real(f, a, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", dies_mid_way)
    with pytest.raises(InputError) as info:
        save_project(p, path)
    assert "No space left on device" in info.value.reason and "unchanged" in info.value.reason
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["piece.wav", "x.demix"]  # no temporary file left
    monkeypatch.undo()

    def no_replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pfmod.os, "replace", no_replace)
    with pytest.raises(InputError):
        save_project(p, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["piece.wav", "x.demix"]
    monkeypatch.undo()
    assert not load_project(path).project.H.max() == 0


def test_write_goes_through_fsync_and_replace(tmp_path, monkeypatch):
    p = make_project(tmp_path)
    seen = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        seen.append("fsync")
        return real_fsync(fd)

    def replace(a, b):
        seen.append(("replace", os.path.dirname(a)))
        return real_replace(a, b)

    monkeypatch.setattr(pfmod.os, "fsync", fsync)
    monkeypatch.setattr(pfmod.os, "replace", replace)
    save_project(p, tmp_path / "x.demix")
    assert seen[0] == "fsync" and seen[1] == ("replace", str(tmp_path))


def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path):
    p = make_project(tmp_path)
    path = tmp_path / "x.demix"
    save_project(p, path)
    rewrite(path, lambda meta: {**meta, "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(InputError) as info:
        read_project_file(path)
    assert "newer Demixer" in info.value.reason and str(SCHEMA_VERSION + 1) in info.value.reason


def rewrite(path, change_meta=None, arrays=None, drop=(), extra=None):
    """Rewrite a project file's members (a test helper, not atomic)."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    if change_meta is not None:
        members["project.json"] = json.dumps(change_meta(json.loads(members["project.json"]))).encode()
    if arrays is not None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        members["arrays.npz"] = buf.getvalue()
    for name in drop:
        members.pop(name, None)
    members.update(extra or {})
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def write_v0(folder, audio_name="piece.wav"):
    """A synthetic schema-0 project (the pre-release format) for the recording ``audio_name``."""
    audio = read_audio(folder / audio_name)
    from demixer.engine.separation import analyse

    V = analyse(audio, STFT).V
    K, N = V.shape
    rng = np.random.default_rng(0)
    W = rng.random((K, 2)).astype(np.float32)
    H = rng.random((2, N)).astype(np.float32)
    meta = {
        "version": 0,
        "audio": audio_name,
        "stft": {"n_fft": STFT.n_fft, "hop": STFT.hop, "sr": STFT.sr},
        "model": "nmf",
        "n_iter": 12,
        "components": [["C4", 60, "pitch", "lh"], ["free", None, "free", ""]],
        "sources": ["lh"],
        "notes": [[0.0, 0.5, 60, "lh"]],
    }
    buf = io.BytesIO()
    np.savez(buf, W=W, H=H, allow_W=np.ones((K, 2), bool), allow_H=np.ones((2, N), bool))
    path = folder / "old.demix"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.json", json.dumps(meta))
        zf.writestr("arrays.npz", buf.getvalue())
    return path, W, H


def test_a_schema_0_project_is_migrated(tmp_path):
    tone(tmp_path / "piece.wav")
    path, W, H = write_v0(tmp_path)
    loaded = load_project(path)
    p = loaded.project
    assert loaded.schema_version == 0
    assert any("migrated from schema version 0" in w for w in loaded.warnings)
    assert any("not verified" in w for w in loaded.warnings)  # v0 had no checksum
    assert np.array_equal(p.W, W) and np.array_equal(p.H, H)
    assert np.array_equal(p.W0, W) and np.array_equal(p.H0, H)  # unknown initialisation: W, H
    assert [c.name for c in p.components] == ["C4", "free"] and p.components[0].source == "lh"
    assert [s.name for s in p.sources] == ["lh"]
    assert p.run.model == "nmf" and p.run.n_iter == 12
    assert p.notes == [Note(0.0, 0.5, 60, "lh")]
    assert p.stft == STFT
    # saving writes the current schema
    save_project(p, tmp_path / "new.demix")
    assert read_project_file(tmp_path / "new.demix").schema_version == SCHEMA_VERSION


def test_migrate_is_a_pure_function_of_meta_and_arrays():
    meta = {"version": 0, "audio": "a.wav", "stft": {"n_fft": 64, "hop": 16, "sr": 8000}, "components": []}
    new, arrays, version = migrate(meta, {"W": np.ones((33, 0)), "H": np.ones((0, 5))})
    assert version == 0 and new["schema_version"] == SCHEMA_VERSION
    assert new["audio"]["path"] == "a.wav" and new["audio"]["sha256"] is None
    assert set(arrays) == {"W", "H", "W0", "H0"}
    assert meta == {"version": 0, "audio": "a.wav", "stft": {"n_fft": 64, "hop": 16, "sr": 8000}, "components": []}


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda m: {**m, "components": "none"}, "components must be a list"),
        (
            lambda m: {**m, "components": [{**m["components"][0], "pitch": "C4"}] + m["components"][1:]},
            "components[0].pitch must be a whole number",
        ),
        (lambda m: {**m, "stft": {**m["stft"], "n_fft": "big"}}, "stft.n_fft must be a whole number"),
        (lambda m: {**m, "stft": {**m["stft"], "hop": 100000}}, "stft: hop must be between"),
        (lambda m: {**m, "run": {**m["run"], "model": "magic"}}, "run.model must be one of"),
        (lambda m: {**m, "notes": [{"onset": float("nan"), "offset": 1, "pitch": 60}]}, "notes[0].onset"),
        (lambda m: {**m, "audio": {**m["audio"], "sha256": 12}}, "audio.sha256 must be"),
        (lambda m: {**m, "schema_version": "1"}, "schema_version must be a whole number"),
        (lambda m: [m], "expected a JSON object"),
        (lambda m: {k: v for k, v in m.items() if k != "schema_version"}, "no schema_version"),
    ],
)
def test_wrong_types_in_project_json_are_named(tmp_path, change, reason):
    p = make_project(tmp_path)
    path = tmp_path / "x.demix"
    save_project(p, path)
    rewrite(path, change)
    with pytest.raises(InputError) as info:
        load_project(path)
    assert reason in info.value.reason
    assert info.value.path == str(path)


def test_pickles_in_the_npz_are_refused(tmp_path):
    p = make_project(tmp_path)
    path = tmp_path / "x.demix"
    save_project(p, path)
    arrays = dict(read_project_file(path).arrays)
    arrays["W"] = np.array([{"evil": 1}], dtype=object)
    rewrite(path, arrays=arrays)
    with pytest.raises(InputError) as info:
        load_project(path)
    assert "pickle" in info.value.reason and "refused" in info.value.reason


def test_path_traversal_member_names_are_refused(tmp_path):
    p = make_project(tmp_path)
    path = tmp_path / "x.demix"
    save_project(p, path)
    rewrite(path, extra={"../../evil.txt": b"x"})
    with pytest.raises(InputError) as info:
        read_project_file(path)
    assert "unsafe member name" in info.value.reason and "../../evil.txt" in info.value.reason
    assert not (tmp_path.parent.parent / "evil.txt").exists()


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path, monkeypatch):
    p = make_project(tmp_path)
    path = tmp_path / "x.demix"
    save_project(p, path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("padding.bin", "w", force_zip64=True) as f:
            zeros = bytes(1 << 20)
            for _ in range(64):  # 64 MiB of zeros, ~64 KiB compressed
                f.write(zeros)
    monkeypatch.setenv("DEMIXER_MAX_PROJECT_BYTES", str(32 * 1024**2))
    with pytest.raises(InputError) as info:
        read_project_file(path)
    assert "over the limit" in info.value.reason and "DEMIXER_MAX_PROJECT_BYTES" in info.value.reason


def test_nan_and_shape_mismatches_in_arrays_are_refused(tmp_path):
    p = make_project(tmp_path)
    path = tmp_path / "x.demix"
    save_project(p, path)
    good = dict(read_project_file(path).arrays)
    cases = [
        ({**good, "H": np.where(good["H"] > 0.5, np.nan, good["H"]).astype(good["H"].dtype)}, "H contains NaN"),
        ({**good, "W": -good["W"]}, "W contains negative values"),
        ({**good, "H": good["H"][:, :-3]}, "H0 has shape"),
        ({**good, "allow_W": good["allow_W"].astype(np.float32)}, "allow_W must be boolean"),
        ({k: v for k, v in good.items() if k != "W0"}, "array W0 is missing"),
        ({**good, "W": good["W"][:, :1]}, "do not fit the"),
    ]
    for arrays, reason in cases:
        rewrite(path, arrays=arrays)
        with pytest.raises(InputError) as info:
            load_project(path)
        assert reason in info.value.reason, (reason, info.value.reason)


def test_arrays_that_do_not_fit_the_audio_are_refused(tmp_path):
    p = make_project(tmp_path)
    path = tmp_path / "x.demix"
    save_project(p, path)
    rewrite(path, lambda m: {**m, "stft": {**m["stft"], "hop": 32}})  # V would have twice the frames
    with pytest.raises(InputError) as info:
        load_project(path)
    assert "do not fit the recording" in info.value.reason


def test_missing_members_and_garbage_files(tmp_path):
    p = make_project(tmp_path)
    path = tmp_path / "x.demix"
    save_project(p, path)
    rewrite(path, drop=["arrays.npz"])
    with pytest.raises(InputError, match="missing member arrays.npz"):
        load_project(path)
    save_project(p, path)
    rewrite(path, drop=["view.json"])  # only the view: a warning, the project opens
    loaded = load_project(path)
    assert loaded.view == {} and any("view.json" in w for w in loaded.warnings)
    rewrite(path, extra={"view.json": b"{not json"})
    assert any("view.json is not valid JSON" in w for w in load_project(path).warnings)
    for content, reason in [
        (b"", "empty"),
        (b"PK\x03\x04 truncated", "not a zip archive"),
        (b"hello, I am text", "not a zip archive"),
    ]:
        path.write_bytes(content)
        with pytest.raises(InputError, match=reason):
            load_project(path)
    with pytest.raises(InputError, match="file not found"):
        load_project(tmp_path / "nope.demix")


def test_a_project_without_an_audio_file_cannot_be_saved(tmp_path):
    from demixer.io.audio import Audio

    p = make_project(tmp_path)
    p.audio = Audio(p.audio.samples, p.audio.sr, None)
    with pytest.raises(InputError, match="not read from a file"):
        save_project(p, tmp_path / "x.demix")
    assert not (tmp_path / "x.demix").exists()


def test_fields_of_newer_versions_are_ignored_and_missing_parameters_default(tmp_path):
    p = make_project(tmp_path)
    path = tmp_path / "x.demix"
    save_project(p, path)

    def change(m):
        m["components"][0]["muted"] = True  # a field this version does not know
        m["run"]["future_option"] = 3
        del m["score"]["tol_onset_post"]  # absent: the default
        m["unknown_section"] = {"a": 1}
        return m

    rewrite(path, change)
    q = load_project(path).project
    assert q.components == p.components and q.run == p.run
    assert q.score.tol_onset_post == type(p.score)().tol_onset_post
