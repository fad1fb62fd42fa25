"""Real-time delivery of domain events to GraphQL subscriptions (graphql-transport-ws)."""
