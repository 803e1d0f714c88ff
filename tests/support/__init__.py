"""Test support shared by the suites: real processes, the official SDK's virtualenv."""
