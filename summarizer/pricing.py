"""Estimated cost of calls, from a price table the user can extend.

Prices are USD per million tokens as published by OpenAI when this table was
written; they change, so the vault or user config can override or add models:

    [prices."gpt-4o-mini"]
    input = 0.15
    cached_input = 0.075
    output = 0.60
"""

from __future__ import annotations

from summarizer.config import Price

BUILTIN_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(input=0.15, cached_input=0.075, output=0.60),
    "gpt-4o": Price(input=2.50, cached_input=1.25, output=10.00),
    "gpt-4.1-nano": Price(input=0.10, cached_input=0.025, output=0.40),
    "gpt-4.1-mini": Price(input=0.40, cached_input=0.10, output=1.60),
    "gpt-4.1": Price(input=2.00, cached_input=0.50, output=8.00),
    "gpt-5-nano": Price(input=0.05, cached_input=0.005, output=0.40),
    "gpt-5-mini": Price(input=0.25, cached_input=0.025, output=2.00),
    "gpt-5": Price(input=1.25, cached_input=0.125, output=10.00),
    "o4-mini": Price(input=1.10, cached_input=0.275, output=4.40),
    "o3": Price(input=2.00, cached_input=0.50, output=8.00),
}


def price_for(model: str, extra: dict[str, Price] | None = None) -> Price | None:
    """Exact name first, then the longest known prefix (`gpt-4o-2024-08-06` -> `gpt-4o`)."""
    table = {**BUILTIN_PRICES, **(extra or {})}
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name)]
    return table[max(prefixes, key=len)] if prefixes else None


def estimate_cost(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
    extra: dict[str, Price] | None = None,
    batch: bool = False,
) -> float | None:
    price = price_for(model, extra)
    if price is None:
        return None
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    uncached = max(prompt_tokens - cached_tokens, 0)
    cost = (uncached * price.input + cached_tokens * cached_rate + completion_tokens * price.output) / 1e6
    return cost / 2 if batch else cost
