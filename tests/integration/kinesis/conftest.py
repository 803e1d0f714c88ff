"""The Kinesis tests share one local Kinesis-compatible server per session
(``support/kinesis.py``: moto's server mode, since Kinesis itself cannot run here)."""

from support.kinesis import kinesis_server  # noqa: F401 - a fixture
