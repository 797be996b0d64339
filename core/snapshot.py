"""Analytics on PostgreSQL (SPEC §16 v3): DuckDB over Arrow read from one PostgreSQL snapshot.

The analytics (evaluation, evidence, usage, statements) are written once, in DuckDB's SQL,
and run on DuckDB whichever engine stores the data. On PostgreSQL a read gets a ``Snapshot``:
an in-memory DuckDB connection in which each table a statement names is loaded, on first
use, from one repeatable-read transaction through ADBC's PostgreSQL driver (Arrow, column by
column). Every table of one read is therefore from the same instant, as on DuckDB.

A read about one customer loads only that customer's rows of the tables that have a
``customer_id``. Raw reports are never loaded whole: the few analytics that read them load
the slice they read first (``load_reports``), on the same snapshot.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import pyarrow as pa

from core import instance_days

#: The tables a snapshot loads when a statement names them, and whether they have a
#: ``customer_id`` to scope them by. ``reports`` is not among them (see the module's note).
TABLES: dict[str, bool] = {
    "customers": True,
    "customer_versions": True,
    "order_forms": True,
    "order_form_versions": True,
    "entitlements": True,
    "entitlement_versions": True,
    "license_keys": True,
    "instances": True,
    "instance_days": True,
    "instance_days_replaced": True,
    "instance_days_out_of_order": False,
    "episodes": True,
    "attestations": True,
    "audit_log": False,
    "evaluation_runs": False,
    "finding_notes": True,
    "finding_announcements": False,
    "webhook_endpoints": False,
    "schema_migrations": False,
}
_VIEWS = {"instance_day_totals": "instance_days"}
_NAMES = re.compile(r"\b(" + "|".join([*TABLES, *_VIEWS]) + r")\b")


class Snapshot:
    """A DuckDB connection over one PostgreSQL snapshot; it reads like a DuckDB connection."""

    def __init__(self, cursor: Any, *, customer_id: str | None = None) -> None:
        self._pg = cursor  # an ADBC cursor inside a repeatable-read transaction
        self._customer_id = customer_id
        self.duck = duckdb.connect()
        self.duck.execute("SET TimeZone = 'UTC'")
        self.duck.execute("SET threads TO 1")
        self._loaded: set[str] = set()

    # -- what repositories call --------------------------------------------------------------

    def execute(self, query: str, parameters: Any = None, /) -> Snapshot:
        """Run one DuckDB statement, loading the tables it names first."""
        self._load_named(query)
        self.duck.execute(query, parameters)
        return self

    def executemany(self, query: str, parameters: Any = None, /) -> Snapshot:
        """A snapshot is read-only: there is nothing to run many times."""
        raise TypeError("a snapshot is read-only")

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Every row of the last statement."""
        return self.duck.fetchall()

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last statement."""
        return self.duck.fetchone()

    @property
    def description(self) -> Any:
        """The last statement's columns."""
        return self.duck.description

    def arrow(self, query: str, parameters: Any = None) -> pa.Table:
        """A DuckDB query's answer as Arrow, loading the tables it names first."""
        self._load_named(query)
        return self.duck.sql(query, params=parameters or []).to_arrow_table()

    def load_reports(self, where: str, parameters: list[Any]) -> None:
        """Load the raw reports matching ``where`` (PostgreSQL's SQL, ``$1`` parameters) as
        the table ``reports``, in place of any loaded before: raw reports are never loaded
        whole, only the slice a query reads."""
        self._pg.execute(f"SELECT * FROM reports WHERE {where}", parameters=parameters)  # noqa: S608
        self.duck.register("reports", _plain(self._pg.fetch_arrow_table()))

    def close(self) -> None:
        """Forget what was loaded."""
        self.duck.close()

    # -- loading -----------------------------------------------------------------------------

    def _load_named(self, query: str) -> None:
        for name in dict.fromkeys(_NAMES.findall(query)):
            if name in _VIEWS:
                self._load(_VIEWS[name])
                if name not in self._loaded:
                    self.duck.execute(instance_days.CREATE_VIEW)
                    self._loaded.add(name)
            else:
                self._load(name)

    def _load(self, table: str) -> None:
        if table in self._loaded:
            return
        if self._customer_id is not None and TABLES[table]:
            self._pg.execute(
                f"SELECT * FROM {table} WHERE customer_id = $1",  # noqa: S608 - a constant
                parameters=[self._customer_id],
            )
        else:
            self._pg.execute(f"SELECT * FROM {table}")  # noqa: S608 - a constant name
        self.duck.register(table, _plain(self._pg.fetch_arrow_table()))
        self._loaded.add(table)


def _plain(table: pa.Table) -> pa.Table:
    """Arrow as DuckDB and Polars read it: PostgreSQL's column metadata dropped."""
    return table.replace_schema_metadata(None)


def arrow_of(con: Any, query: str, parameters: Any = None) -> pa.Table:
    """A DuckDB query's answer as Arrow, on a DuckDB connection or a snapshot."""
    if isinstance(con, Snapshot):
        return con.arrow(query, parameters)
    if not isinstance(con, duckdb.DuckDBPyConnection):
        raise TypeError("analytics read DuckDB or a snapshot of PostgreSQL (Store.analyze)")
    return con.sql(query, params=parameters or []).to_arrow_table()


def slice_reports(con: Any, where: str, parameters: list[Any]) -> None:
    """On a snapshot, load the raw reports a query is about to read (``load_reports``); on
    DuckDB nothing: the table is there."""
    if isinstance(con, Snapshot):
        con.load_reports(where, parameters)
