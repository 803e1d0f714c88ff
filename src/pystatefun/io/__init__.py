"""Ingress and egress connectors. They talk to the runtime through ``pystatefun.io.api`` only."""
