"""The espm_cli signal types are registered with hyperspy, eager and lazy."""

import subprocess
import sys
import warnings

import pytest
from exspy.signals import EDSSEMSpectrum, EDSTEMSpectrum
from hyperspy.signals import LazySignal
from hyperspy_ext_helpers import eds_signal

import espm_cli
from espm_cli.hyperspy_ext import (
    EspmCliEDSSEMSpectrum,
    EspmCliEDSTEMSpectrum,
    LazyEspmCliEDSSEMSpectrum,
    LazyEspmCliEDSTEMSpectrum,
)

FRESH_INTERPRETER_SCRIPT = """
import warnings
warnings.simplefilter("ignore")
import numpy as np
import hyperspy.api as hs
hs.print_known_signal_types()
s = hs.signals.Signal1D(np.zeros((2, 3, 10)))
s.set_signal_type("EDS_espm_cli")
print("eager:", type(s).__name__)
lazy = hs.signals.Signal1D(np.zeros((2, 3, 10))).as_lazy()
lazy.set_signal_type("EDS_SEM_espm_cli")
print("lazy:", type(lazy).__name__)
"""


def test_fresh_interpreter_lists_and_sets_the_types():
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_INTERPRETER_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "EDS_espm_cli" in out and "EDS_SEM_espm_cli" in out and "espm_cli" in out
    assert "eager: EspmCliEDSTEMSpectrum" in out
    assert "lazy: LazyEspmCliEDSSEMSpectrum" in out


@pytest.mark.parametrize(
    "signal_type, eager_class, lazy_class, exspy_class",
    [
        ("EDS_espm_cli", EspmCliEDSTEMSpectrum, LazyEspmCliEDSTEMSpectrum, EDSTEMSpectrum),
        ("EDS_SEM_espm_cli", EspmCliEDSSEMSpectrum, LazyEspmCliEDSSEMSpectrum, EDSSEMSpectrum),
    ],
)
def test_set_signal_type_eager_and_lazy(signal_type, eager_class, lazy_class, exspy_class):
    signal = eds_signal()
    signal.set_signal_type(signal_type)
    assert type(signal) is eager_class
    assert isinstance(signal, exspy_class)
    assert signal.metadata.Signal.signal_type == signal_type
    lazy = signal.as_lazy()
    assert type(lazy) is lazy_class and isinstance(lazy, LazySignal)
    assert isinstance(lazy, exspy_class)
    assert lazy.metadata.Signal.signal_type == signal_type
    back = lazy.as_lazy()
    back.compute()
    assert type(back) is eager_class
    for method in ("build_G", "decompose_phases", "composition_table", "plot_phases"):
        assert callable(getattr(lazy, method))


def test_tem_metadata_kept_when_typed(tmp_path):
    signal = eds_signal(signal_type="EDS_TEM", beam_energy=300.0)
    signal.set_signal_type("EDS_espm_cli")
    assert signal.metadata.Acquisition_instrument.TEM.beam_energy == 300.0
    path = tmp_path / "typed.hspy"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signal.save(path)
    reloaded = espm_cli.load(path)
    assert type(reloaded) is EspmCliEDSTEMSpectrum
    import hyperspy.api as hs

    assert type(hs.load(path, lazy=True)) is LazyEspmCliEDSTEMSpectrum


def test_load_picks_type_by_microscope(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eds_signal(signal_type="EDS_SEM", beam_energy=15.0).save(tmp_path / "sem.hspy")
    signal = espm_cli.load(tmp_path / "sem.hspy", lazy=True)
    assert type(signal) is LazyEspmCliEDSSEMSpectrum
    forced = espm_cli.load(tmp_path / "sem.hspy", signal_type="EDS_espm_cli")
    assert type(forced) is EspmCliEDSTEMSpectrum
    with pytest.raises(ValueError, match="signal_type='EDS'"):
        espm_cli.load(tmp_path / "sem.hspy", signal_type="EDS")


def test_load_refuses_a_file_without_spectrum_image(tmp_path):
    import hyperspy.api as hs
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hs.signals.Signal2D(np.zeros((4, 5))).save(tmp_path / "image.hspy")
    with pytest.raises(ValueError, match="no spectrum image"):
        espm_cli.load(tmp_path / "image.hspy")


def test_import_espm_cli_stays_light():
    code = "import sys, espm_cli; print(any(m.startswith(('hyperspy', 'exspy')) for m in sys.modules))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.stdout.strip() == "False", completed.stderr
