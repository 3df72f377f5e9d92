"""Herald imports: reading contact files into rows to store and rejects to report."""

from herald.imports.errors import ImportFileError, Reason
from herald.imports.model import ContactRow, ImportResult, Reject
from herald.imports.phones import PhoneNormalizer, reference_e164, region_for_timezone, timezone_for_number
from herald.imports.reader import read_contacts
from herald.imports.rejects import write_rejects

__all__ = [
    "ContactRow",
    "ImportFileError",
    "ImportResult",
    "PhoneNormalizer",
    "Reason",
    "Reject",
    "read_contacts",
    "reference_e164",
    "region_for_timezone",
    "timezone_for_number",
    "write_rejects",
]
