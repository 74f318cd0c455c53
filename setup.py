# All metadata lives in setup.cfg; this shim only lets older pip versions build the project.
from setuptools import setup

setup()
