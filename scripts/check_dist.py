"""Checks the built sdist and wheel as a package index and a user would see them.

    python scripts/check_dist.py DIST_DIR

What ships (the package and its py.typed; never devserver/, tests/ or bench/), and the
metadata: the version, README as the Markdown long description, known Trove classifiers,
project URLs, the provider entry point. ``twine check`` then renders the description.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

FORBIDDEN_TOP = ("devserver/", "tests/", "bench/", ".venv")
PACKAGE = "airflow_provider_oauthcc"


def main(dist: Path) -> list[str]:
    problems: list[str] = []
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return [f"expected one wheel and one sdist in {dist}, found {wheels + sdists}"]
    wheel, sdist = wheels[0], sdists[0]

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(meta_name).decode())
        entry_points = archive.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    if f"{PACKAGE}/py.typed" not in names:
        problems.append("the wheel lacks py.typed")
    # The wheel holds the package and its .dist-info only.
    problems += [
        f"the wheel ships {name}"
        for name in names
        if not name.startswith((PACKAGE + "/", PACKAGE + "-"))
    ]
    if (
        "provider_info = airflow_provider_oauthcc.get_provider_info:get_provider_info"
        not in entry_points
    ):
        problems.append("the wheel has no apache_airflow_provider entry point")

    with tarfile.open(sdist) as archive:
        members = [m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name]
    for name in members:
        if name.startswith(FORBIDDEN_TOP):
            problems.append(f"the sdist ships {name}")
    for needed in (f"{PACKAGE}/py.typed", "README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml"):
        if needed not in members:
            problems.append(f"the sdist lacks {needed}")

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from airflow_provider_oauthcc import __version__

    if metadata["Version"] != __version__:
        problems.append(f"metadata version {metadata['Version']} is not {__version__}")
    if metadata["Description-Content-Type"] != "text/markdown":
        problems.append(f"long description type is {metadata['Description-Content-Type']}")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    if metadata.get_payload().strip() != readme.strip():
        problems.append("the long description is not README.md")
    from trove_classifiers import classifiers as known

    classifiers = metadata.get_all("Classifier") or []
    problems += [f"unknown classifier {c!r}" for c in classifiers if c not in known]
    if "Framework :: Apache Airflow :: Provider" not in classifiers:
        problems.append("no 'Framework :: Apache Airflow :: Provider' classifier")
    if not metadata.get_all("Project-URL"):
        problems.append("no project URLs")
    if not metadata["License-Expression"] and not metadata["License"]:
        problems.append("no license")
    print(
        f"   {wheel.name}: {len(names)} files, py.typed, entry point; "
        f"{sdist.name}: {len(members)} files; {len(classifiers)} classifiers, "
        f"{len(metadata.get_all('Project-URL') or [])} project URLs, Markdown README"
    )
    return problems


if __name__ == "__main__":
    found = main(Path(sys.argv[1]))
    for problem in found:
        print(f"dist check: {problem}", file=sys.stderr)
    sys.exit(1 if found else 0)
