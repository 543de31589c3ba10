"""vcm: vagrant-cluster-manager."""
