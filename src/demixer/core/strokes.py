"""Brush footprints → boolean masks, for the painting tools (DESIGN.md §2.3, §4).

Coordinates are ``(row, col)`` in cells of the painted array (e.g. bins × frames of V or H), as
floats: cell ``(r, c)`` has its centre at ``(r, c)``. Radii are given per axis, ``(radius_rows,
radius_cols)``, because the two axes of a pane have different scales, so a round brush on screen is an
ellipse in cells. Everything outside the array is clipped away.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["bounding_box", "disk_footprint", "rect_mask", "stroke_mask"]

#: Upper bound on the number of cells tested at once (limits temporary memory for huge brushes).
_CHUNK_CELLS = 1 << 20


def _check_shape(shape: object) -> tuple[int, int]:
    try:
        dims = tuple(shape)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"shape must be (rows, cols), got {shape!r}") from exc
    if len(dims) != 2 or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in dims):
        raise ValueError(f"shape must be two integers (rows, cols), got {shape!r}")
    if dims[0] < 1 or dims[1] < 1:
        raise ValueError(f"shape must be positive, got {shape!r}")
    return int(dims[0]), int(dims[1])


def _check_radius(radius_rc: object) -> tuple[float, float]:
    rad = np.asarray(radius_rc, dtype=np.float64)
    if rad.ndim == 0:
        rad = np.repeat(rad, 2)
    if rad.shape != (2,):
        raise ValueError(f"radius_rc must be (radius_rows, radius_cols), got shape {rad.shape}")
    if not np.all(np.isfinite(rad)) or np.any(rad <= 0):
        raise ValueError(f"radius_rc must be positive and finite, got {rad.tolist()}")
    return float(rad[0]), float(rad[1])


def _check_points(points: object, name: str) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 1 and pts.shape == (2,):
        pts = pts.reshape(1, 2)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{name} must be an (M, 2) array of (row, col) points, got shape {pts.shape}")
    if pts.shape[0] == 0:
        raise ValueError(f"{name} needs at least one point")
    if not np.all(np.isfinite(pts)):
        raise ValueError(f"{name} must be finite")
    return pts


def _paint_ellipses(mask: np.ndarray, centers: np.ndarray, rr: float, rc: float) -> None:
    """OR into ``mask`` the cells ``((r - cr) / rr)² + ((c - cc) / rc)² <= 1`` of every centre, plus
    each centre's own (nearest) cell, so that even a brush smaller than a cell paints something."""
    n_rows, n_cols = mask.shape
    # Drop centres whose ellipse cannot touch the array.
    keep = (
        (centers[:, 0] + rr >= -0.5)
        & (centers[:, 0] - rr <= n_rows - 0.5)
        & (centers[:, 1] + rc >= -0.5)
        & (centers[:, 1] - rc <= n_cols - 0.5)
    )
    centers = centers[keep]
    if centers.shape[0] == 0:
        return
    # Candidate cells relative to floor(centre): every cell within the ellipse's bounding box.
    ar, ac = math.ceil(rr), math.ceil(rc)
    dr = np.arange(-ar, ar + 2)
    dc = np.arange(-ac, ac + 2)
    box = dr.size * dc.size
    chunk = max(1, _CHUNK_CELLS // box)
    for start in range(0, centers.shape[0], chunk):
        cen = centers[start : start + chunk]
        base = np.floor(cen).astype(np.int64)
        rows = base[:, 0, None, None] + dr[None, :, None]  # (m, nr, 1)
        cols = base[:, 1, None, None] + dc[None, None, :]  # (m, 1, nc)
        d_r = (rows - cen[:, 0, None, None]) / rr
        d_c = (cols - cen[:, 1, None, None]) / rc
        inside = d_r**2 + d_c**2 <= 1.0
        near = np.floor(cen + 0.5).astype(np.int64)
        inside |= (rows == near[:, 0, None, None]) & (cols == near[:, 1, None, None])
        inside &= (rows >= 0) & (rows < n_rows) & (cols >= 0) & (cols < n_cols)
        m_idx, r_idx, c_idx = np.nonzero(inside)
        mask[rows[m_idx, r_idx, 0], cols[m_idx, 0, c_idx]] = True


def disk_footprint(shape: tuple[int, int], centers_rc: object, radius_rc: object) -> np.ndarray:
    """Union of ellipses with radii ``radius_rc = (rows, cols)`` at ``centers_rc`` (M × 2), clipped.

    Cell ``(r, c)`` is covered by the ellipse at ``(cr, cc)`` when ``((r - cr) / radius_rows)² +
    ((c - cc) / radius_cols)² <= 1``; each centre's nearest cell is always covered (if inside the
    array). Returns a bool array of ``shape``.
    """
    shp = _check_shape(shape)
    centers = _check_points(centers_rc, "centers_rc")
    rr, rc = _check_radius(radius_rc)
    mask = np.zeros(shp, dtype=bool)
    _paint_ellipses(mask, centers, rr, rc)
    return mask


def _interpolate(points: np.ndarray, step: float) -> np.ndarray:
    """Points along the polyline with consecutive points at most ``step`` apart (both ends kept)."""
    if points.shape[0] == 1:
        return points
    out = [points[:1]]
    for p, q in zip(points[:-1], points[1:], strict=True):
        n = max(1, math.ceil(float(np.hypot(*(q - p))) / step))
        t = np.arange(1, n + 1, dtype=np.float64)[:, None] / n
        out.append(p + t * (q - p))
    return np.concatenate(out, axis=0)


def _crossed_cells(points: np.ndarray) -> np.ndarray:
    """Every cell whose square ``[r - ½, r + ½) × [c - ½, c + ½)`` the polyline passes through (K × 2).

    The segment is cut where it crosses the cell borders (``x = k + ½``); the midpoint of each piece
    lies in exactly one crossed cell. Cells touched only at a corner are not included.
    """
    cells = [np.floor(points + 0.5).astype(np.int64)]
    for p, q in zip(points[:-1], points[1:], strict=True):
        d = q - p
        ts = [np.array([0.0, 1.0])]
        for axis in (0, 1):
            if d[axis] != 0.0:
                lo, hi = sorted((p[axis], q[axis]))
                borders = np.arange(math.ceil(lo - 0.5), math.floor(hi - 0.5) + 1) + 0.5
                ts.append((borders - p[axis]) / d[axis])
        t = np.unique(np.clip(np.concatenate(ts), 0.0, 1.0))
        mid = (t[:-1] + t[1:]) / 2.0
        cells.append(np.floor(p + mid[:, None] * d + 0.5).astype(np.int64))
    return np.concatenate(cells, axis=0)


def stroke_mask(shape: tuple[int, int], points_rc: object, radius_rc: object) -> np.ndarray:
    """Mask painted by a brush dragged along the polyline ``points_rc`` (M × 2, (row, col)).

    Consecutive points are joined by brush positions at most ``max(min(radius_rc) / 2, 1)`` cells
    apart, so a fast drag (points far apart) leaves no gaps; the result is the union of the brush
    ellipses (:func:`disk_footprint`) at those positions, plus every cell the polyline passes through
    (which keeps a brush smaller than a cell connected). Only the cells in each brush's bounding box
    are evaluated.
    """
    shp = _check_shape(shape)
    pts = _check_points(points_rc, "points_rc")
    rr, rc = _check_radius(radius_rc)
    step = max(min(rr, rc) / 2.0, 1.0)
    mask = np.zeros(shp, dtype=bool)
    _paint_ellipses(mask, _interpolate(pts, step), rr, rc)
    cells = _crossed_cells(pts)
    ok = (cells[:, 0] >= 0) & (cells[:, 0] < shp[0]) & (cells[:, 1] >= 0) & (cells[:, 1] < shp[1])
    mask[cells[ok, 0], cells[ok, 1]] = True
    return mask


def rect_mask(shape: tuple[int, int], r0: float, c0: float, r1: float, c1: float) -> np.ndarray:
    """Rectangle with corners ``(r0, c0)`` and ``(r1, c1)`` in any order, both inclusive, clipped.

    Non-integer corners are rounded to the nearest cell. A rectangle entirely outside gives an empty mask.
    """
    shp = _check_shape(shape)
    vals = []
    for name, v in (("r0", r0), ("c0", c0), ("r1", r1), ("c1", c1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
        vals.append(math.floor(float(v) + 0.5))
    ra, ca, rb, cb = vals
    lo_r, hi_r = min(ra, rb), max(ra, rb)
    lo_c, hi_c = min(ca, cb), max(ca, cb)
    mask = np.zeros(shp, dtype=bool)
    lo_r, hi_r = max(lo_r, 0), min(hi_r, shp[0] - 1)
    lo_c, hi_c = max(lo_c, 0), min(hi_c, shp[1] - 1)
    if lo_r <= hi_r and lo_c <= hi_c:
        mask[lo_r : hi_r + 1, lo_c : hi_c + 1] = True
    return mask


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(r0, r1, c0, c1)`` such that ``mask[r0:r1, c0:c1]`` holds every True entry; None if none."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got {m.ndim}-D")
    if m.dtype != np.bool_:
        raise ValueError(f"mask must be boolean, got dtype {m.dtype}")
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
