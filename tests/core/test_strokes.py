"""Brush footprints → boolean masks."""

from __future__ import annotations

import numpy as np
import pytest

from demixer.core.strokes import bounding_box, disk_footprint, rect_mask, stroke_mask


def brute_ellipses(shape, centers, radius):
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    out = np.zeros(shape, dtype=bool)
    for r, c in centers:
        out |= ((rr - r) / radius[0]) ** 2 + ((cc - c) / radius[1]) ** 2 <= 1.0
    return out


def test_disk_footprint_is_an_ellipse():
    mask = disk_footprint((15, 20), [(7, 10)], (2, 4))
    assert mask.dtype == bool and mask.shape == (15, 20)
    np.testing.assert_array_equal(mask, brute_ellipses((15, 20), [(7, 10)], (2, 4)))
    # extent: ±2 rows in the centre column, ±4 columns in the centre row
    assert np.flatnonzero(mask[:, 10]).tolist() == [5, 6, 7, 8, 9]
    assert np.flatnonzero(mask[7]).tolist() == list(range(6, 15))
    assert not mask[5, 11]  # (−2/2)² + (1/4)² > 1
    assert mask[6, 13]  # (1/2)² + (3/4)² <= 1
    assert mask.sum() == 1 + 7 + 9 + 7 + 1


def test_disk_footprint_fractional_centres_union_and_clipping():
    centers = np.array([[3.3, 4.7], [0.2, 18.9], [-1.5, 5.0]])
    mask = disk_footprint((10, 20), centers, (2.5, 1.7))
    np.testing.assert_array_equal(mask, brute_ellipses((10, 20), centers, (2.5, 1.7)))
    # a centre far outside paints nothing and does not fail
    assert not disk_footprint((10, 20), [(100.0, 100.0)], (3, 3)).any()


def test_tiny_brush_paints_its_own_cell():
    mask = disk_footprint((5, 5), [(2.3, 1.6)], (0.1, 0.1))
    assert np.flatnonzero(mask).tolist() == [2 * 5 + 2]


def cells_on_segment(p, q, n=20000):
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = np.asarray(p, float) + t * (np.asarray(q, float) - np.asarray(p, float))
    return np.unique(np.floor(pts + 0.5).astype(int), axis=0)


def normalized_distance_to_segment(cells, p, q, radius):
    scale = 1.0 / np.asarray(radius, float)
    a, b, x = np.asarray(p, float) * scale, np.asarray(q, float) * scale, cells * scale
    d = b - a
    t = np.clip(((x - a) @ d) / (d @ d), 0.0, 1.0)
    return np.linalg.norm(x - (a + t[:, None] * d), axis=1)


@pytest.mark.parametrize("radius", [(1.0, 1.0), (1.5, 3.0), (4.0, 1.0), (1.2, 1.2), (0.3, 0.3), (0.4, 2.0)])
@pytest.mark.parametrize(
    "p, q", [((10.0, 10.0), (190.3, 281.7)), ((150.2, 3.9), (20.6, 40.1)), ((5, 5), (5, 250))]
)
def test_stroke_between_far_points_has_no_gaps(radius, p, q):
    shape = (200, 300)
    mask = stroke_mask(shape, [p, q], radius)
    line = cells_on_segment(p, q)
    assert mask[line[:, 0], line[:, 1]].all()
    # and nothing farther from the segment than the brush radius (or, for a brush smaller than a cell,
    # than the cells the segment crosses)
    covered = np.argwhere(mask)
    if min(radius) >= 1.0:
        assert normalized_distance_to_segment(covered, p, q, radius).max() <= 1.0 + 1e-9
        # the stroke is as thick as the brush along its whole length: brush positions at most
        # s = max(r_min/2, 1) cells apart are at most h = s/(2 r_min) radii from any point of the segment,
        # so they cover every cell within sqrt(1 - h²) radii of it
        h = max(min(radius) / 2, 1.0) / (2 * min(radius))
        every = np.argwhere(np.ones(shape, dtype=bool))
        near = every[normalized_distance_to_segment(every, p, q, radius) <= np.sqrt(1 - h**2) - 1e-9]
        assert mask[near[:, 0], near[:, 1]].all()
    else:
        assert (
            normalized_distance_to_segment(covered, p, q, (1.0, 1.0)).max()
            <= max(np.sqrt(0.5), max(radius)) + 1e-9
        )
    # both end discs are complete
    ends = brute_ellipses(shape, [p, q], radius)
    assert mask[ends].all()


