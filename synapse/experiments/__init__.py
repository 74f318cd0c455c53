"""Experiment infrastructure: results folders, plots, metrics-ready records, seed sweeps.

Submodules are imported on demand (``from synapse.experiments import plotting``) so that importing
the package stays cheap: matplotlib, joblib and dask load only when used.
"""
