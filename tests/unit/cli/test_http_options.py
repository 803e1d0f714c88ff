"""``--http-*`` options of ``pystatefun run``: each bad value is a usage error naming it."""

from __future__ import annotations

from dataclasses import fields

import pytest
from click.testing import CliRunner

from pystatefun.cli import cli
from pystatefun.http import HttpLimits


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--http-max-head-bytes", "0", "Invalid value for '--http-max-head-bytes': 0 is not in"),
        ("--http-max-headers", "-3", "Invalid value for '--http-max-headers': -3 is not in"),
        ("--http-head-timeout", "0", "Invalid value for '--http-head-timeout': 0.0 is not in"),
        ("--http-body-timeout", "soon", "'soon' is not a valid float"),
        ("--http-max-connections", "1.5", "'1.5' is not a valid integer"),
    ],
)
def test_a_bad_http_limit_is_a_usage_error(option: str, value: str, says: str) -> None:
    result = CliRunner().invoke(cli, ["run", "module.yaml", option, value])
    assert result.exit_code == 2
    assert says in result.output


def test_the_options_default_to_the_http_limits_defaults() -> None:
    run = cli.commands["run"]
    defaults = {param.name: param.default for param in run.params}
    limits = HttpLimits()
    assert {field.name: defaults[field.name] for field in fields(HttpLimits)} == {
        field.name: getattr(limits, field.name) for field in fields(HttpLimits)
    }
