"""One row per bad input: exit code, one line on stderr, no traceback, nothing left behind.

The rows are the cases found by scripted hostile use (issue 12): values of the wrong
type or out of range on the command line, in --config and in batch studies; broken
files; a --truth that does not belong to the image. Each is refused before anything is
written, and most before the input file is read.
"""

import numpy as np
import pytest
from cli_helpers import write_hspy

from espm_cli.cli.main import cli

FAST = ["--max-iter", "3", "-q"]

# (id, decompose arguments after FILE, exit code, fragment of the message)
COMMAND_LINE = [
    ("lambda-nan", ["--lambda-L", "nan"], 2, "must be a finite number"),
    ("lambda-inf", ["--lambda-L", "inf"], 2, "must be a finite number"),
    ("mu-inf", ["--mu", "inf"], 2, "must be a finite number"),
    ("mu-minus-inf", ["--mu", "-inf"], 2, "must be a finite number"),
    ("tol-nan", ["--tol", "nan"], 2, "must be a finite number"),
    ("beam-nan", ["--beam-energy", "nan"], 2, "must be a finite number"),
    ("beam-inf", ["--beam-energy", "inf"], 2, "must be a finite number"),
    ("epsilon-zero", ["--epsilon-reg", "0"], 2, "must be > 0"),
    ("k-float", ["-k", "2.7"], 2, "must be a whole number, got '2.7'"),
    ("k-zero", ["-k", "0"], 2, "must be >= 1"),
    ("max-iter-float", ["--max-iter", "1e3"], 2, "must be a whole number"),
    ("max-iter-abc", ["--max-iter", "abc"], 2, "must be a whole number, got 'abc'"),
    ("seed-negative", ["--seed", "-1"], 2, "must be >= 0"),
    ("seed-huge", ["--seed", str(2**40)], 2, "must be >= 0 and <= 4.29497e+09"),
    ("elevation-100", ["--elevation", "100"], 2, "must be >= -90 and <= 90"),
    ("tilt-90", ["--tilt", "90"], 2, "must be > -90 and < 90"),
    ("thickness-nan", ["--thickness", "nan"], 2, "must be a finite number"),
    ("energy-range-nan", ["--energy-range", "0.2", "nan"], 2, "must be a finite number"),
    ("energy-range-reversed", ["--energy-range", "5", "2"], 2, "LOW < HIGH"),
    ("crop-zero-width", ["--crop", "0", "0", "0", "4"], 2, "WIDTH and HEIGHT must be at least 1"),
    ("crop-three-values", ["--crop", "0", "0", "4"], 2, "'--crop'"),
    ("bin-float", ["--bin", "1.5"], 2, "must be a whole number"),
    ("simplex-X", ["--simplex", "X"], 2, "must be one of H, W, none"),
    ("init-bad", ["--init", "nndsvd"], 2, "must be one of auto, spa, kmeans, nndsvda, random, svd"),
    ("init-svd-smooth-nmf", ["--init", "svd"], 2, "--init svd: smooth-nmf starts from auto or spa"),
    ("init-spa-semi-nmf", ["--method", "semi-nmf", "--init", "spa"], 2, "semi-nmf starts from svd or random"),
    ("n-init-semi-nmf", ["--method", "semi-nmf", "--n-init", "3"], 2, "leave it out (its value there: 1)"),
    ("backend-semi-nmf", ["--method", "semi-nmf", "--backend", "numba"], 2, "semi-nmf runs in numpy"),
    ("n-init-zero", ["--n-init", "0"], 2, "must be >= 1 and <= 1000, got 0"),
    ("elements-digits", ["--elements", "Fe,12"], 2, "'12' is not an element symbol"),
    ("elements-empty", ["--elements", ","], 2, "names no element"),
    ("truth-missing", ["--truth", "nope_truth.h5"], 2, "does not exist"),
    ("output-is-a-file", ["-o", "small.hspy"], 2, "is a file, not a folder"),
    ("k-above-pixels", ["-k", "300"], 2, "n_components=300 is larger than the 256 pixels"),
    ("bin-above-image", ["--bin", "17"], 2, "bin_factor 17"),
    ("energy-range-outside", ["--energy-range", "30", "40"], 2, "outside the energy axis"),
    ("crop-outside", ["--crop", "10", "10", "10", "10"], 2, "must lie inside the image"),
    ("solver-bad", ["--solver", "sgd"], 2, "must be one of mu, pgd, adagrad"),
    ("l1-negative", ["--l1", "-1"], 2, "must be >= 0"),
    ("l1-nan", ["--l1", "nan"], 2, "must be a finite number"),
    ("learning-rate-zero", ["--learning-rate", "0"], 2, "must be > 0"),
    ("method-bad", ["--method", "pca"], 2, "must be one of smooth-nmf, semi-nmf"),
    (
        "semi-nmf-adagrad",
        ["--method", "semi-nmf", "--solver", "adagrad"],
        2,
        "semi-nmf takes solver mu or pgd",
    ),
    ("semi-nmf-mu-weight", ["--method", "semi-nmf", "--mu", "0.1"], 2, "applies to method smooth-nmf only"),
    (
        "scheduler-no-scheme",
        ["--scheduler", "localhost:8786"],
        2,
        "must be a scheduler address such as tcp://HOST:PORT",
    ),
    ("workers-zero", ["--workers", "0"], 2, "must be >= 1 and <= 1024, got 0"),
    (
        "scheduler-and-workers",
        ["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"],
        2,
        "exclude each other",
    ),
    ("unknown-element", ["--elements", "Fe,Xx"], 1, "'Xx'"),
    ("element-without-line", ["--elements", "O,Fe", "--energy-range", "3", "8"], 1, "'O' has no X-ray line"),
    (
        "backend-unknown",
        ["--backend", "opencl"],
        2,
        "must be one of auto, numba, reference, cuda, cupy, torch, array-api, got 'opencl'",
    ),
    (
        "backend-loss-not-served",
        ["--backend", "numba", "--beta-loss", "1.5"],
        1,
        "backend='numba' does not serve beta_loss=1.5;",
    ),
]


