"""Lets `scrapyd-deploy` build the project's egg (it runs `python setup.py bdist_egg`).
Everything about the package is in pyproject.toml."""

from setuptools import setup

setup()
