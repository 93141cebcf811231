"""Shared test configuration: the embedded API server fixtures."""

import os
import sys

# The helpers of the embedded API server tests (tests/opkit/testing/_server_fixtures.py).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "opkit", "testing"))

pytest_plugins = ["opkit.testing._pytest_plugin", "_server_fixtures"]
