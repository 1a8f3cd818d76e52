"""Importing the segmentation package, or a weight-free segmenter, leaves SAM unloaded."""

from __future__ import annotations

import subprocess
import sys


def test_weight_free_segmenters_do_not_import_segment_anything():
    code = (
        "import sys\n"
        "import torchrl_psp.segmentation\n"
        "from torchrl_psp.segmentation import SuperpixelSegmentation, ColorTaskMask\n"
        "from torchrl_psp.segmentation import SAMSegmentation, PerSAMSegmentation\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'segment_anything')\n"
        "assert not loaded, loaded\n"
        "from torchrl_psp.segmentation import build_tiny_sam\n"
        "build_tiny_sam(image_size=64)\n"
        "assert 'segment_anything' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
