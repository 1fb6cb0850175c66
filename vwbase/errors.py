"""Errors a user can act on. The CLI prints their message on one line and exits non-zero.

Each layer raises its own subclass so a caller can tell what to do with a failure:
a poison message is dead-lettered, a broker outage is retried, a bad model is refused.
"""


class VaewatchError(Exception):
    """Base of every expected, user-facing failure. `exit_code` is what the CLI returns."""

    exit_code: int = 2


class UserInputError(VaewatchError):
    """Bad arguments, files or data supplied by the user."""


class ModelError(VaewatchError):
    """A model artifact or registry entry that is missing, corrupt or mismatched."""


class BrokerError(VaewatchError):
    """The Kafka cluster cannot be reached or refused an operation."""

    exit_code = 3
