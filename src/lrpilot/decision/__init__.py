"""The decision among benchmarked policies, on plain run records: no torch, no store.

:mod:`.stats` (intervals, paired tests, ties, power, a mean difference over tasks), :mod:`.rule` (``decide``: the one
place a choice among policies is made), :mod:`.ranking` (LRBench's ranking: the runs' aggregation by policy and
budget, ordered), :mod:`.tables` (its terminal and report table, what ``Ranking.format()`` prints),
:mod:`.special` (the special functions of the statistics, in numpy). Nothing is imported here, so that reading
:data:`.ranking.ORDERS` needs no numpy.
"""
