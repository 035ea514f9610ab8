"""Bindings: the Workers-style API on top of the transport."""
