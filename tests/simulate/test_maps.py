"""The default particles keep the first phase (the matrix) at every image size."""

import numpy as np
import pytest

from espm_cli.simulate.maps import abundance_maps, particles_map


@pytest.mark.parametrize("side", [128, 256, 512])
def test_default_particles_cover_the_same_share_at_every_size(side):
    """Their radius grows with the side: a count that grew with the area too covered a
    512 x 512 image whole (the matrix phase had no pixel)."""
    coverage = particles_map((side, side), np.random.default_rng(0)).mean()
    assert 0.45 < coverage < 0.8, coverage  # 0.60 at 128, 256 and 512 with this seed


def test_the_matrix_phase_is_present_in_a_large_image():
    maps = abundance_maps((512, 512), 3, ("particles", "layer"), rng=np.random.default_rng(0))
    shares = maps.reshape(3, -1).mean(axis=1)
    assert shares[0] > 0.2, shares  # was 0.0
    np.testing.assert_allclose(maps.sum(axis=0), 1.0)


def test_small_images_keep_their_particles():
    """Up to 128 x 128 the count is one per 400 pixels, as before (same maps, same seed)."""
    rng = np.random.default_rng(3)
    expected = particles_map((64, 64), np.random.default_rng(3), n_particles=(64 * 64) // 400)
    np.testing.assert_array_equal(particles_map((64, 64), rng), expected)
