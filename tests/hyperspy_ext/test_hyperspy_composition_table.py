"""CompositionTable: a pandas-free phases x elements table that prints well."""

import numpy as np
import pytest

from espm_cli.hyperspy_ext import CompositionTable


def test_prints_one_row_per_phase():
    table = CompositionTable.from_array(["Fe", "Pt", "O"], [[50.0, 50.0, 0.0], [0.0, 0.0, 100.0]])
    lines = str(table).splitlines()
    assert lines[0].split() == ["at.%", "Fe", "Pt", "O"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["phase", "0", "50.0", "50.0", "0.0"]
    assert lines[3].split() == ["phase", "1", "0.0", "0.0", "100.0"]
    assert len({len(line) for line in lines}) == 1  # columns aligned
    assert repr(table) == str(table)
    assert "<table>" in table._repr_html_() and "<td>50.0</td>" in table._repr_html_()


def test_access_and_validation():
    table = CompositionTable.from_array(["Fe", "O"], [[25.0, 75.0]], phases=["oxide"])
    assert table.to_dict() == {"oxide": {"Fe": 25.0, "O": 75.0}}
    assert table.phase("oxide") == table.phase(0) == {"Fe": 25.0, "O": 75.0}
    with pytest.raises(ValueError, match="phase 'metal'"):
        table.phase("metal")
    with pytest.raises(ValueError, match="phase index 3"):
        table.phase(3)
    with pytest.raises(ValueError, match="shape"):
        CompositionTable(("a",), ("Fe", "O"), np.zeros((2, 2)))
    assert not table.atomic_percent.flags.writeable
