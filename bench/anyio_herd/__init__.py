"""The herd on anyio: one I/O layer for both of anyio's backends.

Each module mirrors the trio module of the same name (``server``, ``peers``,
``places``, ``herd``, ``cli``, ``stream``) and reuses the sans-I/O core,
:mod:`trioherd.core`, unchanged. Run it as ``python -m bench.anyio_herd``
with the flags of ``python -m trioherd``, plus ``--backend trio|asyncio`` and
``--uvloop``. Where anyio made it differ from the native trio layer is in
``NOTES.md`` beside this file.
"""
