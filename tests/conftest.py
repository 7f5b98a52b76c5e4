"""Shared pytest configuration. Fixtures live in plugin modules, each named for what it provides."""

pytest_plugins = ["harness.pytest_plugin", "fixtures.storage", "fixtures.operator", "fixtures.trainer"]


def pytest_configure() -> None:
    # What the `speedrun` command does at start-up, for the tests that use storage in this process.
    from speedrun_operator import storage

    storage.configure_process()
