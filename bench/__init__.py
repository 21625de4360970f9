"""Benchmarks of the whole stack through its HTTP gateway (`make bench`).

Plain threads, never eventlet: the load generator must not be monkey-patched.
"""
