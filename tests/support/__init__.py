"""Shared test data. Importable as ``support`` because ``tests/conftest.py`` puts ``tests/`` on the path."""
