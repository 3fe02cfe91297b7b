"""`make demo`: the whole system on one machine, through the same commands and files an operator uses.

Neither side of the product depends on this package; it drives both (the
store boxes' `edge-agent` and the central `churn-server`) as processes.
"""
