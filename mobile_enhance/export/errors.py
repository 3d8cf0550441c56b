"""The export stage's errors."""

from mobile_enhance.errors import UserError


class ExportError(UserError):
    pass


class FidelityError(ExportError):
    pass
