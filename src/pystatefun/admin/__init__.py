"""The admin port: ``/metrics`` (Prometheus), ``/health`` and ``/ready``, for one runtime."""

from pystatefun.admin.server import AdminServer, Observed

__all__ = ["AdminServer", "Observed"]
