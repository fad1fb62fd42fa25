"""EMR integration: patient links to EMR records, import/sync, appointment pushes."""
