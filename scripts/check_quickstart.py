"""Run the README's quick start as written, against the local servers.

Usage: VENV/bin/python scripts/check_quickstart.py README STATE_FILE SECRET WORK

Run by scripts/test-wheel.sh in its clean virtualenv (the provider from the wheel), with
AIRFLOW_HOME migrated and the devserver of STATE_FILE running (its demo client has SECRET).
From README.md it takes, unchanged: the connection JSON of step 1 (its keys; the values become
the local servers' and client's), the command blocks of step 2 (each run by bash), and the DAG of step 3
(copied into a DAGs folder); then runs `airflow dags test my_api_daily 2024-01-03` as the README
says, and checks that the pull logged the request it promises and landed records.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

DAG_TEST = "airflow dags test my_api_daily 2024-01-03"
EXPECTED_REQUEST = (
    "Pulling GET /v1/items?updated_since=2024-01-02T00:00:00%2B00:00"
    "&updated_before=2024-01-03T00:00:00%2B00:00"
)


def section(readme: str, heading: str) -> str:
    start = readme.index(heading)
    end = re.search(r"\n##+ ", readme[start + len(heading) :])
    return readme[start : start + len(heading) + end.start() if end else None]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def run(command: str, env: dict[str, str], log: Path) -> str:
    # The commands are the README's own, which this script exists to run.
    result = subprocess.run(  # noqa: S603
        ["bash", "-c", command],  # noqa: S607
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    log.write_text(output)
    if result.returncode != 0:
        sys.exit(f"quick start: `{command}` exited {result.returncode}:\n{output[-3000:]}")
    return output


def main(readme_path: str, state_file: str, secret: str, work: str) -> None:
    readme = Path(readme_path).read_text()
    state = json.loads(Path(state_file).read_text())
    work_dir = Path(work)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"

    step1 = section(readme, "### 1. The connection")
    (export,) = [b for b in blocks(step1, "bash") if "AIRFLOW_CONN_MY_API" in b]
    written = json.loads(re.search(r"AIRFLOW_CONN_MY_API='(.*)'", export, re.DOTALL).group(1))  # type: ignore[union-attr]
    if set(written) != {"conn_type", "host", "login", "password", "extra"} or set(
        written["extra"]
    ) != {"auth_url", "scope"}:
        sys.exit(f"quick start: the README's connection changed shape: {written}")
    written.update(host=state["api_url"], login="demo-client", password=secret)
    written["extra"].update(auth_url=state["token_url"], scope="read")
    env["AIRFLOW_CONN_MY_API"] = json.dumps(written)

    step2 = section(readme, "### 2. Test it")
    for number, command in enumerate(blocks(step2, "bash")):
        output = run(command, env, work_dir / f"quickstart-step2-{number}.log")
        if "airflow connections test" in command and "Connection success!" not in output:
            sys.exit(f"quick start: `{command}` did not succeed:\n{output[-2000:]}")
        if "test_connection()" in command and "Token obtained from" not in output:
            sys.exit(f"quick start: `{command}` did not print the token line:\n{output}")

    step3 = section(readme, "### 3. A DAG")
    (dag,) = blocks(step3, "python")
    dags = Path(env["AIRFLOW__CORE__DAGS_FOLDER"])
    (dags / "my_api_daily.py").write_text(dag)
    if f"`{DAG_TEST}`" not in step3:
        sys.exit(f"quick start: the README no longer says `{DAG_TEST}`")
    output = run(DAG_TEST, env, work_dir / "quickstart-dags-test.log")
    pulled = re.search(r"Pulled (\d+) records in \d+ pages", output)
    if EXPECTED_REQUEST not in output or not pulled or int(pulled.group(1)) == 0:
        sys.exit(
            f"quick start: the pull did not log its request or landed nothing:\n{output[-3000:]}"
        )
    print(f"   README quick start: connection tested, {pulled.group(0)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
