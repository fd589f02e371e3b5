"""Import supporters from a CSV file, as the admin's upload does; print one JSON line last."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from supporters.imports.mapping import mapping_adjust, mapping_check, mapping_guess
from supporters.imports.reading import ENCODINGS, ImportFileError
from supporters.imports.services import (
    file_header_read,
    supporter_import_create,
    supporter_import_run,
)
from supporters.models import SupporterImport


class Command(BaseCommand):
    help = (
        "Import supporters from a CSV file: new ones subscribed with the consent given, known "
        "ones completed (never resubscribed), all tagged. Prints one JSON line last."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="a CSV file (comma, semicolon or tab separated)")
        parser.add_argument(
            "--tag", action="append", default=[], metavar="NAME",
            help="tag every imported supporter (repeat for more tags; made if missing)",
        )  # fmt: skip
        parser.add_argument(
            "--consent-source", default="", metavar="TEXT",
            help="where these people gave consent (kept on each consent record)",
        )  # fmt: skip
        parser.add_argument(
            "--consent-wording", default="", metavar="TEXT",
            help="the exact words they agreed to (kept on each consent record)",
        )  # fmt: skip
        parser.add_argument(
            "--map", action="append", default=[], metavar="COLUMN=FIELD",
            help="map a column (header or number from 1) to a field, or to nothing: Mail=email",
        )  # fmt: skip
        parser.add_argument(
            "--encoding", choices=ENCODINGS, default="", help="the file's encoding (default: guess)"
        )

    def handle(self, *args, file, tag, consent_source, consent_wording, map, encoding, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            with path.open("rb") as stream:
                # Everything that can be wrong with the request is found before anything is
                # written: the file's header and mapping, the tags and the consent.
                headers, _, _ = file_header_read(stream, encoding=encoding)
                mapping = mapping_adjust(headers, mapping_guess(headers), map)
                mapping_check(headers, mapping)
                supporter_import = supporter_import_create(
                    original_name=path.name,
                    tag_names=tag,
                    consent_source=consent_source,
                    consent_wording=consent_wording,
                    encoding=encoding,
                )
                SupporterImport.objects.filter(pk=supporter_import.pk).update(
                    mapping=mapping, status=SupporterImport.Status.QUEUED
                )
                done = supporter_import_run(
                    import_id=supporter_import.pk, stream=stream, log=self.stderr.write
                )
        except ImportFileError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(json.dumps(import_summary(done)))


def import_summary(supporter_import: SupporterImport) -> dict:
    """Return the JSON line of an import: the contract's keys first, then the details."""
    return {
        "rows": supporter_import.rows,
        "created": supporter_import.created,
        "merged": supporter_import.merged,
        "rejected": supporter_import.rejected,
        "seconds": supporter_import.summary.get("seconds"),
        **{key: value for key, value in supporter_import.summary.items() if key != "seconds"},
        "tags": supporter_import.tag_names,
        "import_id": supporter_import.pk,
    }
