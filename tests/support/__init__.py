"""Test support shared by the suites: real processes, the official SDKs (Python virtualenv, JS
node_modules), and function servers on all three SDKs for the runtime's tests."""
