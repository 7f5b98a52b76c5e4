"""Shared pytest configuration. Fixtures live in plugin modules, each named for what it provides."""

pytest_plugins = ["harness.pytest_plugin", "fixtures.storage", "fixtures.operator", "fixtures.trainer"]
