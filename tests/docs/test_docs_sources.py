"""The documentation's sources hold together (the build itself is `make docs` in .ci/run).

Cheap checks that would otherwise only fail in the slow docs build, or not at all: every
public name has a numpydoc docstring (the API reference is built from the packages'
``__all__``), the gallery examples that read ../shared/realdata are the ones docs/conf.py
leaves out when it is absent, every guide page is in a toctree, and the README's first
screen still shows how to build the docs next to `make demo` and `make test`.
"""

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_PACKAGES = [
    "espm_cli",
    "espm_cli.solver",
    "espm_cli.physics",
    "espm_cli.analysis",
    "espm_cli.io",
    "espm_cli.hyperspy_ext",
    "espm_cli.simulate",
    "espm_cli.report",
]


def test_conf_lists_the_same_public_packages():
    text = (ROOT / "docs" / "conf.py").read_text(encoding="utf-8")
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PUBLIC_PACKAGES":
            listed = [key.value for key in node.value.keys]
            break
    else:
        raise AssertionError("docs/conf.py defines no PUBLIC_PACKAGES")
    assert listed == PUBLIC_PACKAGES


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_every_public_callable_has_a_numpydoc_docstring(package):
    module = importlib.import_module(package)
    missing = []
    for name in module.__all__:
        value = getattr(module, name)
        if name.startswith("__") or not callable(value):
            continue
        doc = inspect.getdoc(value) or ""
        if not doc.strip():
            missing.append(name)
    assert not missing, f"{package}: public names without a docstring: {missing}"


def test_realdata_examples_are_the_ones_left_out_without_the_data():
    examples = sorted((ROOT / "examples").glob("*.py"))
    assert len([p for p in examples if p.name.startswith("plot_")]) >= 6
    for path in examples:
        assert path.name.startswith("plot_"), f"{path.name}: gallery examples are plot_*.py"
        reads_realdata = "realdata" in path.read_text(encoding="utf-8")
        assert reads_realdata == path.name.startswith("plot_realdata_"), (
            f"{path.name}: an example reading ../shared/realdata must be named plot_realdata_*.py "
            "(docs/conf.py leaves those out when the folder is absent), and only those"
        )


def test_every_guide_page_is_in_the_toctree():
    guide = ROOT / "docs" / "guide"
    index = (guide / "index.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   (\w+)$", index, flags=re.M))
    pages = {path.stem for path in guide.glob("*.rst")} - {"index"}
    assert pages == listed


def test_readme_first_screen_shows_demo_test_and_docs():
    first_screen = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:30])
    for command in ("make demo", "make test", "make docs"):
        assert command in first_screen
    assert "docs/_build/html/index.html" in first_screen
