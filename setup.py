"""Only the optional C extension lives here; everything else is in pyproject.toml.

``authgate._speedups`` is the C twin of the ASGI hit path (``authgate/_hitpath.py`` holds the
pure-Python one and says why). Where it cannot be compiled, the install goes on without it.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("authgate._speedups", ["src/authgate/_speedups.c"], optional=True),
    ]
)
