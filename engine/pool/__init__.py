"""The worker pool: a bot with ``REDIS_URL`` sends its jobs over Redis (arq) to ``turbobot
worker`` processes, one per GPU.

- :mod:`engine.pool.wire`: Redis keys, JSON payloads and heartbeats both sides share;
- :mod:`engine.pool.remote`: the bot's side, a :class:`bot.ports.Executor` over the pool;
- :mod:`engine.pool.worker`: the worker's side, serving jobs with the executor it is given.

No torch, diffusers, transformers or peft is imported here (an import-linter contract checks
it): the bot may run the pool without a GPU, and the worker's engine is injected by
:mod:`bot.entry.worker`.
"""
