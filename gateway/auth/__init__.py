"""Authentication and authorisation: passwords, tokens, principals, permissions."""
