"""The documentation stays true: its tables match the code, and its links stay inside the
repository and lead somewhere."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from core.settings import Settings
from docs.configuration import END, START, settings_table
from statreport.cli import main
from statreport.server import create_app
from tests.test_layers import ALLOWED

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _page(name: str) -> str:
    return (DOCS / name).read_text()


def _section(page: str, heading: str) -> str:
    return page.split(f"{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_configuration_table_is_the_one_generated_from_the_settings_class() -> None:
    block = _page("operations.md").split(START, 1)[1].split(END, 1)[0].strip()
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
    api_section = _page("api.md")
    listed = {
        _route(method, path)
        for method, path in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^` ?]*)", api_section)
    }
    assert listed == documented


def _leaf_commands(group: click.Group, prefix: str = "") -> set[str]:
    names = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names |= _leaf_commands(command, f"{prefix}{name} ")
        else:
            names.add(f"{prefix}{name}")
    return names


def test_the_command_table_lists_every_command_and_no_other() -> None:
    section = _section(_page("operations.md"), "## Command line")
    listed = set()
    for row in re.findall(r"^\| (.+?) \| ", section, flags=re.MULTILINE):
        for usage in re.findall(r"`([^`]+)`", row):
            words = usage.removeprefix("statreport ").split()
            command = main.commands.get(words[0])
            if isinstance(command, click.Group):
                listed.add(f"{words[0]} {words[1]}")
            elif command is not None:
                listed.add(words[0])
            else:
                raise AssertionError(f"the docs name a command that does not exist: {usage}")
    assert listed == _leaf_commands(main)


def test_the_wire_format_example_is_the_file_it_names() -> None:
    section = _page("instances.md")
    shown = section.split("```json\n", 1)[1].split("```", 1)[0]
    example = ROOT / "examples" / "report.json"
    assert json.loads(shown) == json.loads(example.read_text())
    assert "[`examples/report.json`](../examples/report.json)" in section


#: Every package, as the layering test names them.
PACKAGES = tuple(ALLOWED)


def test_the_architecture_table_names_modules_that_exist_and_every_package() -> None:
    section = _page("architecture.md")
    rows = section.split("Where each rule lives", 1)[1].splitlines()
    table = "\n".join(row for row in rows if row.startswith("|"))
    named = set(re.findall(r"`([a-z_]+/[a-z_]+\.py)`", table))
    assert named, "the table names no module"
    missing = sorted(module for module in named if not (ROOT / module).is_file())
    assert missing == [], f"the docs name modules that do not exist: {missing}"
    assert {module.split("/")[0] for module in named} == set(PACKAGES)
    on_disk = {path.name for path in ROOT.iterdir() if (path / "__init__.py").is_file()}
    assert on_disk - {"tests", "docs", "benchmarks"} == set(PACKAGES)


PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """The anchors a page's headings make, as GitHub writes them."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", page.read_text(), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_link_and_image_resolves_inside_the_repository(page: Path) -> None:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    links = _LINK.findall(text)
    assert links or page.name == "architecture.md", "a page that links nowhere"
    for link in links:
        assert not re.match(r"^[a-z]+:", link), f"{page.name} links outside: {link}"
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.is_relative_to(ROOT), f"{page.name} leaves the repository: {link}"
        assert target.exists(), f"{page.name}: {link} does not exist"
        if anchor:
            assert anchor in _anchors(target), f"{page.name}: no heading for {link}"


def test_the_readme_is_an_entrance_not_the_reference() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme) < 12_000
    for page in ("rules.md", "instances.md", "operations.md", "api.md"):
        assert f"(docs/{page})" in readme


#: How the contract's sections are cited in the code; a reader of the product has no contract.
_CITATION = re.compile(r"SPEC|§")


def _cli_helps(command: click.Command, path: str) -> Iterator[tuple[str, str]]:
    yield path, command.get_help(click.Context(command, info_name=path))
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _cli_helps(sub, f"{path} {name}")


def test_nothing_a_user_reads_cites_the_contracts_sections(tmp_path: Path) -> None:
    """The API document, every command's --help, and every page, email and statement
    template explain a rule in words; none sends its reader to a section number of a document
    they do not have. (The licence's own appendix may be cited: customers hold the licence.)"""
    app = create_app(Settings(data_dir=tmp_path, admin_token="t" * 32))
    document = json.dumps(app.openapi(), ensure_ascii=False).replace("Appendix 1 §9", "")
    assert not _CITATION.findall(document)
    cited = [path for path, text in _cli_helps(main, "statreport") if _CITATION.search(text)]
    assert cited == []
    templates = [
        path
        for package in ("console", "scheduler", "analytics")
        for path in sorted((ROOT / package / "templates").glob("*.j2"))
        if _CITATION.search(path.read_text())
    ]
    assert templates == []
