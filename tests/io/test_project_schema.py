"""io.project_schema: the project file's schema, described once and used to write, validate, load and
migrate (issue 13 item 4); its limits are the loader's caps (issue 14 item 9)."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import numpy as np
import pytest

from demixer.core.constraints import ScoreParams
from demixer.core.notes import Note
from demixer.core.stft import STFTParams
from demixer.io import project_schema as schema
from demixer.io.audio import write_audio
from demixer.model.project import Component, RunParams, RunRecord, Source


@pytest.mark.parametrize(
    ("table", "cls", "not_stored"),
    [
        (schema.STFT, STFTParams, ()),
        (schema.SCORE, ScoreParams, ()),
        (schema.RUN, RunParams, ()),
        (schema.COMPONENT, Component, ()),
        (schema.SOURCE, Source, ()),
        (schema.NOTE, Note, ()),
        (schema.RUN_RECORD, RunRecord, ("losses", "id")),  # the curve lives in arrays.npz
    ],
)
def test_each_table_mirrors_its_dataclass_and_takes_its_defaults(table, cls, not_stored):
    fields = [f for f in dataclasses.fields(cls) if f.name not in not_stored]
    assert [f.name for f in table.fields] == [f.name for f in fields]
    instance_defaults = {
        f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
        for f in fields
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }
    for f in table.fields:
        if f.name in instance_defaults and not f.required:
            assert table.default(f) == instance_defaults[f.name], f.name


def test_a_saved_project_json_has_exactly_the_schema_keys_and_checks_back_to_the_same_values(tmp_path):
    from demixer.engine.projects import project_from_audio
    from demixer.engine.separation import SeparationSettings
    from demixer.io.audio import read_audio
    from demixer.io.project_file import read_project_file, save_project

    sr = 8000
    t = np.arange(2 * sr) / sr
    write_audio(tmp_path / "a.wav", (0.2 * np.sin(2 * np.pi * 262 * t)).astype(np.float32), sr)
    notes = [Note(0.0, 1.0, 60, "lh"), Note(0.5, 1.8, 72, "rh")]
    p = project_from_audio(read_audio(tmp_path / "a.wav"), notes, SeparationSettings())
    p.add_run(RunRecord("#1", "nmf", [2.0, 1.0], 2))
    save_project(p, tmp_path / "p.demix")
    with zipfile.ZipFile(tmp_path / "p.demix") as zf:
        meta = json.loads(zf.read("project.json"))
    assert list(meta) == [f.name for f in schema.PROJECT.fields]
    for key, table in (("stft", schema.STFT), ("score", schema.SCORE), ("run", schema.RUN), ("audio", schema.AUDIO)):
        assert list(meta[key]) == [f.name for f in table.fields], key
    assert list(meta["components"][0]) == [f.name for f in schema.COMPONENT.fields]
    assert list(meta["runs"][0]) == [f.name for f in schema.RUN_RECORD.fields]
    typed = read_project_file(tmp_path / "p.demix").meta["_"]
    assert typed["score"] == p.score and typed["run"] == p.run and typed["notes"] == p.notes
    assert typed["components"] == p.components and typed["sources"] == p.sources
    assert schema.PROJECT.dump({**meta}) == meta  # dump of the checked JSON is the JSON


@pytest.mark.parametrize(
    ("table", "value", "reason"),
    [
        (schema.COMPONENT, {"name": "x" * 201}, "components[0].name must be text of at most 200 characters"),
        (schema.RUN, {"n_iter": 10**12}, "components[0].n_iter must be a whole number 1..100000"),
        (schema.RUN, {"seed": 2**31}, "components[0].seed must be a whole number 0..2147483647"),
        (schema.NOTE, {"onset": 0.0, "offset": 1.0}, "components[0].pitch must be present"),
        (schema.SCORE, {"tol_pitch": float("nan")}, "components[0].tol_pitch must be a finite number"),
    ],
)
def test_values_beyond_the_limits_are_refused_with_where_and_why(table, value, reason):
    with pytest.raises(schema.SchemaError) as info:
        table.check(value, "components[0]")
    assert reason in str(info.value)


def test_lists_are_capped_before_their_items_are_checked():
    meta = {"schema_version": 1, "audio": {"path": "a.wav"}, "stft": {"n_fft": 2048, "hop": 512, "sr": 22050},
            "runs": [None] * (schema.MAX_RUNS + 1)}
    with pytest.raises(schema.SchemaError) as info:
        schema.PROJECT.check(meta, "")
    assert str(info.value) == "project.json: runs must be a list of at most 1,000 items, got '1,001 items'"


def test_migration_defaults_come_from_the_tables():
    assert schema.COMPONENT.defaults() == {"pitch": None, "kind": "free", "source": "", "locked": False,
                                           "colour": Component("x").colour}
    assert schema.NOTE.defaults() == {"group": "", "velocity": None, "program": None}
