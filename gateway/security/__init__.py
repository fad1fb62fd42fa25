"""Request protection: rate limits, GraphQL limits, persisted queries, TOTP."""
