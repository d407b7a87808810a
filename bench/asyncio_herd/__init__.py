"""The asyncio contrast: the herd of ``trioherd`` on asyncio and aiohttp.

Each module mirrors the trio module of the same name (``server``, ``peers``,
``places``, ``herd``, ``cli``, ``metrics_server``) and reuses the sans-I/O core,
:mod:`trioherd.core`, unchanged, so the two differ only in the concurrency
layer. Run it as ``python -m bench.asyncio_herd`` with the same flags as
``python -m trioherd``, plus ``--uvloop``.
"""
