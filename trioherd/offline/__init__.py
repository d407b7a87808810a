"""The offline Places source: GeoNames places near a point, with no network.

* :mod:`trioherd.offline.index`: the compact index of places and its search
  by distance;
* :mod:`trioherd.offline.google`: places laid out as Google's Nearby Search
  answers;
* :mod:`trioherd.offline.cache`: loading the real data once per process,
  through a cache file that lets later starts skip the build;
* :mod:`trioherd.offline.nearby`: Google's Nearby Search parameters,
  statuses and paging on top of the index, as our Places server speaks them.
"""
