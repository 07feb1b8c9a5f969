"""JsonLinesWriter: JSON Lines to object storage that appear at the final path only when complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_oauthcc.pull.output import JsonLinesWriter, as_storage_path


def hidden_partials(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".partial")]


def test_records_land_as_json_lines_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "day=2024-03-01" / "items.jsonl"
    with JsonLinesWriter(f"file://{target}") as writer:  # as_uri() would escape "="
        assert writer.write([{"id": 1, "name": "é"}, {"id": 2, "tags": ["a", None]}]) > 0
        assert writer.write([]) == 0
        writer.write([{"id": 3}])
        assert not target.exists()
        [partial] = hidden_partials(target.parent)
        assert partial.name.startswith(".items.jsonl.")
    assert target.read_text(encoding="utf-8").splitlines() == [
        '{"id":1,"name":"é"}',
        '{"id":2,"tags":["a",null]}',
        '{"id":3}',
    ]
    assert writer.records == 3 and writer.bytes == target.stat().st_size
    assert hidden_partials(target.parent) == []


def test_a_failure_discards_everything(tmp_path: Path) -> None:
    target = tmp_path / "items.jsonl"
    with pytest.raises(RuntimeError, match="page 3 failed"), JsonLinesWriter(str(target)) as writer:
        writer.write([{"id": 1}])
        raise RuntimeError("page 3 failed")
    assert list(tmp_path.iterdir()) == []


def test_a_failure_keeps_the_previous_complete_file(tmp_path: Path) -> None:
    target = tmp_path / "items.jsonl"
    target.write_text('{"id":1}\n')
    with pytest.raises(KeyboardInterrupt), JsonLinesWriter(str(target)) as writer:
        writer.write([{"id": 99}])
        raise KeyboardInterrupt
    assert target.read_text() == '{"id":1}\n'
    assert hidden_partials(tmp_path) == []


def test_a_success_replaces_the_previous_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "items.jsonl"
    target.write_text('{"id":"old"}\n' * 100)
    with JsonLinesWriter(str(target)) as writer:
        writer.write([{"id": "new"}])
    assert target.read_text() == '{"id":"new"}\n'


def test_no_records_still_lands_an_empty_file(tmp_path: Path) -> None:
    target = tmp_path / "items.jsonl"
    with JsonLinesWriter(target.as_uri()):
        pass
    assert target.read_bytes() == b""


def test_two_writers_to_one_path_do_not_share_a_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "items.jsonl"
    with JsonLinesWriter(str(target)) as first, JsonLinesWriter(str(target)) as second:
        assert first.partial != second.partial
        first.write([{"from": "first"}])
        second.write([{"from": "second"}])
    assert json.loads(target.read_text()) == {"from": "first"}  # the last to finish wins whole


def test_records_that_are_not_json_fail_the_write(tmp_path: Path) -> None:
    with pytest.raises(TypeError), JsonLinesWriter(str(tmp_path / "x.jsonl")) as writer:
        writer.write([{"when": object()}])
    assert list(tmp_path.iterdir()) == []


def test_writing_outside_the_with_block_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        JsonLinesWriter(str(tmp_path / "x.jsonl")).write([{}])


@pytest.mark.parametrize("bad", ["", "   ", 42, None])
def test_output_must_be_a_path_or_uri(bad: object) -> None:
    with pytest.raises(ValueError, match="output must be an ObjectStoragePath or a URI"):
        as_storage_path(bad)  # type: ignore[arg-type]


def test_an_object_storage_path_is_used_as_given(tmp_path: Path) -> None:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    path = ObjectStoragePath(tmp_path.as_uri() + "/x.jsonl")
    assert as_storage_path(path) is path
