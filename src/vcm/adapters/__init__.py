"""Adapters for Vagrant, the state file and the socket protocol."""
