"""Models: ``Sequential`` (with its fusion plan), the zoo, and pickle-free save/load."""
from cnnlab.models import zoo
from cnnlab.models.sequential import Sequential

__all__ = ["Sequential", "zoo"]
