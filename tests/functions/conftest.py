"""The smoke functions' servers: one per SDK for the whole session, started on first use."""

from __future__ import annotations

import pytest
from support.function_servers import (
    FIXTURES,
    SDKS,
    official_js_function_server,  # noqa: F401 - a fixture, used by name
    official_python_function_server,  # noqa: F401 - a fixture, used by name
    ours_function_server,  # noqa: F401 - a fixture, used by name
)
from support.processes import ListeningProcess


@pytest.fixture(params=SDKS)
def sdk(request: pytest.FixtureRequest) -> str:
    """Each SDK in turn: ``ours``, ``official-python``, ``official-js``."""
    name: str = request.param
    return name


@pytest.fixture
def server(sdk: str, request: pytest.FixtureRequest) -> ListeningProcess:
    """The session server of ``sdk``."""
    started: ListeningProcess = request.getfixturevalue(FIXTURES[sdk])
    return started


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> dict[str, ListeningProcess]:
    """Every SDK's session server, by SDK name."""
    return {sdk: request.getfixturevalue(FIXTURES[sdk]) for sdk in SDKS}
