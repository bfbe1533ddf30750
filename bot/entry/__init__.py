"""The entry points: the only package that imports ``engine`` and ``adapters`` together with the
core (import-linter checks it), like cosmicpython's ``bootstrap``.

- :mod:`bot.entry.cli`: the ``turbobot`` command (argument parsing only);
- :mod:`bot.entry.run`: ``turbobot run``, the composition root of the bot;
- :mod:`bot.entry.worker`: ``turbobot worker``, the local engine wired into a pool worker;
- :mod:`bot.entry.doctor`: ``turbobot doctor``;
- :mod:`bot.entry.tools`: ``download``, ``imagine``, ``styles`` and ``bench``.
"""
