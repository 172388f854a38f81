"""Evaluation in one place, in layers: data (questions, splits), metrics, retrieval and answer
scoring, reference recipes, the typed report, the CI gate, and BEIR runs.

The modules import lazily what they need (ranx, matplotlib), so importing this package is cheap.
"""
