"""Offline, verifiable question answering over research writing."""

__version__ = "0.1.0"
