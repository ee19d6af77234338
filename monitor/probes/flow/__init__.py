"""The ``flow`` probe kind: named steps of other kinds run in order, values carried from one
answer to the next request (``extract:`` and ``${steps.STEP.NAME}``). Its pure parts:
:mod:`.extract` (values from answers) and :mod:`.fill` (values into the next step)."""
