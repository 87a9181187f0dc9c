"""dspex_lab (placeholder; the public API is assembled below)."""
