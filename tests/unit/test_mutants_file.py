"""scripts/mutants.toml stays plantable: each defect's text occurs exactly once in its file, so
`make mutants` plants every one of them (a refactor that moves the code must move the mutant)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MUTANTS = tomllib.loads((REPO / "scripts" / "mutants.toml").read_text())["mutant"]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m["name"] for m in MUTANTS])
def test_each_mutant_can_be_planted(mutant: dict[str, object]) -> None:
    source = (REPO / str(mutant["file"])).read_text()
    assert source.count(str(mutant["old"])) == 1, "its text is not in the file exactly once"
    for test in mutant["tests"]:  # type: ignore[attr-defined]
        assert (REPO / str(test).split("::")[0]).is_file(), f"no test file {test}"
