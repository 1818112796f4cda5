"""Models: containers that chain layers."""
from cnnlab.models.sequential import Sequential

__all__ = ["Sequential"]
