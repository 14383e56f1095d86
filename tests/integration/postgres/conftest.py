"""A PostgreSQL server per test (initdb + postgres from the Debian package, wal_level=logical,
on a free loopback port in a temp dir), stopped when the test ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tomyum.testing.postgres import PostgresServer, postgres_bin_dir


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    if postgres_bin_dir() is None:
        pytest.fail("PostgreSQL is not installed: run make install-test")
    with PostgresServer() as server:
        yield server
