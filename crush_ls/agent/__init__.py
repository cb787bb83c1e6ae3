"""The agent: per-session coordination of runs and the turn loop."""

from .agent import Agent
from .coordinator import Coordinator, Run

__all__ = ["Agent", "Coordinator", "Run"]