def _cuda_here():
    from espm_cli.solver._array_api_backend import availability

    return any(name == "cuda" and ok for name, ok, _ in availability())


if not _cuda_here():  # on a machine without a GPU (CI): one line, exit 1, nothing written
    COMMAND_LINE.append(
        ("backend-cuda-without-gpu", ["--backend", "cuda"], 1, "backend='cuda' is not available here")
    )

# (id, --config YAML text, exit code, fragment)
CONFIG = [
    ("k-list", "n_components: [2, 3]\n", 2, "'n_components' in run.yaml: must be a whole number, got a list"),
    ("max-iter-true", "max_iter: true\n", 2, "must be a whole number, got true (a boolean)"),
    ("k-2.7", "n_components: 2.7\n", 2, "must be a whole number, got 2.7"),
    ("overwrite-minus-3", "overwrite: -3\n", 2, "'overwrite' in run.yaml: must be true or false, got -3"),
    ("no-physics-1", "no_physics: 1\n", 2, "must be true or false, got 1"),
    ("lazy-string", "lazy: yes please\n", 2, "'lazy' in run.yaml: must be true or false"),
    ("lambda-dict", "lambda_L: {a: 1}\n", 2, "must be a number, got a mapping"),
    ("mu-nan", "mu: .nan\n", 2, "must be a finite number"),
    ("tol-inf", "tol: .inf\n", 2, "must be a finite number"),
    ("beam-true", "beam_energy: true\n", 2, "must be a number, got true (a boolean)"),
    ("elements-numbers", "elements: [1, 2]\n", 2, "1 is not an element symbol"),
    ("elements-mapping", "elements: {Fe: 1}\n", 2, "must be element symbols"),
    ("crop-scalar", "crop: 5\n", 2, "takes 4 values"),
    ("crop-nested", "crop: [[0, 0], 4, 4, 4]\n", 2, "must be a whole number, got a list"),
    ("energy-range-three", "energy_range: [1, 2, 3]\n", 2, "takes 2 values"),
    ("simplex-null", "simplex: null\n", 2, "must not be empty (null)"),
    ("simplex-false", "simplex: false\n", 2, "must be one of H, W, none, got false"),
    ("seed-string", "seed: abc\n", 2, "must be a whole number, got 'abc'"),
    ("solver-number", "solver: 3\n", 2, "must be one of mu, pgd, adagrad, got 3"),
    ("l1-list", "l1: [1, 2]\n", 2, "must be a number, got a list"),
    ("method-null", "method: null\n", 2, "must not be empty (null)"),
    ("init-number", "init: 3\n", 2, "must be one of auto, spa, kmeans, nndsvda, random, svd"),
    ("n-init-float", "n_init: 2.5\n", 2, "'n_init' in run.yaml: must be a whole number, got 2.5"),
    ("backend-number", "backend: 3\n", 2, "'backend' in run.yaml: must be one of auto, numba"),
    ("truth-missing", "truth: nope_truth.h5\n", 2, "does not exist"),
    ("output-dir-list", "output_dir: [a, b]\n", 2, "must be a path, got a list"),
    ("file-list", "file: [a, b]\n", 2, "'file' in run.yaml must be a path"),
    ("unknown-key", "lamda_L: 1.0\n", 2, "unknown key 'lamda_L'"),
    ("not-a-mapping", "- 1\n- 2\n", 2, "must be a mapping of option names to values"),
    ("yaml-syntax", "n_components: 3\nlambda_L: [1, 2\n", 2, "YAML syntax error in run.yaml at line"),
    ("uncertainty-1", "uncertainty: 1\n", 2, "'uncertainty' in run.yaml: must be true or false, got 1"),
]

