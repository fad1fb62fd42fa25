"""The built-in local-filesystem document store."""
