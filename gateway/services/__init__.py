"""Service functions: the business rules, GraphQL-agnostic, tenant-scoped."""
