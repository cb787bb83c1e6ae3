"""What model calls cost: the one cost formula, and a run's usage totals.

Prices are per million tokens, in catwalk's convention (which Crush and
crush.json use): `cost_per_1m_in_cached` is the cache *write* price,
`cost_per_1m_out_cached` the cache *read* price.
"""

from __future__ import annotations

import attrs

from ..providers.base import ModelInfo, Usage


def cost(usage: Usage, info: ModelInfo) -> float:
    """The price of one model call's usage, in dollars (turns and titles alike)."""
    return (
        usage.input_tokens * info.cost_per_1m_in
        + usage.output_tokens * info.cost_per_1m_out
        + usage.cache_write_tokens * info.cost_per_1m_in_cached
        + usage.cache_read_tokens * info.cost_per_1m_out_cached
    ) / 1e6


@attrs.define
class RunUsage:
    """Tokens and cost of a run (or of one of its steps), as `message_finished` and `run_complete` report them
    (`protocol.encode.usage_to_wire`)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    def add(self, other: RunUsage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost += other.cost
