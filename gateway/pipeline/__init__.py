"""The path of a message: intake (decode, identify, decide, minimise, commit) and relay (outbox -> bus).

Each step is a plain async function taking the message and named dependencies; :mod:`gateway.bootstrap`
wires them.
"""

from gateway.pipeline.intake import Intake, Submission
from gateway.pipeline.relay import Relay
from gateway.pipeline.status import status_message

__all__ = ["Intake", "Relay", "Submission", "status_message"]
