"""The package's version, apart so that every layer (the CLI's ``--version``
too) can import it without importing the package's public ``__init__``."""

#: The package's version; ``setup.cfg`` reads it from here (the one source),
#: and ``vpc_requests.__version__`` re-exports it.
__version__ = "0.1.0"
