"""Function servers shared by the runtime's integration tests (one per SDK per session)."""

from support.function_servers import (  # noqa: F401 - fixtures
    official_js_function_server,
    official_python_function_server,
    ours_function_server,
)
from support.sdk_servers import sdk_servers  # noqa: F401 - a fixture
