"""An Airflow whose ObjectStoragePath predates the installed universal-pathlib (Airflow 3.0 with
universal-pathlib 0.3, what pip resolves without Airflow's constraints file) refuses every
path: the writer says which libraries clash and how to fix it. The real combination is tested
by scripts/test-wheel.sh --unpinned on Airflow 3.0; here the refusal is simulated."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_oauthcc import airflow_compat
from airflow_provider_oauthcc.pull.output import (
    IncompatibleStorageLibraryError,
    JsonLinesWriter,
    as_storage_path,
)

# universal-pathlib 0.3 builds this class at run time, with this name and these bases.
_IncompatibleProtocolError = type("_IncompatibleProtocolError", (TypeError, ValueError), {})


class RefusingPath:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise _IncompatibleProtocolError(
            "ObjectStoragePath(...) detected protocol file which is incompatible with "
            "ObjectStoragePath."
        )


@pytest.fixture
def refusing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(airflow_compat, "ObjectStoragePath", RefusingPath)


@pytest.mark.usefixtures("refusing")
@pytest.mark.parametrize(
    ("target", "scheme"), [("file:///tmp/out.jsonl", "file"), ("/tmp/out.jsonl", "file")]
)
def test_the_refusal_names_the_libraries_and_the_fix(target: str, scheme: str) -> None:
    with pytest.raises(IncompatibleStorageLibraryError) as caught:
        JsonLinesWriter(target)
    message = str(caught.value)
    assert f"({scheme}://...)" in message
    assert "universal-pathlib<0.3" in message and "constraints file" in message
    assert "Airflow " in message and "README" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_other_errors_of_the_path_pass_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    class UnknownProtocol:
        def __init__(self, *args: Any) -> None:
            raise ValueError("no such protocol: nope")

    monkeypatch.setattr(airflow_compat, "ObjectStoragePath", UnknownProtocol)
    with pytest.raises(ValueError, match="no such protocol") as caught:
        as_storage_path("nope://x")
    assert not isinstance(caught.value, IncompatibleStorageLibraryError)


def test_a_working_combination_is_left_alone(tmp_path: Any) -> None:
    path = as_storage_path(f"file://{tmp_path}/out.jsonl")
    assert path.name == "out.jsonl"
