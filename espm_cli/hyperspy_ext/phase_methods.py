"""The methods the espm_cli signal types add to exspy's EDS spectra.

``decompose_phases`` runs hyperspy's own ``decomposition`` with a
:class:`espm_cli.solver.SmoothNMF` as ``algorithm``, built by the workflow
(:mod:`espm_cli.analysis`: the same model, fit window, defaults and phase description as
``espm decompose``), so the results land in ``learning_results`` as usual (factors =
phase spectra, loadings = abundance maps), and keeps what hyperspy has no slot for (the
result, the model, the fitted estimator) in ``phase_results``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse
from hyperspy.signals import LazySignal

from .composition_table import CompositionTable
from .model_from_metadata import check_overrides, model_from_signal, parse_elements, signal_acquisition
from .model_from_metadata import model_options as _model_build_options

if TYPE_CHECKING:
    from espm_cli.io import DecompositionResult
    from espm_cli.physics import EDXModel
    from espm_cli.solver import SmoothNMF

logger = logging.getLogger(__name__)

#: Dense float64 bytes of one block of a lazy signal read at once.
_LAZY_BLOCK_BYTES = 64 * 2**20


@dataclasses.dataclass
class PhaseResults:
    """What ``decompose_phases`` found, kept next to hyperspy's ``learning_results``.

    Attributes
    ----------
    model : espm_cli.physics.EDXModel
        The physics model whose ``G`` was used (on the fit window).
    estimator : espm_cli.solver.SmoothNMF
        The fitted estimator (``losses_``, ``n_iter_``, ``converged_``, ...).
    result : espm_cli.io.DecompositionResult
        The same result type ``espm decompose`` writes: W, maps, spectra (counts per
        pixel), compositions (NaN below detection), phase names and kinds, counts, line
        shares, residual peaks.
    """

    model: EDXModel
    estimator: SmoothNMF
    result: DecompositionResult

    @property
    def W(self) -> np.ndarray:
        """(m, k): element and continuum content of each phase; rows follow ``G_labels``."""
        return self.result.W

    @property
    def G_labels(self) -> tuple[str, ...]:
        """Labels of G's columns (W's rows): element symbols, then the continuum."""
        return tuple(self.result.G_labels)

    @property
    def maps(self) -> np.ndarray:
        """(k, ny, nx): abundance map of each phase."""
        return self.result.maps

    @property
    def spectra(self) -> np.ndarray:
        """(k, n_window): each phase's spectrum in counts per pixel, (G W)ᵀ x mean abundance."""
        return self.result.spectra

    @property
    def energy(self) -> np.ndarray:
        """(n_window,) keV: the channels of the fit window."""
        return self.result.energy

    @property
    def names(self) -> tuple[str, ...]:
        """``"phase 1 (Fe-Pt)"``, ``"phase 2 (continuum)"``, ``"phase 3 (empty)"``, ..."""
        return tuple(self.result.phase_names)

    @property
    def composition(self) -> CompositionTable:
        """CompositionTable: at.% per phase (NaN for an element below detection)."""
        return CompositionTable.from_array(
            self.result.elements,
            self.result.composition,
            phases=self.result.phase_names,
            uncertainty=self.result.composition_sd,
        )


class _WholeImageFit:
    """Lets hyperspy's decomposition run one SmoothNMF fit over the whole image.

    The counts reach the estimator as :func:`espm_cli.analysis.fit_matrix` makes them
    for the command line (CSR of the nonzeros when sparse), so both front ends fit the
    same matrix. hyperspy streams the blocks of a lazy signal through ``partial_fit``;
    each block is kept as a sparse matrix of its nonzero counts, so memory grows with the
    counts, not with pixels x channels. SmoothNMF needs every pixel in each update, so
    the fit runs once, when hyperspy first asks for the result after the last block.
    hyperspy then re-reads the blocks through ``transform``, which hands back the fitted
    abundances (with the Laplacian over the whole grid) in the order the blocks come,
    pass after pass: ``decompose_phases`` rechunks the data into runs of whole image
    rows, so that order is the raster order the fit saw (and ``decompose_phases`` sets
    the loadings from the fit afterwards in any case).
    """

    def __init__(self, estimator):
        self.estimator = estimator
        self._blocks = []
        self._abundances = None
        self._next_row = 0

    def partial_fit(self, X):
        self._blocks.append(scipy.sparse.csr_matrix(X))
        return self

    def fit_transform(self, X):
        self.partial_fit(X)
        return self._fitted_abundances()

    @property
    def components_(self):
        self._fitted_abundances()
        return self.estimator.components_

    def transform(self, X):
        abundances = self._fitted_abundances()
        if self._next_row == abundances.shape[0]:  # hyperspy may read the blocks again
            self._next_row = 0
        start, stop = self._next_row, self._next_row + X.shape[0]
        if stop > abundances.shape[0]:
            raise RuntimeError("hyperspy asked for more pixels than were fitted.")
        self._next_row = stop
        return abundances[start:stop]

    def _fitted_abundances(self):
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        from espm_cli.analysis import fit_matrix

        if self._abundances is None:
            counts = scipy.sparse.vstack(self._blocks, format="csr")
            self._blocks = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # n_iter_/converged_ say it
                self._abundances = self.estimator.fit_transform(fit_matrix(counts))
        return self._abundances


