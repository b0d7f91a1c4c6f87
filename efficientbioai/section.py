"""The base of every config block: unknown keys are errors, values are checked when assigned too."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config block (see :mod:`efficientbioai.config`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
