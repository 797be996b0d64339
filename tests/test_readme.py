"""The README stays true: its configuration table and its API table match the code."""

from __future__ import annotations

import re
from pathlib import Path

from docs.configuration import END, START, settings_table
from ingest.settings import Settings
from statreport.server import create_app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_configuration_table_is_the_one_generated_from_the_settings_class() -> None:
    block = README.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == settings_table(), "run: .venv/bin/python docs/configuration.py --write"
    for name in Settings.model_fields:
        assert f"`STATREPORT_{name.upper()}`" in block


def _route(method: str, path: str) -> str:
    return f"{method.upper()} {re.sub(r'{[^}]+}', '{}', path)}"


def test_the_api_table_lists_every_route_and_no_other(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, admin_token="t" * 32))
    documented = {
        _route(method, path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    api_section = README.split("## API\n", 1)[1].split("\n## ", 1)[0]
    listed = {
        _route(method, path)
        for method, path in re.findall(r"`(GET|POST|PUT|DELETE) (/[^` ?]*)", api_section)
    }
    assert listed == documented
