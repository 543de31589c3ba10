"""The daemon, its settings and its wiring."""
