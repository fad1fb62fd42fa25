"""Epic EMR plugin (FHIR R4, SMART Backend Services)."""
