"""RuntimeOptions refuse values that would make the runtime misbehave, naming each one."""

from __future__ import annotations

import pytest

from pystatefun.errors import ConfigurationError
from pystatefun.runtime import RuntimeOptions


def test_defaults_are_valid() -> None:
    assert RuntimeOptions().key_groups == 128


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("key_groups", 0, "key_groups must be at least 1, got 0"),
        ("max_inflight", 0, "max_inflight must be at least 1"),
        ("min_inflight", 0, "min_inflight must be at least 1"),
        ("state_cache_addresses", -1, "state_cache_addresses must not be negative, got -1"),
        ("reply_timeout_s", 0.0, "reply_timeout_s must be positive"),
        ("shutdown_grace_s", -1.0, "shutdown_grace_s must not be negative"),
        ("durability", "sometimes", "durability must be 'fsync' or 'os'"),
        ("function_error_attempts", 0, "function_error_attempts must be at least 1, got 0"),
        ("function_error_backoff_s", 0.0, "function_error_backoff_s must be positive"),
        ("http_limits", 100, "http_limits must be a pystatefun.http.HttpLimits, got 100"),
    ],
)
def test_invalid_options_are_named(field: str, value: object, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        RuntimeOptions(**{field: value})  # type: ignore[arg-type]