# (id, study YAML text (the image is small.hspy), extra batch arguments, exit code, fragment)
STUDIES = [
    (
        "defaults-max-iter-list",
        "defaults: {max_iter: [5, 10]}\nruns:\n  - file: small.hspy\n",
        [],
        2,
        "'max_iter' in study.yaml defaults: must be a whole number, got a list",
    ),
    (
        "run-k-true",
        "runs:\n  - file: small.hspy\n    n_components: true\n",
        [],
        2,
        "must be a whole number, got true",
    ),
    (
        "sweep-k-float",
        "runs:\n  - file: small.hspy\nsweep:\n  n_components: [2, 2.5]\n",
        [],
        2,
        "must be a whole number, got 2.5",
    ),
    (
        "sweep-nan",
        "runs:\n  - file: small.hspy\nsweep:\n  lambda_L: [0, .nan]\n",
        [],
        2,
        "must be a finite number",
    ),
    ("name-parent-path", "runs:\n  - file: small.hspy\n    name: ../../x\n", [], 2, "not a path"),
    ("name-absolute", "runs:\n  - file: small.hspy\n    name: /tmp/x\n", [], 2, "not a path"),
    ("name-hidden", "runs:\n  - file: small.hspy\n    name: .x\n", [], 2, "not a path"),
    ("name-list", "runs:\n  - file: small.hspy\n    name: [a]\n", [], 2, "name must be a plain name"),
    ("file-number", "runs:\n  - file: 3\n", [], 2, "file must be a path, got 3"),
    ("run-not-mapping", "runs:\n  - small.hspy\n", [], 2, "must be a mapping"),
    (
        "output-dir-number",
        "output_dir: 5\nruns:\n  - file: small.hspy\n",
        [],
        2,
        "output_dir in study.yaml must be a folder path",
    ),
    (
        "bad-run-after-good-ones",
        "runs:\n  - file: small.hspy\n  - file: small.hspy\n    name: b\n"
        "  - file: small.hspy\n    name: c\n    max_iter: 0\n",
        [],
        2,
        "must be >= 1",
    ),
    (
        "missing-file-after-good-ones",
        "runs:\n  - file: small.hspy\n  - file: gone.hspy\n",
        [],
        2,
        "run gone: file",
    ),
    (
        "sweep-over-1000",
        "runs:\n  - file: small.hspy\nsweep:\n  seed: [" + ", ".join(map(str, range(1001))) + "]\n",
        [],
        2,
        "expands to 1001 runs, more than 1000; pass --yes",
    ),
    ("jobs-zero", "runs:\n  - file: small.hspy\n", ["--jobs", "0"], 2, "'--jobs'"),
    (
        "select-k-not-bool",
        "select_k: 3\nruns:\n  - file: small.hspy\n",
        [],
        2,
        "select_k must be true, false or a mapping of folds, fold_kind and fold_seed, got 3 (in study.yaml)",
    ),
    (
        "select-k-one-fold",
        "select_k: {folds: 1}\nruns:\n  - file: small.hspy\n",
        [],
        2,
        "folds must be an integer from 2 to 100, got 1 (in study.yaml)",
    ),
    (
        "select-k-fold-kind",
        "select_k: {fold_kind: stripes}\nruns:\n  - file: small.hspy\n",
        [],
        2,
        "fold_kind must be one of speckle, blocks, got 'stripes'",
    ),
    (
        "select-k-fold-seed",
        "select_k: {fold_seed: -1}\nruns:\n  - file: small.hspy\n",
        [],
        2,
        "fold_seed must be an integer from 0 to 4294967295, got -1",
    ),
    (
        "select-k-unknown-key",
        "select_k: {n_fold: 4}\nruns:\n  - file: small.hspy\n",
        [],
        2,
        "select_k has unknown key 'n_fold'; the keys are folds, fold_kind and fold_seed",
    ),
]

