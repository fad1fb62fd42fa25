"""The response cache (cache.py, store.py) and the clinic data versions it trusts (versions.py)."""
