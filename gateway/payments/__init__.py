"""Session payments: the Payment table, its state machine and the provider-neutral logic."""
