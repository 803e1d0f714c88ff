"""The admin port: ``/metrics`` (Prometheus), ``/health``, ``/ready`` and the web console (``/``,
over its JSON API ``/api/...``), for one runtime."""

from pystatefun.admin.server import AdminServer, Observed

__all__ = ["AdminServer", "Observed"]
