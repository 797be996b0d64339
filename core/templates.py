"""The Jinja environment of every page, email and statement: one configuration, one set of
helpers."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from core.usage_metrics import label
from core.wording import counted, instant, moment


def environment(package: str, *, trim_blocks: bool = False) -> Environment:
    """The templates of ``package``'s ``templates/`` folder: HTML escaped, every file ending as
    written, and statreport's wording helpers (``counted``, ``instant``). ``trim_blocks`` drops
    the whitespace around block tags: for the console's pages; an email or a statement, which
    is sent or hashed, keeps its whitespace as written."""
    templates = Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=select_autoescape(["html.j2"]),
        keep_trailing_newline=True,
        trim_blocks=trim_blocks,
        lstrip_blocks=trim_blocks,
    )
    templates.globals["counted"] = counted
    templates.filters["instant"] = instant
    templates.filters["moment"] = moment
    templates.filters["label"] = label
    return templates
