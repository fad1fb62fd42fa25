"""Oracle Health (Cerner) EMR plugin (FHIR R4, SMART Backend Services or open sandbox)."""