# (id, select-k arguments after FILE, exit code, fragment)
SELECT_K = [
    ("k-missing", [], 2, "Missing option '--k'"),
    ("k-backwards", ["--k", "5..2"], 2, "k range '5..2' runs backwards"),
    ("k-letters", ["--k", "two..8"], 2, "is not a range of whole numbers"),
    ("k-zero", ["--k", "0..3"], 2, "starts below 1"),
    ("k-above-pixels", ["--k", "2,300"], 2, "k = 300 is larger than the image allows (256 pixels"),
    ("folds-one", ["--k", "2..3", "--folds", "1"], 2, "'--folds'"),
    ("fold-kind-rows", ["--k", "2..3", "--fold-kind", "rows"], 2, "'--fold-kind'"),
    ("jobs-zero", ["--k", "2..3", "--jobs", "0"], 2, "'--jobs'"),
    ("lambda-nan", ["--k", "2..3", "--lambda-L", "nan"], 2, "must be a finite number"),
    ("n-components-given", ["--k", "2..3", "-k", "3"], 2, "No such option '-k'"),
]


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def check_refused(result, exit_code, fragment, folder, before):
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, nothing else
    assert fragment in lines[0], lines[0]
    assert files_under(folder) == before, "something was left behind"


@pytest.mark.parametrize(
    "args, exit_code, fragment", [row[1:] for row in COMMAND_LINE], ids=[row[0] for row in COMMAND_LINE]
)
def test_bad_command_line(runner, small_image, args, exit_code, fragment):
    image, _ = small_image
    before = files_under(image.parent)
    args = [str(image.parent / a) if a == "small.hspy" else a for a in args]
    result = runner.invoke(cli, ["decompose", str(image), *FAST, *args])
    check_refused(result, exit_code, fragment, image.parent, before)


@pytest.mark.parametrize(
    "args, exit_code, fragment", [row[1:] for row in SELECT_K], ids=[row[0] for row in SELECT_K]
)
def test_bad_select_k(runner, small_image, args, exit_code, fragment):
    image, _ = small_image
    before = files_under(image.parent)
    result = runner.invoke(cli, ["select-k", str(image), *FAST, *args])
    check_refused(result, exit_code, fragment, image.parent, before)


