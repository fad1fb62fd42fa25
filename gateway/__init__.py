"""Santana gateway: the multi-tenant GraphQL back end for fertility-clinic counseling."""

__version__ = "0.1.0"
