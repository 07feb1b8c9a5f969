"""A retried pull removes the temporary file an interrupted attempt could not delete."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_oauthcc.output import JsonLinesWriter


def test_stale_partials_of_the_target_are_removed_and_others_kept(tmp_path: Path) -> None:
    target = tmp_path / "out" / "items.jsonl"
    target.parent.mkdir()
    stale = target.parent / ".items.jsonl.ti1-0123456789ab.partial"  # a killed attempt's
    stale.write_text('{"id": 1}\n')
    other = target.parent / ".other.jsonl.ti1-0123456789ab.partial"  # another target's
    other.write_text("x")
    running = target.parent / ".items.jsonl.ti2-0123456789ab.partial"  # another task's
    running.write_text("x")
    lookalike = target.parent / ".items.jsonl.backup"
    lookalike.write_text("keep")

    with JsonLinesWriter(f"file://{target}", owner="ti1") as writer:
        writer.write([{"id": 2}])

    assert target.read_text().replace(" ", "") == '{"id":2}\n'
    assert not stale.exists()
    assert other.exists() and lookalike.exists() and running.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == [
        ".items.jsonl.backup",
        ".items.jsonl.ti2-0123456789ab.partial",
        ".other.jsonl.ti1-0123456789ab.partial",
        "items.jsonl",
    ]