@pytest.mark.parametrize(
    "text, exit_code, fragment", [row[1:] for row in CONFIG], ids=[row[0] for row in CONFIG]
)
def test_bad_config_file(runner, small_image, text, exit_code, fragment):
    image, _ = small_image
    config = image.parent / "run.yaml"
    config.write_text(text)
    before = files_under(image.parent)
    result = runner.invoke(cli, ["decompose", str(image), "--config", str(config), *FAST])
    check_refused(result, exit_code, fragment, image.parent, before)


@pytest.mark.parametrize(
    "text, extra, exit_code, fragment", [row[1:] for row in STUDIES], ids=[row[0] for row in STUDIES]
)
def test_bad_study(runner, small_image, text, extra, exit_code, fragment):
    image, _ = small_image
    study = image.parent / "study.yaml"
    study.write_text(text)
    before = files_under(image.parent)
    result = runner.invoke(cli, ["batch", str(study), *extra, "-q"])
    check_refused(result, exit_code, fragment, image.parent, before)  # no run ran


def damaged_bcf(folder):
    """A Bruker .bcf cut short (the reader would crash or read zeros)."""
    path = folder / "cut.bcf"
    header = bytearray(0x200)
    header[:8] = b"AAMVHFSS"
    header[0x124:0x12C] = np.array([2.6], "<f4").tobytes() + np.array([4096], "<u4").tobytes()
    header[0x140:0x14C] = np.array([1, 1, 81], "<u4").tobytes()
    path.write_bytes(bytes(header) + b"\0" * 1000)
    return path


def text_file(folder):
    path = folder / "notes.txt"
    path.write_text("a,b\n1,2\n")
    return path


def line_scan(folder):
    data = np.random.default_rng(0).poisson(2.0, (64, 512)).astype(np.uint16)
    return write_hspy(folder / "line.hspy", data, elements=["Fe", "O"])


def not_a_result(folder):
    (folder / "fake_truth.h5").write_text("not hdf5")
    return ["--truth", str(folder / "fake_truth.h5")]


def other_truth(folder):
    from cli_helpers import write_small_simulation

    other = folder / "elsewhere"
    other.mkdir()
    _, truth = write_small_simulation(other / "big.hspy", size=(8, 12))
    return ["--truth", str(truth)]


# (id, builder returning a FILE or extra arguments, exit code, fragment)
INPUTS = [
    ("truncated-bcf", damaged_bcf, 1, "the file is truncated: 1512 bytes where its header promises 332056"),
    ("text-file", text_file, 1, "cannot read notes.txt as a spectrum image (not a valid .txt file"),
    (
        "line-scan-k-too-large",
        line_scan,
        2,
        "larger than the 64 pixels of the image (a line scan of 64 pixels",
    ),
    ("truth-not-a-result", not_a_result, 1, "is not an espm result or truth file (not an HDF5 file)"),
    (
        "truth-of-another-image",
        other_truth,
        1,
        "is for an image of 8 x 12 pixels, but small.hspy has 16 x 16",
    ),
]


@pytest.mark.parametrize(
    "build, exit_code, fragment", [row[1:] for row in INPUTS], ids=[row[0] for row in INPUTS]
)
def test_bad_input_files(runner, small_image, build, exit_code, fragment):
    image, _ = small_image
    made = build(image.parent)
    args = [str(image), *made] if isinstance(made, list) else [str(made)]
    if made is not None and not isinstance(made, list) and made.name == "line.hspy":
        args += ["-k", "65"]
    before = files_under(image.parent)
    result = runner.invoke(cli, ["decompose", *args, *FAST])
    check_refused(result, exit_code, fragment, image.parent, before)


def test_beam_energy_is_named_as_the_cause(runner, small_image):
    image, _ = small_image
    result = runner.invoke(cli, ["decompose", str(image), "--beam-energy", "1", "--max-iter", "2"])
    assert result.exit_code == 0, result.output
    assert "the 1 keV beam energy excites none of their X-ray lines" in result.stderr
    assert "no X-ray line on the energy axis" not in result.stderr


