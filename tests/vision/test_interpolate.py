"""Bicubic resampling of position embeddings against torch's interpolate
(bicubic, align_corners=False), which transformers' interpolate_pos_encoding calls."""
import numpy as np
import pytest

from opentransformer.vision.interpolate import resize_bicubic

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("grid,height,width", [(14, 16, 16), (14, 7, 9), (4, 4, 5), (4, 2, 3), (4, 9, 4),
                                               (14, 28, 14), (4, 1, 1), (1, 3, 2), (24, 37, 5)])
def test_matches_torch(grid, height, width):
    g = np.random.default_rng(grid * height + width).standard_normal((grid, grid, 6)).astype(np.float32)
    t = torch.from_numpy(g).permute(2, 0, 1)[None]
    want = torch.nn.functional.interpolate(t, size=(height, width), mode="bicubic", align_corners=False)
    want = want[0].permute(1, 2, 0).numpy()
    assert np.abs(resize_bicubic(g, height, width) - want).max() < 1e-5
