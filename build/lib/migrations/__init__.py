"""The SQLite schema as numbered ``NNNN_name.sql`` scripts: package data, so a wheel carries it.

``bot.store`` finds them with :mod:`importlib.resources`, wherever the package is installed.
"""
