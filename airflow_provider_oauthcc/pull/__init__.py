"""The pull engine shared by the hook's pull API and the operator.

``pagination`` (paginators), ``engine`` (one page's request with its retries; the pages of a
pull), ``fetching`` (a pull's fetcher: retry policy, user ``retry_args``, allowed origins),
``pages`` (``Pull``: the pages as an iterable, with progress and summary lines),
``async_pages`` (the same for ``async for``), ``records`` (a page's records; JSON Lines output
with its summary), ``retry`` (the retry policy), ``output`` (atomic JSON Lines output to object
storage), ``json_codec``, ``lineage`` and ``deferred`` (the deferrable operator's halves). Nothing is
imported here: a DAG file that imports the operator loads ``pagination`` alone.
"""
