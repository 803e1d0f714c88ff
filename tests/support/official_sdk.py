"""The official Python SDK's interpreter for the tests: ``tools/official_sdk.py`` builds its
virtualenv (``.venv-statefun-3.3.0/``) on first use."""

from __future__ import annotations

from support.repo_tools import repo_tool

_tool = repo_tool("official_sdk.py")
official_python = _tool.official_python
