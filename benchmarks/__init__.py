"""Benchmarks: EP vs BPTT training steps, memory as T grows, solvers, free-phase throughput.

`python -m benchmarks` runs them side by side (`benchmarks.harness`); `benchmarks.measure`
holds the measurements, shared with track 29.
"""
