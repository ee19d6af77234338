"""The ``flow`` kind: named steps of the other kinds run in order, values carried from one
answer to the next request (``extract:`` and ``${steps.STEP.NAME}``), as an end-to-end
test does.

- :mod:`.extract`: pure: values from answers;
- :mod:`.fill`: pure: values into the next step's section;
- :mod:`.judge`: pure: what a step's run means for the flow, and the run's one outcome;
- :mod:`.run`: the steps in order, each through its own kind's runner;
- :mod:`.kind`: the kind's declaration.
"""

from monitor.probes.flow.kind import KIND
from monitor.probes.flow.run import run_flow

__all__ = ["KIND", "run_flow"]
