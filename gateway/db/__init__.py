"""Database: models, engine and sessions, tenancy (RLS), migrations."""
