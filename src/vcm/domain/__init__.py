"""Boxes, VMs, allocation rules and the use cases, behind ports."""
