"""Per-image saturated pixels, resolution estimate and refined cell: computed, logged, migrated."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.crystal.geometry import default_geometry
from kernels.resultsdb import ResultsDB
from kernels.resultsdb.dialect import dialect_for
from kernels.resultsdb.logger import ImageLogger, ImageRow
from kernels.resultsdb.migrations import MIGRATIONS, apply_migrations
from kernels.resultsdb.url import parse_db_url
from kernels.stages.frame_stats import resolution_estimate, saturated_pixels

CELL = (79.1, 79.2, 38.4, 90.0, 90.5, 91.0)


def test_saturated_pixels_count_good_pixels_at_full_scale():
    raw = np.zeros((8, 8), dtype=np.uint16)
    raw[0, :3] = 65535
    raw[5, 5] = 65535
    raw[6, 6] = 65534  # bright, not saturated
    mask = np.ones_like(raw, dtype=bool)
    mask[5, 5] = False  # a bad pixel does not count
    assert saturated_pixels(raw, mask) == 3
    assert saturated_pixels(np.zeros((4, 4), dtype=np.uint16), np.ones((4, 4), bool)) == 0
    assert saturated_pixels(raw.astype(np.float32), mask) == 0  # calibrated input: no ADC


def test_resolution_estimate_is_the_d_of_the_outer_spots():
    geometry = default_geometry()
    wavelength = 1.3
    # spots on rings of known d: |s| = 2 sin(theta)/lambda, tan(2 theta) = r / distance
    d = np.array([10.0] * 5 + [4.0] * 90 + [2.5] * 5)
    two_theta = 2 * np.arcsin(wavelength / (2 * d))
    r_px = geometry.distance_mm * np.tan(two_theta) / geometry.pixel_size_mm
    angle = np.linspace(0, 2 * np.pi, len(d), endpoint=False)
    col = geometry.beam_x + r_px * np.cos(angle)
    row = geometry.beam_y + r_px * np.sin(angle)
    estimate = resolution_estimate(col, row, wavelength, geometry)
    assert 2.5 <= estimate <= 4.0  # the 95th percentile lies in the outer rings, not beyond
    assert resolution_estimate(col[:95], row[:95], wavelength, geometry) == pytest.approx(4.0)
    assert resolution_estimate([], [], wavelength, geometry) == 0.0
    assert resolution_estimate(col, row, 0.0, geometry) == 0.0


def image(event: int, cell=()) -> ImageRow:
    return ImageRow(
        0, event, True, 40, bool(cell), 30, 20, "integrated" if cell else "hit", "", 0, "nid1",
        1.7e9 + event, {"calibrate": 0.001}, t_acquired=1.6e9 + event, n_saturated=event, d_est=2.0 + event, cell=cell,
    )  # fmt: skip


def test_details_are_logged_and_read_back(db_url):
    db = ResultsDB(db_url)
    run, trial = db.ensure_run("cxi1", "r0001"), db.ensure_trial("default", {})
    logger = ImageLogger(ResultsDB(db_url), run, trial)
    logger.add_many([image(0), image(1, CELL)])
    logger.close()
    first, second = db.images(run, trial)
    assert (first["n_saturated"], first["d_est"], first["cell_a"]) == (0, 2.0, 0.0)
    assert second["t_acquired"] == pytest.approx(1.6e9 + 1)
    assert second["n_saturated"] == 1 and second["d_est"] == pytest.approx(3.0)
    got = tuple(second[c] for c in ("cell_a", "cell_b", "cell_c"))
    got += tuple(second[c] for c in ("cell_alpha", "cell_beta", "cell_gamma"))
    assert got == pytest.approx(CELL)


def test_a_version_3_db_gains_the_columns_and_keeps_its_rows(db_url):
    dialect = dialect_for(parse_db_url(db_url))
    conn = dialect.connect()
    try:
        assert apply_migrations(conn, dialect, MIGRATIONS[:3]) == 3
        cursor = conn.cursor()
        cursor.execute(
            "INSERT INTO images (run_id, trial_id, chunk, event, hit, n_spots, is_indexed, "
            "n_refined, n_integrated, status, reason, mpi_rank, host, t_start, timings) "
            "VALUES (1, 1, 0, 0, 1, 30, 0, 0, 0, 'hit', '', 0, 'h', 1.0, '{}')"
        )
        conn.commit()
        # a second process applied one column of step 4 already: the step still completes
        cursor.execute(dialect.ddl(MIGRATIONS[3].statements[0]))
        conn.commit()
        assert apply_migrations(conn, dialect) == len(MIGRATIONS)
        cursor.execute("SELECT n_saturated, d_est, cell_gamma FROM images")
        assert tuple(cursor.fetchone()) == (0, 0.0, 0.0)
        cursor.close()
    finally:
        conn.close()
