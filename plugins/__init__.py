"""Built-in integration plugins; each registers through the `santana` entry-point group."""
