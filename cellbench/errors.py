"""The exceptions cellbench raises on purpose.

The job layer tells bad input (a `CellbenchError`) from bugs (anything else): bad input is
reported in one line, a bug with its traceback.
"""


class CellbenchError(Exception):
    """Base class for errors caused by the user's input, not by a bug."""


class ConfigError(CellbenchError):
    """The experiment config is invalid; the message names the key path and the problem."""


class InputMissing(CellbenchError):
    """A task's inputs do not exist (an upstream task failed or has not run)."""


class TaskFailed(CellbenchError):
    """A task ended with an error; the message names the stage, the task and the cause."""


class NothingToDo(CellbenchError):
    """The input holds no plate (or a named plate no image): a run that did nothing failed."""
