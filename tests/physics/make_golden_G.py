"""Regenerate ``data/golden_G.npz`` (only after a deliberate, reviewed physics change).

Usage: python tests/physics/make_golden_G.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_physics_model import GOLDEN, golden_model  # noqa: E402

if __name__ == "__main__":
    model = golden_model()
    np.savez_compressed(GOLDEN, G=model.G, labels=np.array(model.labels), energies=model.energy_axis.energies)
