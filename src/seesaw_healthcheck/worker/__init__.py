"""The check worker: a process whose reactor does nothing but run checks.

``worker.Worker`` wires ``schedule.Schedule`` (the checks on their intervals, Seesaw's
state machine in ``check``) to the channel and the shared table (``seesaw_healthcheck.
channel``); ``python -m seesaw_healthcheck.worker`` is how the control process starts one.
"""