def _is_poisson_estimator(algorithm):
    """Whether ``algorithm`` fits Poisson counts (a SmoothNMF, or the whole-image wrapper)."""
    from espm_cli.solver import SmoothNMF

    return isinstance(algorithm, (SmoothNMF, _WholeImageFit))


def navigation_shape_2d(signal: Any) -> tuple[int, int]:
    """``(ny, nx)`` of the pixel grid from the navigation axes (``(1, n)`` for a line)."""
    shape = signal.axes_manager.navigation_shape  # hyperspy order: (nx, ny)
    if len(shape) == 2:
        return (int(shape[1]), int(shape[0]))
    if len(shape) == 1:
        return (1, int(shape[0]))
    raise ValueError(
        f"the signal has {len(shape)} navigation axes; decompose_phases needs a "
        "spectrum image with 1 or 2 navigation axes (a line scan or a map)."
    )


def _float_data_in_row_blocks(signal):
    """The data as float; lazy data in blocks of whole image rows of bounded size."""
    data = signal.data
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype("float64")
    if isinstance(signal, LazySignal):
        # array axes are (ny, nx, channels) or (n, channels): split only the first
        row_bytes = 8 * int(np.prod(data.shape[1:]))
        rows = max(1, min(data.shape[0], _LAZY_BLOCK_BYTES // row_bytes))
        data = data.rechunk({0: rows, **{axis: -1 for axis in range(1, data.ndim)}})
    return data


if TYPE_CHECKING:  # the mixins are combined with hyperspy signal classes (untyped)
    _SignalBase = Any
else:
    _SignalBase = object


class PhaseDecompositionMixin(_SignalBase):
    """Adds ``build_G``, ``decompose_phases``, ``composition_table`` and
    ``plot_phases`` to an exspy EDS spectrum class."""

    #: Set by :meth:`decompose_phases`; None before.
    phase_results: PhaseResults | None = None
    if TYPE_CHECKING:  # provided by the hyperspy signal class
        data: Any

    def build_G(self, elements: str | Sequence[str] | None = None, **overrides: Any) -> EDXModel:
        """Build the physics model (G) of this spectrum image from its metadata.

        Parameters
        ----------
        elements : str or sequence of str, optional
            Elements to model (``"Fe,Pt,O"`` or ``["Fe", "Pt", "O"]``); the
            metadata's ``Sample.elements`` by default.
        **overrides
            Replace or supply acquisition values: ``beam_energy_keV``,
            ``mnka_fwhm_eV``, ``elevation_deg``, ``azimuth_deg``, ``tilt_deg``,
            ``thickness_nm``, ``density_g_cm3``; and model options
            ``ignored_elements``, ``kfactors``, ``efficiency_file``,
            ``window_layers``, ``dead_layer_um``, ``crystal_thickness_um``,
            ``composition``.

        Returns
        -------
        espm_cli.physics.EDXModel
            ``.G`` is (n_channels, m); pass the model as ``SmoothNMF(G=model)``.
        """
        return model_from_signal(self, elements, **overrides)

    def decomposition(self, *args: Any, **kwargs: Any) -> Any:
        """hyperspy's (and exspy's) ``decomposition``; with a Poisson estimator, no flags needed.

        For every other algorithm this is exspy's method unchanged. When ``algorithm`` is
        a :class:`espm_cli.solver.SmoothNMF` (a Poisson / KL fit), the two settings
        that would break it default the other way: ``normalize_poissonian_noise=False``
        (exspy's EDS_TEM default is True: it rescales the counts) and
        ``navigation_mask=None`` (exspy's default 1.0 is a vacuum mask: on sparse TEM
        data it drops almost every pixel); passing them explicitly still wins. Integer
        counts, which hyperspy refuses, are handed to hyperspy as float64 for the call
        (the signal's own data are left as they are).

        Parameters
        ----------
        *args, **kwargs
            As for ``hyperspy.signal.BaseSignal.decomposition``.
        """
        algorithm = kwargs.get("algorithm")
        if not _is_poisson_estimator(algorithm):
            return super().decomposition(*args, **kwargs)
        kwargs.setdefault("normalize_poissonian_noise", False)
        kwargs.setdefault("navigation_mask", None)
        if kwargs["normalize_poissonian_noise"] or kwargs["navigation_mask"] is not None:
            import warnings

            from espm_cli.analysis import EspmWarning

            warnings.warn(
                "SmoothNMF fits Poisson counts: normalize_poissonian_noise=True "
                "rescales them and a navigation_mask leaves pixels out; pass "
                "neither for a Poisson fit",
                EspmWarning,
                stacklevel=2,
            )
        if np.issubdtype(self.data.dtype, np.floating):
            return super().decomposition(*args, **kwargs)
        original_data = self.data
        self.data = original_data.astype("float64")
        try:
            return super().decomposition(*args, **kwargs)
        finally:
            self.data = original_data

    def _fit_setup(self, elements, model, model_options):
        """The grid, axis, fit window, model and G rows of a fit (decompose_phases' rules)."""
        from espm_cli.analysis.defaults import DEFAULT_LOW_KEV
        from espm_cli.analysis.window import FitWindow, choose_fit_window
        from espm_cli.physics import EnergyAxis

        shape_2d = navigation_shape_2d(self)
        axis = EnergyAxis.from_axis(self.axes_manager.signal_axes[0])
        options = dict(model_options or {})
        if model is None:
            check_overrides(self, options)
            window, model = choose_fit_window(
                axis,
                signal_acquisition(self, **options),
                elements=parse_elements(elements),
                ignored_elements=options.get("ignored_elements", ()),
                source="the signal",
                **_model_build_options(options),
            )
            channels = None
        else:
            if np.asarray(model.G).shape[0] != axis.size:
                raise ValueError(
                    f"model= has {np.asarray(model.G).shape[0]} channels but the signal "
                    f"{axis.size}; build it on the signal's axis (s.build_G())."
                )
            # the workflow's window: from DEFAULT_LOW_KEV to the beam energy, where G is nonzero
            energies = axis.energies
            covered = np.flatnonzero(
                np.asarray(model.G).any(axis=1)
                & (energies >= DEFAULT_LOW_KEV)
                & (energies <= model.beam_energy_keV)
            )
            start, stop = int(covered[0]), int(covered[-1]) + 1
            window = FitWindow(
                start,
                stop,
                EnergyAxis(axis.offset_keV + start * axis.scale_keV, axis.scale_keV, stop - start),
                axis.size,
            )
            channels = slice(window.start, window.stop)
        return shape_2d, axis, window, model, channels

    def select_n_components(
        self,
        k_range,
        elements=None,
        *,
        model=None,
        model_options=None,
        n_folds=None,
        fold_kind=None,
        fold_seed=0,
        **estimator_options,
    ):
        """Held-out deviance per number of phases and the suggested k (``espm select-k``).

        Each k of ``k_range`` is fitted once per fold of held-out entries, with the fit
        window, model and estimator defaults of :meth:`decompose_phases`; see
        :func:`espm_cli.analysis.select_k.select_k`. Lazy signals are computed.

        Parameters
        ----------
        k_range : sequence of int or str
            ``range(2, 9)`` or ``"2..8"``.
        elements, model, model_options
            As for :meth:`decompose_phases`.
        n_folds, fold_kind, fold_seed
            Folds of held-out entries (defaults: 3, "speckle", 0).
        **estimator_options
            SmoothNMF arguments (``lambda_L``, ``mu``, ``simplex``, ...).

        Returns
        -------
        espm_cli.analysis.select_k.KSelection
            ``.suggested_k``, ``.rows()``, ``.mean``, ``.standard_error``.
        """
        from espm_cli.analysis import select_k as selection

        shape_2d, axis, window, model, channels = self._fit_setup(elements, model, model_options)
        data = self.data.compute() if hasattr(self.data, "compute") else np.asarray(self.data)
        X = data.reshape(-1, axis.size)[:, window.start : window.stop]
        k_values = selection.parse_k_range(k_range) if isinstance(k_range, str) else tuple(k_range)
        return selection.select_k(
            X,
            k_values,
            model=model,
            shape_2d=shape_2d,
            channels=channels,
            n_folds=n_folds or selection.DEFAULT_N_FOLDS,
            fold_kind=fold_kind or selection.DEFAULT_FOLD_KIND,
            fold_seed=fold_seed,
            **estimator_options,
        )

    def decompose_phases(
        self,
        n_components: int,
        elements: str | Sequence[str] | None = None,
        *,
        model: EDXModel | None = None,
        model_options: dict[str, Any] | None = None,
        print_info: bool = False,
        uncertainty: bool = False,
        **estimator_options: Any,
    ) -> PhaseResults:
        """Decompose into phases with SmoothNMF: the workflow of ``espm decompose``.

        The model, the fit window (0.2 keV to the beam energy, then the channels where
        G is nonzero), the estimator's defaults (``espm_cli.analysis.defaults``) and the
        phase description are those of the command line, so the same data with the same
        options give the same W and H. Runs ``self.decomposition(algorithm=...)``
        without Poisson normalisation and without a vacuum mask (exspy's EDS_TEM
        defaults, which break a KL fit), on float data (hyperspy refuses integer counts;
        the signal's own data are left as they are), with the channels outside the fit
        window left out through hyperspy's ``signal_mask``. Results: hyperspy's
        ``learning_results`` (``get_decomposition_factors()`` are (G W)ᵀ on the whole
        axis, zero outside the window; ``get_decomposition_loadings()`` the maps) and
        ``self.phase_results``. Warns (:class:`espm_cli.analysis.EspmWarning`) about
        elements left out, a fit window holding few of the counts and peaks the model
        does not explain.

        Parameters
        ----------
        n_components : int
            Number of phases.
        elements : str or sequence of str, optional
            Elements of the model; the metadata's by default.
        model : espm_cli.physics.EDXModel, optional
            Use this model (on the signal's whole axis) instead of building one; the
            fit then uses the rows of its G in the fit window.
        model_options : dict, optional
            Keyword overrides as for :meth:`build_G`.
        print_info : bool, default False
            Let hyperspy print its decomposition summary.
        uncertainty : bool, default False
            Also compute 1σ error bars of the compositions and maps (a parametric
            bootstrap, :mod:`espm_cli.analysis.uncertainty`; ``espm decompose
            --uncertainty``): ``composition_table()`` then prints ``50.1 ± 0.6``.
        **estimator_options
            Other :class:`espm_cli.solver.SmoothNMF` arguments (``lambda_L``,
            ``mu``, ``simplex``, ``max_iter``, ``tol``, ``random_state``, ``init``, ...);
            those not given take the workflow's defaults.

        Returns
        -------
        PhaseResults
            Also stored as ``self.phase_results``.
        """
        from espm_cli.analysis import assemble_result, make_estimator
        from espm_cli.analysis.decomposition import SET_BY_WORKFLOW, model_acquisition

        clash = [name for name in SET_BY_WORKFLOW if name in estimator_options]
        if clash:
            raise ValueError(
                f"{clash[0]} cannot be passed to decompose_phases: it is set from the "
                "signal (use model= to give your own G)."
            )
        if model is not None and (elements is not None or model_options):
            raise ValueError(
                "model= was given together with elements/model_options; pass either a "
                "ready model or the options to build one."
            )
        shape_2d, axis, window, model, channels = self._fit_setup(elements, model, model_options)
        estimator = make_estimator(n_components, model, shape_2d, channels=channels, **estimator_options)
        signal_mask = window.signal_mask()
        if signal_mask is not None:
            logger.info(
                "decompose_phases fits %.3f to %.3f keV (%d channels left out)",
                window.axis.low_keV,
                window.axis.high_keV,
                int(signal_mask.sum()),
            )
        algorithm = _WholeImageFit(estimator)

        original_data = self.data
        self.data = _float_data_in_row_blocks(self)
        try:
            channel_totals = self.data.sum(axis=tuple(range(self.data.ndim - 1)))
            if hasattr(channel_totals, "compute"):
                channel_totals = channel_totals.compute()
            self.decomposition(
                algorithm=algorithm,
                normalize_poissonian_noise=False,
                navigation_mask=None,
                signal_mask=signal_mask,
                output_dimension=n_components,
                print_info=print_info,
            )
        finally:
            self.data = original_data
        n_pixels = int(np.prod(shape_2d))
        result = assemble_result(
            energy=axis.energies[window.start : window.stop],
            window=window,
            model=model,
            estimator=estimator,
            channel_totals=np.asarray(channel_totals),
            n_pixels=n_pixels,
            shape_2d=shape_2d,
            acquisition={**signal_acquisition(self).as_dict(), **model_acquisition(model)},
            advice="python",
        )
        if uncertainty:
            from espm_cli.analysis.uncertainty import bootstrap_uncertainty, with_uncertainty

            result = with_uncertainty(
                result,
                bootstrap_uncertainty(
                    estimator, model, result.detected, seed=int(estimator_options.get("random_state") or 0)
                ),
            )
        self.learning_results.loadings = np.ascontiguousarray(estimator.H_.T)
        factors = np.zeros((axis.size, n_components))
        factors[window.start : window.stop] = np.asarray(estimator.components_).T
        self.learning_results.factors = factors
        self.phase_results = PhaseResults(model=model, estimator=estimator, result=result)
        return self.phase_results

    def kfactors_from_model(
        self,
        xray_lines: Sequence[str] | None = None,
        *,
        model: EDXModel | None = None,
        windows_width: float = 2.0,
    ) -> list[float]:
        """Cliff-Lorimer k-factors from the physics model, for ``quantification``.

        ``s.quantification(s.get_lines_intensity(), "CL", factors=s.kfactors_from_model())``
        quantifies with the model's cross-sections, detector efficiency and absorption
        instead of measured k-factors.

        Parameters
        ----------
        xray_lines : sequence of str, optional
            exspy line names (``"Fe_Ka"``); the metadata's ``Sample.xray_lines`` by default.
        model : espm_cli.physics.EDXModel, optional
            On this signal's energy axis; :meth:`build_G` by default.
        windows_width : float
            As for ``get_lines_intensity`` (the window is this many FWHM wide).

        Returns
        -------
        list of float
            One per line, in order, relative to the first.
        """
        import hyperspy.api as hs

        from espm_cli.analysis.kfactors import cliff_lorimer_factors

        if xray_lines is None:
            xray_lines = list(self.metadata.get_item("Sample.xray_lines", []))
            if not xray_lines:
                raise ValueError("no X-ray lines: pass xray_lines=[...] or call s.add_lines()")
        model = self.build_G() if model is None else model
        labels = list(model.labels)
        missing = [line for line in xray_lines if str(line).split("_")[0] not in labels]
        if missing:
            raise ValueError(
                f"line {missing[0]!r}: its element is not in the model ({', '.join(model.elements)})"
            )
        # the columns of G integrated exactly as exspy integrates the data
        columns = hs.signals.Signal1D(np.ascontiguousarray(np.asarray(model.G).T))
        columns.axes_manager.signal_axes[0].update_from(
            self.axes_manager.signal_axes[0], ("offset", "scale", "units", "name")
        )
        columns.metadata.add_dictionary(
            {"Acquisition_instrument": self.metadata.get_item("Acquisition_instrument").as_dictionary()}
        )
        columns.set_signal_type(self.metadata.Signal.signal_type)
        intensities = columns.get_lines_intensity(
            xray_lines, integration_windows=windows_width, plot_result=False
        )
        per_atom = [
            float(np.asarray(intensity.data)[labels.index(str(line).split("_")[0])])
            for line, intensity in zip(xray_lines, intensities)
        ]
        return cliff_lorimer_factors(xray_lines, per_atom)

    def phase_spectra(self) -> Any:
        """The phase spectra (counts per pixel, fit window) as an EDS signal (after
        decompose_phases), with the microscope, detector, elements and X-ray lines set, so
        that exspy's ``get_lines_intensity`` and ``quantification`` work on them.

        Returns
        -------
        EspmCliEDSTEMSpectrum or EspmCliEDSSEMSpectrum
        """
        from .result_file import phase_spectra_signal

        return phase_spectra_signal(self._require_phase_results("phase_spectra").result)

    def composition_table(self) -> CompositionTable:
        """Atomic percent of each element in each phase (after decompose_phases).

        Returns
        -------
        CompositionTable
            Prints as a table (phases x elements); ``.to_dict()``,
            ``.atomic_percent`` (array), ``.phase(i)``.
        """
        return self._require_phase_results("composition_table").composition

    def plot_phases(self, *, figsize: tuple[float, float] | None = None, cmap: str = "viridis") -> Any:
        """Plot each phase's map beside its spectrum (after decompose_phases).

        Parameters
        ----------
        figsize : tuple of float, optional
            Figure size in inches; about 10 x (2.6 per phase) by default.
        cmap : str, default "viridis"
            Colour map of the abundance maps.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plotting import phase_figure

        results = self._require_phase_results("plot_phases")
        return phase_figure(results, self.axes_manager, figsize=figsize, cmap=cmap)

    def _require_phase_results(self, caller):
        if self.phase_results is None:
            raise RuntimeError(
                f"{caller}() needs a decomposition: run s.decompose_phases(n_components) first."
            )
        return self.phase_results
