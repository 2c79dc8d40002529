"""Fixtures shared by the integration test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.upstream import Upstream


@pytest.fixture(scope="module")
def up() -> Iterator[Upstream]:
    """One real upstream ("a") for the module (modules needing another one define theirs)."""
    with Upstream("a") as u:
        yield u
