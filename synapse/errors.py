"""The one kind of error a user of synapse can fix by changing what they gave.

Every mistake in a setting, a file, a folder or an array raises a :class:`UserError` (or a
subclass) whose message is ONE line naming what is wrong and where: the setting, the file, the
folder. The ``synapse`` command prints that line and exits with status 2; the Python API raises
it. Anything else that escapes is a bug in synapse, not in what the user gave.
"""


class UserError(ValueError):
    """A mistake in what the user gave; ``str(err)`` is one line naming what and where."""


class ConfigError(UserError):
    """An impossible setting; ``option`` names the setting (``c``, ``epochs``, ...)."""

    def __init__(self, option, message):
        super().__init__(f"{option}: {message}")
        self.option, self.detail = option, message


class DataError(UserError):
    """Data that cannot be used as given: a missing, corrupt or inconsistent file or array."""


class CheckpointError(UserError):
    """A checkpoint or results folder that cannot be read back or resumed."""
