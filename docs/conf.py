"""Sphinx configuration of the espm_cli documentation (``make docs``).

The API pages are written at build time from each public package's ``__all__`` (so a name
added by any branch appears without editing a list here), the gallery is run by
sphinx-gallery from ../examples, and the Markdown notes of docs/ are pages through myst.
"""

import importlib
import os
import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
REALDATA = ROOT / ".." / "shared" / "realdata"

os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(ROOT))  # document this checkout, whatever is installed
# Other packages' deprecations and docstrings (hyperspy, exspy's inherited methods) are
# not ours to fix; they would bury the build's own messages.
warnings.filterwarnings("ignore", module=r"hyperspy\..*")
warnings.filterwarnings("ignore", message=r"Unknown section", module=r"numpydoc\..*")

import espm_cli  # noqa: E402  (after MPLBACKEND: the examples import matplotlib)

project = "espm_cli"
author = "the espm_cli authors"
copyright = "the espm_cli authors, GPL-3.0-or-later"
release = version = espm_cli.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.json",
    "auto_examples/*.md5",
]
templates_path = ["_templates"]
html_theme = "alabaster"
html_static_path = []
html_theme_options = {"description": "EDX spectrum images into phases: X ≈ G W H", "fixed_sidebar": True}

# --- autodoc / numpydoc ---------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types
numpydoc_show_class_members = False  # one page per class, not a stub per attribute
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
suppress_warnings = ["myst.header"]
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

intersphinx_mapping = {}  # the docs build offline (CI has no network)

# --- the API reference: one section per public package, names from its __all__ --------
PUBLIC_PACKAGES = {
    "espm_cli": "Top level: loading spectrum images and results",
    "espm_cli.solver": "Solver: the SmoothNMF estimator (X ≈ G W H)",
    "espm_cli.physics": "Physics: the G matrix",
    "espm_cli.analysis": "Analysis: the decomposition workflow both front ends use",
    "espm_cli.io": "Input and output: spectrum images and the result file",
    "espm_cli.hyperspy_ext": "The hyperspy extension",
    "espm_cli.simulate": "Simulation: spectrum images with known truth",
    "espm_cli.report": "Report: figures and tables of a result",
}


def public_names(package):
    """The documented names of ``package``: its ``__all__`` minus data constants."""
    module = importlib.import_module(package)
    names = []
    for name in module.__all__:
        if name.startswith("__"):
            continue
        value = getattr(module, name)
        if callable(value):  # functions and classes; constants are described in the guide
            names.append(name)
    return names


def write_api_pages():
    """docs/api/index.rst, regenerated on every build (not committed)."""
    lines = [
        "API reference",
        "=============",
        "",
        "Every public name of the packages below (their ``__all__``), from the numpydoc",
        "docstrings. Constants are described in the user guide.",
        "",
    ]
    for package, title in PUBLIC_PACKAGES.items():
        lines += [
            title,
            "-" * len(title),
            "",
            f".. currentmodule:: {package}",
            "",
            f".. automodule:: {package}",
            "   :no-members:",
            "   :no-index:",
            "",
            ".. autosummary::",
            "   :toctree: generated",
            "   :nosignatures:",
            "",
        ]
        lines += [f"   {name}" for name in public_names(package)]
        lines.append("")
    target = DOCS / "api" / "index.rst"
    target.parent.mkdir(exist_ok=True)
    text = "\n".join(lines)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


write_api_pages()


def _defining_module(obj):
    target = getattr(obj, "fget", None) or getattr(obj, "__func__", None) or obj
    return getattr(target, "__module__", None) or ""


def skip_foreign_members(app, what, name, obj, skip, options):
    """Class pages show espm_cli's own members, inherited ones included (the mixins'
    methods on the signal types), not those of hyperspy, exspy or scikit-learn."""
    if what == "class" and not _defining_module(obj).startswith("espm_cli"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_foreign_members)


# --- the gallery ------------------------------------------------------------------------
# Examples that read ../shared/realdata are named plot_realdata_*.py; without that folder
# they are left out of the build (not run, not listed) rather than failing.
_ignore = r"__init__\.py"
if not REALDATA.is_dir():
    _ignore += r"|plot_realdata_"
    print(f"espm_cli docs: {REALDATA} is absent; the real-data examples are left out")

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": _ignore,
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "show_memory": False,
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib",),
}
