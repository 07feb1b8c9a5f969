"""The pull engine shared by the hook's pull API and the operator.

``pagination`` (paginators), ``engine`` (one page's request with its retries; the pages of a
pull), ``retry`` (the retry policy), ``output`` (atomic JSON Lines output to object storage),
``json_codec``, ``lineage`` and ``deferred`` (the deferrable operator's halves). Nothing is
imported here: a DAG file that imports the operator loads ``pagination`` alone.
"""
