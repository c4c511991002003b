"""Fails at import time, to test the "app failed to load" exit."""

raise RuntimeError("kaboom at import 77c1")
