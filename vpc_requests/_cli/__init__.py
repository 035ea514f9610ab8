"""The ``vpc-requests`` command line."""
