"""Services the HTTP layer calls: model wrappers and the retrieval pipeline.

Modules here that wrap a model import no Flask: trainers import them to save exactly what the app
loads (save/load symmetry). `registry` is the one place that knows which model lives where.
"""
