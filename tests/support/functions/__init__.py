"""Function definitions and the servers that serve them (one process per SDK)."""
