"""The oldest dependencies `make test-oldest` installs match pyproject.toml's."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
OLDEST = ROOT / ".ci" / "oldest-requirements.txt"


def _lower_bounds():
    """``{name: version}`` of each ``name>=version`` dependency."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    bounds = {}
    for requirement in dependencies:
        name, version = re.fullmatch(r"([\w-]+)>=([\w.]+)", requirement).groups()
        bounds[name] = Version(version)
    return bounds


def _pins():
    """``{name: version}`` of the file's ``name==version`` or ``name==version.*``."""
    pins = {}
    for line in OLDEST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = re.fullmatch(r"([\w-]+)==([\w.]+?)(\.\*)?", line).groups()[
                :2
            ]
            pins[name] = Version(version)  # 1.6.0 and 1.24.* meet >=1.6, >=1.24
    return pins


@pytest.mark.skipif(not OLDEST.exists(), reason=f"{OLDEST} is not in this tree")
def test_oldest_requirements_pin_each_lower_bound():
    assert _pins() == _lower_bounds()
