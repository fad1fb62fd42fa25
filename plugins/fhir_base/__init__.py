"""What the Epic and Oracle Health (Cerner) EMR plugins share: FHIR R4 over fhirclient.

SMART Backend Services auth, discovery, paging, error mapping, resource mapping,
the hook implementations and the local demo EMR; each vendor plugin is a thin
declaration on top that re-exports the hooks.
"""
