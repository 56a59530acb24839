"""The one error a caller of ``load_dataset`` needs to catch."""


class DatasetNotAvailableError(ValueError):
    """A dataset name ctlearn does not know, or data that is not on this machine.

    The message says where ctlearn looked and how to get the data.
    """
