"""Run by scripts/test-wheel.sh --unpinned in the clean virtualenv: the provider's writer (from
the wheel) writes a pull's output to file://, or, only where this Airflow's ObjectStoragePath
predates the universal-pathlib the resolver picked (Airflow 2.11 and 3.0 with 0.3), refuses
with a message that names the fix. Usage: check_unpinned_output.py FOLDER"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

from airflow_provider_oauthcc.pull.output import IncompatibleStorageLibraryError, JsonLinesWriter


def main(folder: str) -> None:
    target = f"file://{folder}/records.jsonl"
    try:
        with JsonLinesWriter(target) as writer:
            writer.write([{"id": 1}, {"id": 2}])
    except IncompatibleStorageLibraryError as exc:
        airflow, upath = version("apache-airflow"), version("universal-pathlib")
        if not airflow.startswith(("2.", "3.0.")) or upath.startswith(("0.1.", "0.2.")):
            raise
        if "universal-pathlib<0.3" not in str(exc) or "constraints file" not in str(exc):
            raise
        print(f"   refused, the fix named: {exc}")
        return
    lines = Path(folder, "records.jsonl").read_text().splitlines()
    if len(lines) != 2:
        sys.exit(f"expected 2 records in {target}, found {len(lines)}")
    print(f"   wrote {target} ({len(lines)} records)")


if __name__ == "__main__":
    main(sys.argv[1])
