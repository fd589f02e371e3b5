"""Compile every locale/*/LC_MESSAGES/*.po into the .mo files Django reads.

Babel does it in Python, so a fresh laptop or container needs no GNU gettext (Django's own
compilemessages calls gettext's msgfmt). Run by `make install`; the .mo files are build output
and not committed.
"""

import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    compiled = 0
    for po_path in sorted(ROOT.glob("locale/*/LC_MESSAGES/*.po")):
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parent.parent.name)
        untranslated = [m.id for m in catalog if m.id and not m.string]
        if untranslated:
            print(f"{po_path}: {len(untranslated)} untranslated, e.g. {untranslated[0]!r}")
        with po_path.with_suffix(".mo").open("wb") as mo_file:
            write_mo(mo_file, catalog)
        compiled += 1
    print(f"compiled {compiled} message catalog(s)")
    return 0 if compiled else 1


if __name__ == "__main__":
    sys.exit(main())
