"""A retried pull removes the temporary file an interrupted attempt could not delete."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_oauthcc.pull.output import JsonLinesWriter


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


def test_partials_whose_names_only_end_or_start_like_ours_are_kept(tmp_path: Path) -> None:
    """Another target whose name ends like ours (``daily.items.jsonl``), another owner whose
    name ends like ours, and a file that only starts like one of our partials: none is ours."""
    target = tmp_path / "items.jsonl"
    kept = [
        ".daily.items.jsonl.ti1-0123456789ab.partial",
        ".items.jsonl.ti1-0123456789ab.partial.bak",
        ".items.jsonl.run.ti1-0123456789ab.partial",
        ".items.jsonl.ti1-0123456789abc.partial",
        "x.items.jsonl.ti1-0123456789ab.partial",
    ]
    for name in kept:
        (tmp_path / name).write_text("x")
    ours = tmp_path / ".items.jsonl.ti1-fedcba987654.partial"
    ours.write_text("x")

    with JsonLinesWriter(f"file://{target}", owner="ti1") as writer:
        writer.write([{"id": 1}])

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "items.jsonl"])