def test_stroke_with_sub_cell_brush_is_the_crossed_cells():
    mask = stroke_mask((10, 10), [(1.0, 1.0), (4.0, 7.0)], (0.1, 0.1))
    expected = np.zeros((10, 10), dtype=bool)
    line = cells_on_segment((1.0, 1.0), (4.0, 7.0), 100001)
    expected[line[:, 0], line[:, 1]] = True
    np.testing.assert_array_equal(mask, expected)


def test_stroke_polyline_and_clipping():
    shape = (50, 60)
    pts = [(5.0, 5.0), (45.0, 5.0), (45.0, 80.0)]  # leaves the array on the right
    mask = stroke_mask(shape, pts, (1.0, 2.0))
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        line = cells_on_segment(a, b)
        inside = (line[:, 1] < shape[1]) & (line[:, 0] < shape[0])
        assert mask[line[inside, 0], line[inside, 1]].all()
    assert mask[45, 59]
    assert not mask[25, 30]


def test_stroke_single_point_equals_disk():
    np.testing.assert_array_equal(
        stroke_mask((30, 30), [(12.5, 7.25)], (3, 5)), disk_footprint((30, 30), [(12.5, 7.25)], (3, 5))
    )


def test_stroke_validates():
    with pytest.raises(ValueError):
        stroke_mask((10, 10), np.zeros((0, 2)), (1, 1))
    with pytest.raises(ValueError):
        stroke_mask((10, 10), [(1, 1)], (0, 1))
    with pytest.raises(ValueError):
        stroke_mask((10, 10), [(1, 1, 1)], (1, 1))
    with pytest.raises(ValueError):
        disk_footprint((10,), [(1, 1)], (1, 1))


def test_rect_mask_inclusive_clipped_order_independent():
    mask = rect_mask((10, 12), 8, 15, -3, 5)
    expected = np.zeros((10, 12), dtype=bool)
    expected[0:9, 5:12] = True
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(rect_mask((10, 12), -3, 5, 8, 15), expected)
    np.testing.assert_array_equal(rect_mask((10, 12), 8, 5, -3, 15), expected)
    single = rect_mask((10, 12), 4, 4, 4, 4)
    assert single.sum() == 1 and single[4, 4]
    assert not rect_mask((10, 12), 20, 20, 30, 30).any()
    assert not rect_mask((10, 12), -5, 0, -1, 5).any()


def test_bounding_box():
    assert bounding_box(np.zeros((4, 5), dtype=bool)) is None
    mask = rect_mask((10, 12), 2, 3, 6, 8)
    assert bounding_box(mask) == (2, 7, 3, 9)
    r0, r1, c0, c1 = bounding_box(mask)
    assert mask[r0:r1, c0:c1].all() and mask.sum() == (r1 - r0) * (c1 - c0)
    mask = np.zeros((10, 12), dtype=bool)
    mask[0, 11] = mask[9, 0] = True
    assert bounding_box(mask) == (0, 10, 0, 12)
    stroke = stroke_mask((40, 40), [(10, 10), (20, 30)], (2, 2))
    r0, r1, c0, c1 = bounding_box(stroke)
    assert stroke[r0:r1, c0:c1].sum() == stroke.sum()
    assert (r0, r1, c0, c1) == (8, 23, 8, 33)
    with pytest.raises(ValueError):
        bounding_box(np.zeros(5, dtype=bool))
