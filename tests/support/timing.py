"""How much wall-clock slack a timing bound in the suite may take.

A bound either follows from what its test proves (an order, an overlap, a count: no slack)
or is a wait the product promises (a timeout, a budget) plus SLACK: what a loaded machine
adds to a wait that is exact on an idle one. Measured with the suite on 2 cores beside two
CPU-bound processes (`python3 -c 'while True: pass'` twice): the overshoots seen there stay
well inside SLACK, which stays well below every wrong behaviour the bounds tell apart (a
probe that waits for a hanging server, a second run of a job, a stop that waits out a run).
"""

SLACK = 0.5  # seconds
