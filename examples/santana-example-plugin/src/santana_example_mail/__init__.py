"""Example Santana plugin: email via an HTTP relay (see plugin.py)."""
