"""trioherd: the CS 131 proxy herd on trio.

The sans-I/O core (:mod:`trioherd.core`) holds the protocol, the location
table and the server's rules; the modules beside it run them on trio.
"""

__version__ = "0.1.0"
