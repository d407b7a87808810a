"""The offline Places source: GeoNames places near a point, with no network.

* :mod:`trioherd.offline.index`: the compact index and its search, plus the
  cache file that lets later starts skip the build;
* :mod:`trioherd.offline.nearby`: Google's Nearby Search parameters,
  statuses and paging on top of the index, as our Places server speaks them.
"""
