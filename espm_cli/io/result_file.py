"""The result of one decomposition run, and its HDF5 file (readable with plain h5py).

Schema (version 1), see the README:

root attributes
    ``tool``, ``tool_version``, ``schema_version``, ``created`` (ISO 8601 UTC),
    ``config_yaml`` (the run configuration), ``config_hash``, ``input_path``,
    ``input_sha256``, ``estimator_params`` (JSON), ``versions`` (JSON),
    ``acquisition`` (JSON), ``pixel_size``, ``pixel_unit`` (absent when unknown).
datasets
    ``energy`` (n_channels,) keV; ``G`` (n_channels, m); ``G_labels`` (m,);
    ``W`` (m, k); ``maps`` (k, ny, nx); ``spectra`` (k, n_channels) counts per
    pixel; ``mean_spectrum`` (n_channels,) of the data; ``composition``
    (k, n_elements) at.%; ``elements`` (n_elements,); ``loss_history``
    (n_iter, n_terms) with attribute ``names``; ``n_iter``, ``converged``,
    ``fit_seconds`` (scalars); group ``lines`` (element, line, energy_keV, weight);
    with ``--uncertainty`` a group ``uncertainty``: ``composition_sd`` (k, n_elements)
    at.% and ``maps_sd`` (k, ny, nx), 1σ, attributes ``method``, ``n_draws``,
    ``n_iterations``, ``seconds``.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path

SCHEMA_VERSION = 1


@dataclasses.dataclass
class DecompositionResult:
    """Everything one run produced, in the orientation of the HDF5 file."""

    energy: np.ndarray
    G: np.ndarray
    G_labels: list[str]
    W: np.ndarray
    maps: np.ndarray
    spectra: np.ndarray
    mean_spectrum: np.ndarray
    composition: np.ndarray
    elements: list[str]
    loss_history: np.ndarray
    loss_names: list[str]
    n_iter: int
    converged: bool
    fit_seconds: float
    config: dict = dataclasses.field(default_factory=dict)
    config_hash: str = ""
    input_path: str = ""
    input_sha256: str = ""
    estimator_params: dict = dataclasses.field(default_factory=dict)
    versions: dict = dataclasses.field(default_factory=dict)
    acquisition: dict = dataclasses.field(default_factory=dict)
    pixel_size: float | None = None
    pixel_unit: str | None = None
    lines: list[dict] = dataclasses.field(default_factory=list)
    created: str = ""
    #: What each phase is (see analysis/phases.py); empty when unknown (older files).
    phase_names: list[str] = dataclasses.field(default_factory=list)
    phase_kinds: list[str] = dataclasses.field(default_factory=list)
    phase_counts: np.ndarray | None = None
    line_fraction: np.ndarray | None = None
    detected: np.ndarray | None = None
    line_counts: np.ndarray | None = None
    detection_limit: np.ndarray | None = None
    residual_peaks: list[dict] = dataclasses.field(default_factory=list)
    window_share: float = float("nan")
    #: 1σ error bars (``--uncertainty``, analysis/uncertainty.py); None when not asked for.
    composition_sd: np.ndarray | None = None
    maps_sd: np.ndarray | None = None
    uncertainty: dict = dataclasses.field(default_factory=dict)

    @property
    def n_components(self) -> int:
        return int(self.W.shape[1])

    @property
    def final_objective(self) -> float:
        """Last value of the last loss column (the total), NaN when there is none."""
        history = np.asarray(self.loss_history)
        return float(history[-1, -1]) if history.size else float("nan")


def file_sha256(path: str | Path, chunk_bytes: int = 2**20) -> str:
    """Hex SHA-256 of a file's bytes; of a folder (.zspy), of its files' names and bytes."""
    digest = hashlib.sha256()
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(chunk_bytes):
                digest.update(chunk)
    return digest.hexdigest()


def _json_default(value: Any):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _to_json(value: Any, sort_keys: bool = True) -> str:
    return json.dumps(value, default=_json_default, sort_keys=sort_keys)


def _strings(values) -> np.ndarray:
    import h5py

    return np.array([str(v) for v in values], dtype=h5py.string_dtype())


def write_result(result: DecompositionResult, path: str | Path) -> Path:
    """Write ``result`` to ``path`` atomically (temporary file, then rename).

    Parameters
    ----------
    result : DecompositionResult
    path : str or pathlib.Path

    Returns
    -------
    pathlib.Path
    """
    import h5py
    import yaml

    path = Path(path)
    created = result.created or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with atomic_path(path) as temporary:
        with h5py.File(temporary, "w") as f:
            from .. import __version__

            attrs = f.attrs
            attrs["tool"] = "espm_cli"
            attrs["tool_version"] = __version__
            attrs["schema_version"] = SCHEMA_VERSION
            attrs["created"] = created
            attrs["config_yaml"] = yaml.safe_dump(
                json.loads(_to_json(result.config, sort_keys=False)), sort_keys=False
            )
            attrs["config_hash"] = result.config_hash
            attrs["input_path"] = str(result.input_path)
            attrs["input_sha256"] = result.input_sha256
            attrs["estimator_params"] = _to_json(result.estimator_params)
            attrs["versions"] = _to_json(result.versions)
            attrs["acquisition"] = _to_json(result.acquisition)
            if result.pixel_size is not None:
                attrs["pixel_size"] = float(result.pixel_size)
                attrs["pixel_unit"] = str(result.pixel_unit or "")

            f.create_dataset("energy", data=np.asarray(result.energy, dtype=np.float64))
            f["energy"].attrs["units"] = "keV"
            f.create_dataset("G", data=np.asarray(result.G), compression="gzip")
            f.create_dataset("G_labels", data=_strings(result.G_labels))
            f.create_dataset("W", data=np.asarray(result.W))
            f.create_dataset("maps", data=np.asarray(result.maps), compression="gzip")
            f.create_dataset("spectra", data=np.asarray(result.spectra))
            f["spectra"].attrs["units"] = "counts per pixel (image mean)"
            f.create_dataset("mean_spectrum", data=np.asarray(result.mean_spectrum, dtype=np.float64))
            composition = np.asarray(result.composition, dtype=np.float64).reshape(
                result.n_components, len(result.elements)
            )
            f.create_dataset("composition", data=composition)
            f["composition"].attrs["units"] = "at.%"
            f.create_dataset("elements", data=_strings(result.elements))
            history = np.asarray(result.loss_history, dtype=np.float64)
            history = history.reshape(-1, len(result.loss_names)) if result.loss_names else history
            f.create_dataset("loss_history", data=history)
            f["loss_history"].attrs["names"] = _strings(result.loss_names)
            f.create_dataset("n_iter", data=int(result.n_iter))
            f.create_dataset("converged", data=bool(result.converged))
            f.create_dataset("fit_seconds", data=float(result.fit_seconds))
            lines = f.create_group("lines")
            lines.create_dataset("element", data=_strings([r["element"] for r in result.lines]))
            lines.create_dataset("line", data=_strings([r["line"] for r in result.lines]))
            lines.create_dataset(
                "energy_keV", data=np.array([r["energy_keV"] for r in result.lines], dtype=np.float64)
            )
            lines.create_dataset(
                "weight", data=np.array([r["weight"] for r in result.lines], dtype=np.float64)
            )
            attrs["window_share"] = float(result.window_share)
            if result.phase_names:
                _write_phases(f.create_group("phases"), result)
            if result.composition_sd is not None:
                _write_uncertainty(f.create_group("uncertainty"), result)
            peaks = f.create_group("residual_peaks")
            for name in _PEAK_NUMBERS:
                peaks.create_dataset(
                    name, data=np.array([p[name] for p in result.residual_peaks], dtype=np.float64)
                )
            for name in _PEAK_STRINGS:
                peaks.create_dataset(name, data=_strings([p[name] for p in result.residual_peaks]))
    return path


_PEAK_NUMBERS = ("energy_keV", "missed_counts", "sigma", "missed_share")
_PEAK_STRINGS = ("candidates", "message")
_PHASE_ARRAYS = ("phase_counts", "line_fraction", "detected", "line_counts", "detection_limit")


def _write_phases(group, result: DecompositionResult) -> None:
    group.create_dataset("names", data=_strings(result.phase_names))
    group.create_dataset("kinds", data=_strings(result.phase_kinds))
    for name in _PHASE_ARRAYS:
        value = getattr(result, name)
        if value is not None:
            group.create_dataset(name.removeprefix("phase_"), data=np.asarray(value))


def _write_uncertainty(group, result: DecompositionResult) -> None:
    group.create_dataset("composition_sd", data=np.asarray(result.composition_sd, dtype=np.float64))
    group["composition_sd"].attrs["units"] = "at.%"
    group.create_dataset("maps_sd", data=np.asarray(result.maps_sd, dtype=np.float64), compression="gzip")
    for key, value in result.uncertainty.items():
        group.attrs[key] = value


def _read_uncertainty(f) -> dict:
    if "uncertainty" not in f:
        return {}
    group = f["uncertainty"]
    return {
        "composition_sd": group["composition_sd"][()],
        "maps_sd": group["maps_sd"][()],
        "uncertainty": {
            key: _decode(value.item() if hasattr(value, "item") else value)
            for key, value in group.attrs.items()
        },
    }


def _read_phases(f) -> dict:
    if "phases" not in f:
        return {}
    group = f["phases"]
    out = {
        "phase_names": [str(s) for s in group["names"].asstr()[()]],
        "phase_kinds": [str(s) for s in group["kinds"].asstr()[()]],
    }
    for name in _PHASE_ARRAYS:
        key = name.removeprefix("phase_")
        if key in group:
            out[name] = group[key][()]
    return out


def _read_peaks(f) -> list[dict]:
    if "residual_peaks" not in f:
        return []
    group = f["residual_peaks"]
    columns = {name: group[name][()].tolist() for name in _PEAK_NUMBERS}
    columns.update({name: [str(s) for s in group[name].asstr()[()]] for name in _PEAK_STRINGS})
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def _decode(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


#: Datasets every result file has; a file without one is not a result file.
REQUIRED_DATASETS = (
    "energy",
    "G",
    "G_labels",
    "W",
    "maps",
    "spectra",
    "composition",
    "elements",
    "n_iter",
    "converged",
    "fit_seconds",
)


def _root_attributes(f) -> dict[str, Any]:
    return {name: _decode(value) for name, value in f.attrs.items()}


def read_root_attributes(path: str | Path) -> dict[str, Any]:
    """The root attributes of a result file, decoded (configuration, versions, ...)."""
    import h5py

    with h5py.File(path, "r") as f:
        return _root_attributes(f)


def read_result(path: str | Path) -> DecompositionResult:
    """Read a result file written by :func:`write_result`.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    DecompositionResult

    Raises
    ------
    ValueError
        When the file lacks one of ``REQUIRED_DATASETS``.
    """
    import h5py
    import yaml

    with h5py.File(path, "r") as f:
        missing = [name for name in REQUIRED_DATASETS if name not in f]
        if missing:
            raise ValueError(
                f"path={str(path)!r} is not an espm_cli result file: it has no {missing[0]!r} dataset."
            )
        attrs = _root_attributes(f)

        def strings(name: str) -> list[str]:
            return [str(s) for s in f[name].asstr()[()]] if name in f else []

        lines = []
        if "lines" in f:
            group = f["lines"]
            for element, line, energy, weight in zip(
                group["element"].asstr()[()],
                group["line"].asstr()[()],
                group["energy_keV"][()],
                group["weight"][()],
            ):
                lines.append(
                    {"element": element, "line": line, "energy_keV": float(energy), "weight": float(weight)}
                )
        return DecompositionResult(
            energy=f["energy"][()],
            G=f["G"][()],
            G_labels=strings("G_labels"),
            W=f["W"][()],
            maps=f["maps"][()],
            spectra=f["spectra"][()],
            mean_spectrum=f["mean_spectrum"][()] if "mean_spectrum" in f else np.zeros(0),
            composition=f["composition"][()],
            elements=strings("elements"),
            loss_history=f["loss_history"][()],
            loss_names=[str(s) for s in np.asarray(f["loss_history"].attrs.get("names", []), dtype=object)]
            if "loss_history" in f
            else [],
            n_iter=int(f["n_iter"][()]),
            converged=bool(f["converged"][()]),
            fit_seconds=float(f["fit_seconds"][()]),
            config=yaml.safe_load(attrs.get("config_yaml", "")) or {},
            config_hash=str(attrs.get("config_hash", "")),
            input_path=str(attrs.get("input_path", "")),
            input_sha256=str(attrs.get("input_sha256", "")),
            estimator_params=json.loads(attrs.get("estimator_params", "{}")),
            versions=json.loads(attrs.get("versions", "{}")),
            acquisition=json.loads(attrs.get("acquisition", "{}")),
            pixel_size=float(attrs["pixel_size"]) if "pixel_size" in attrs else None,
            pixel_unit=str(attrs["pixel_unit"]) if "pixel_unit" in attrs else None,
            lines=lines,
            created=str(attrs.get("created", "")),
            residual_peaks=_read_peaks(f),
            window_share=float(attrs.get("window_share", float("nan"))),
            **_read_phases(f),
            **_read_uncertainty(f),
        )


def read_config_hash(path: str | Path) -> str | None:
    """The ``config_hash`` attribute of a result file, None if unreadable or absent."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("config_hash")
    except OSError:
        return None
    return None if value is None else str(_decode(value))
