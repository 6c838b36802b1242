"""alignkit: align a language model to a use case, end to end."""
__version__ = "0.1.0"
