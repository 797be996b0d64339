"""Imports follow the data, left to right: a package never imports one to its right."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Each package and the packages it may import (besides itself).
ALLOWED = {
    "core": set(),
    "customers": {"core"},
    "ingest": {"core"},
    "phonehome": {"core", "ingest"},  # the instance side shares the wire schema only
    "staff": {"core"},
    "analytics": {"core"},
    "scheduler": {"core", "analytics"},
    "webhooks": {"core", "analytics", "scheduler"},
    "console": {"core", "staff", "customers", "analytics", "scheduler", "webhooks"},
    "statreport": {
        "core",
        "staff",
        "customers",
        "ingest",
        "phonehome",
        "analytics",
        "scheduler",
        "webhooks",
        "console",
    },
}


def _imported_packages(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module]
                if isinstance(node, ast.ImportFrom) and node.module
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            found |= {name.split(".")[0] for name in names} & set(ALLOWED)
    return found - {package}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_lies_to_its_left(package: str) -> None:
    assert _imported_packages(package) <= ALLOWED[package]
