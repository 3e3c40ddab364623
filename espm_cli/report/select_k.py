"""select_k.png and select_k.csv: the held-out deviance per number of phases."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..io.atomic import write_text_atomic
from .figures import _pyplot, _save

CSV_FIELDS = (
    "k",
    "heldout_deviance",
    "heldout_se",
    "heldout_folds",
    "training_deviance",
    "final_objective",
    "suggested",
    "best",
    "seconds",
    "result",
)


def plot_select_k(selection, path: str | Path) -> Path:
    """Held-out and training deviance per entry against k, the suggestion marked.

    Parameters
    ----------
    selection : espm_cli.analysis.select_k.KSelection
    path : path of the PNG (written atomically)
    """
    plt = _pyplot()
    k = selection.k_values
    training = np.asarray(selection.training, dtype=float).mean(axis=1)
    figure, axis = plt.subplots(figsize=(6.0, 4.0))
    axis.errorbar(
        k,
        selection.mean,
        yerr=selection.standard_error,
        marker="o",
        capsize=3,
        label=f"held-out ({selection.n_folds} {selection.fold_kind} folds, ± 1 SE)",
    )
    axis.plot(k, training, marker="s", linestyle="--", color="0.45", label="training (entries the fit saw)")
    chosen = list(k).index(selection.suggested_k)
    axis.axvline(selection.suggested_k, color="tab:red", alpha=0.4)
    axis.plot(
        [selection.suggested_k],
        [selection.mean[chosen]],
        marker="*",
        markersize=16,
        color="tab:red",
        linestyle="none",
        label=f"suggested k = {selection.suggested_k}",
    )
    axis.set_xlabel("number of phases k")
    axis.set_ylabel("Poisson deviance per entry")
    axis.set_xticks(k)
    axis.legend(fontsize=8)
    axis.set_title("Choosing k: deviance of held-out entries")
    try:
        return _save(figure, path)
    finally:
        plt.close(figure)


def select_k_csv(selection, path: str | Path, extra: dict | None = None) -> Path:
    """select_k.csv: one row per k (``extra``: k -> more columns, e.g. the result file)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in selection.rows():
        row.update((extra or {}).get(row["k"], {}))
        writer.writerow(
            {key: (f"{value:.8g}" if isinstance(value, float) else value) for key, value in row.items()}
        )
    return write_text_atomic(path, buffer.getvalue())


def select_k_table(selection, extra: dict | None = None) -> str:
    """The numbers as aligned text for the terminal."""
    lines = [f"{'k':>3}  {'held-out deviance':>17}  {'± SE':>9}  {'training':>9}  {'objective':>11}"]
    for row in selection.rows():
        objective = (extra or {}).get(row["k"], {}).get("final_objective", "")
        mark = "  <- suggested" if row["suggested"] else ("  (lowest)" if row["best"] else "")
        lines.append(
            f"{row['k']:>3}  {row['heldout_deviance']:17.6f}  {row['heldout_se']:9.2g}  "
            f"{row['training_deviance']:9.6f}  {str(objective):>11}{mark}"
        )
    return "\n".join(lines)