def test_line_scan_is_named_the_same_everywhere(runner, tmp_path):
    path = line_scan(tmp_path)
    result = runner.invoke(cli, ["decompose", str(path), "-k", "2", "--max-iter", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert "line.hspy: a line scan of 64 pixels" in result.stdout
    info = runner.invoke(cli, ["info", str(path)])
    assert "a line scan of 64 pixels" in info.stdout
    crop = runner.invoke(cli, ["decompose", str(path), "--crop", "0", "0", "65", "1", "--overwrite", "-q"])
    assert "64 pixels across and 1 down" in crop.stderr


def test_float_data_warning_in_plain_words(runner, tmp_path):
    data = np.random.default_rng(1).gamma(2.0, 1.0, (6, 6, 256))
    path = write_hspy(tmp_path / "scaled.hspy", data, elements=["Fe", "O"])
    result = runner.invoke(cli, ["decompose", str(path), "-k", "2", "--max-iter", "2"])
    assert result.exit_code == 0, result.output
    assert "holds non-integer values" in result.stderr and "not raw X-ray counts" in result.stderr
    for internal in ("sklearn", "normalize_poissonian_noise", "s.decomposition", "X holds"):
        assert internal not in result.stderr


def test_missing_elements_refused_before_the_counts_are_read(runner, tmp_path, monkeypatch):
    from espm_cli.io import spectrum_image

    data = np.random.default_rng(0).poisson(1.0, (6, 6, 64)).astype(np.uint16)
    bare = write_hspy(tmp_path / "bare.hspy", data, elements=None)

    def no_reading(*args, **kwargs):
        raise AssertionError("the counts were read")

    monkeypatch.setattr(spectrum_image, "_bin_block", no_reading)
    result = runner.invoke(cli, ["decompose", str(bare), *FAST])
    assert result.exit_code == 1 and "lists no elements" in result.stderr, result.output


def test_run_yaml_records_the_values_used(runner, small_image):
    import yaml

    image, _ = small_image
    result = runner.invoke(cli, ["decompose", str(image), *FAST])
    assert result.exit_code == 0, result.output
    used = yaml.safe_load((image.parent / "small_espm" / "run.yaml").read_text())
    assert used["elements"] and used["beam_energy"] == 200.0
    assert used["mnka_fwhm"] > 0 and used["elevation"] is not None


def test_memory_guard_names_the_size(tmp_path):
    from espm_cli.io.memory import NotEnoughMemory, require_memory

    with pytest.raises(NotEnoughMemory, match="needs 2.0 GB of memory at once, and only 1.0 GB"):
        require_memory(2 * 2**30, "reading x.pts", "use --crop", available=2**30)
    require_memory(2**20, "reading x.pts", "use --crop", available=2**30)


def test_info_refuses_a_truncated_bcf(runner, tmp_path):
    result = runner.invoke(cli, ["info", str(damaged_bcf(tmp_path))])
    assert result.exit_code == 1 and "the file is truncated" in result.stderr, result.output


def test_memory_guard_before_a_dense_block_is_read(runner, small_image, monkeypatch):
    from espm_cli.io import memory

    image, _ = small_image
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 1000)
    result = runner.invoke(cli, ["decompose", str(image), *FAST])
    assert result.exit_code == 1, result.output
    assert "of memory at once, and only 1000 bytes is available; use --crop" in result.stderr
    assert not (image.parent / "small_espm").exists()


def test_a_long_read_is_announced(runner, small_image, monkeypatch):
    from espm_cli.io import spectrum_image

    image, _ = small_image
    monkeypatch.setattr(spectrum_image, "LARGE_READ_BYTES", 1000)
    result = runner.invoke(cli, ["decompose", str(image), "--max-iter", "2"])
    assert result.exit_code == 0, result.output
    assert "reading small.hspy: 16 x 16 pixels x 512 channels" in result.stderr
