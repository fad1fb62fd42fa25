"""Patient documents: encrypted uploads kept by a storage plugin, with audited access."""
