"""vcm's benchmark suite: what vcm costs on top of Vagrant, and how its control plane scales.

`python -m bench.run --all` is the full run; `python -m bench.run --tiny` runs every benchmark once
at a tiny size. See bench/README.md.
"""
