"""Issue 18: what a new user hit in the window. Each test drives the real widgets and would have caught
the defect it is named after."""

from __future__ import annotations

import numpy as np

from demixer.io.audio import read_audio


def test_an_empty_source_exports_silence(window, tmp_path):
    """Item 5: a new source with no components exported a −34 dB file (silent bins were split equally)."""
    p = window.project
    assert window.editing.new_source("thumps", "#ff0000")
    assert p.source_components("thumps").size == 0
    written = window.audition.exporter.export_stems(tmp_path, "wav")
    back = {f.stem: read_audio(f) for f in written}
    assert "thumps" in back
    assert np.max(np.abs(back["thumps"].samples)) == 0.0
    np.testing.assert_allclose(sum(a.samples for a in back.values()), p.audio.samples, atol=2e-5)
