"""An import's life: create it (with its file), start it (with its mapping), run it.

Two phases. Reading cleans every row into temporary staging tables, one per lane (lanes.py), in
chunks, updating the progress the admin polls; nothing anyone else sees is written. Merging
then applies the whole file (merge.py), each lane in its own transaction, and commits every
lane or, if anything fails, none; a failed import can simply be run again. A worker killed
midway leaves the import `reading` or `merging`; Celery delivers the task again (acks late)
and the run starts over from the file, merging only the lanes not yet committed.
"""

import contextlib
import io
import time
from collections.abc import Callable
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.db import connection
from django.utils import timezone

from ..models import SupporterAuditEntry, Tag
from ..tasks import supporter_import_task
from .cleaning import RowCleaner
from .lanes import LaneSet, lane_of, lanes_wanted
from .mapping import mapping_check, mapping_guess
from .merge import MergeCounts, staging_merge
from .models import SupporterImport, SupporterImportPart
from .reading import ENCODINGS, FileFormat, ImportFileError, file_format_detect, rows_read
from .staging import staging_names

STAGING_CHUNK = 20_000
SOURCE_PREFIX = "import:"
Status = SupporterImport.Status


def supporter_import_create(
    *,
    original_name: str,
    tag_names: list[str],
    consent_source: str,
    consent_wording: str,
    encoding: str = "",
    upload: File | None = None,
    actor=None,
) -> SupporterImport:
    """Record an import to be made, storing its upload; raise ImportFileError if it is not whole.

    The command passes no upload: it reads its file where it is, given to supporter_import_run.
    """
    tag_names = [name.strip() for name in tag_names if name.strip()]
    consent_source, consent_wording = consent_source.strip(), consent_wording.strip()
    if not tag_names:
        raise ImportFileError("Name at least one tag for the imported supporters.")
    if too_long := [
        name for name in tag_names if len(name) > Tag._meta.get_field("name").max_length
    ]:
        raise ImportFileError(f"Tag names are at most 100 characters: {too_long[0][:40]}…")
    if not consent_source or not consent_wording:
        raise ImportFileError(
            "Say where these people gave consent (the consent source) and the exact wording "
            "they agreed to: both are kept as their record of consent."
        )
    if len(consent_source) > 500:
        raise ImportFileError("The consent source is at most 500 characters.")
    if encoding and encoding not in ENCODINGS:
        raise ImportFileError(f"Unknown encoding {encoding!r}.")
    supporter_import = SupporterImport(
        original_name=original_name[:255],
        tag_names=list(dict.fromkeys(tag_names)),
        consent_source=consent_source,
        consent_wording=consent_wording,
        encoding=encoding,
        started_by=actor,
        started_by_name=actor.get_username() if actor else "",
    )
    if upload is not None:
        supporter_import.file.save(original_name[-100:] or "import.csv", upload, save=False)
    supporter_import.save()
    return supporter_import


def supporter_import_start(*, supporter_import_id: int, mapping: list[str]) -> bool:
    """Queue a draft import with the mapping confirmed; return False if it was not a draft."""
    supporter_import = SupporterImport.objects.get(pk=supporter_import_id)
    with supporter_import.file.open("rb") as stored:
        headers, _, _ = file_header_read(binary_stream(stored), encoding=supporter_import.encoding)
    mapping_check(headers, mapping)
    queued = SupporterImport.objects.filter(pk=supporter_import_id, status=Status.DRAFT).update(
        mapping=mapping, status=Status.QUEUED
    )
    if queued:
        supporter_import_task.delay_on_commit(supporter_import_id)
    return bool(queued)


def supporter_import_drafts_expire() -> int:
    """Delete the uploads of drafts left unstarted for RALLY_IMPORT_DRAFT_HOURS; return how many.

    An upload is a list of people's addresses: kept only while it may still be imported. The
    import stays, failed, saying why, so the campaigner sees what became of it. By beat.
    """
    hours = settings.RALLY_IMPORT_DRAFT_HOURS
    cutoff = timezone.now() - timedelta(hours=hours)
    expired = 0
    for supporter_import in SupporterImport.objects.filter(
        status=Status.DRAFT, created_at__lt=cutoff
    ).exclude(file=""):
        # Only if still a draft now: a campaigner may start it while this runs.
        if SupporterImport.objects.filter(pk=supporter_import.pk, status=Status.DRAFT).update(
            status=Status.FAILED,
            file="",
            finished_at=timezone.now(),
            error=f"Not started within {hours} hours, so the upload was deleted; "
            "upload the file again to import it.",
        ):
            supporter_import.file.delete(save=False)
            expired += 1
    return expired


def binary_stream(stored: File) -> BinaryIO:
    """Return the binary file object under a storage's File wrappers (TextIOWrapper needs it)."""
    stream = stored
    while not isinstance(stream, io.IOBase) and hasattr(stream, "file"):
        stream = stream.file
    return stream


def file_header_read(stream: BinaryIO, *, encoding: str = "", preview_rows: int = 0):
    """Return a file's header, its first rows (cells, for the preview) and its format."""
    file_format = file_format_detect(stream, encoding=encoding)
    rows = rows_read(stream, file_format)
    header = next(rows, None)
    if header is None or header.cells is None:
        raise ImportFileError("The file has no readable header row.")
    preview = []
    for row in rows:
        if len(preview) >= preview_rows:
            break
        preview.append(row.cells or [row.problem])
    rows.close()
    return [cell.strip() for cell in header.cells], preview, file_format


def supporter_import_run(
    *, import_id: int, stream: BinaryIO | None = None, log: Callable[[str], object] | None = None
) -> SupporterImport:
    """Run a queued import to its end; raise ImportFileError (recorded on it) if the file is bad.

    `stream` is the command's file; without it the stored upload is read, and deleted after.
    Safe to run again after a crash: a run that did not finish wrote nothing but progress and
    the parts of the lanes it committed, which the next run keeps.
    """
    started = time.monotonic()
    claimed = SupporterImport.objects.filter(
        pk=import_id, status__in=[Status.QUEUED, Status.READING, Status.MERGING]
    ).update(status=Status.READING, started_at=timezone.now(), bytes_done=0, rows_done=0, error="")
    supporter_import = SupporterImport.objects.get(pk=import_id)
    if not claimed:
        return supporter_import
    # Written last, once the upload is gone: the admin's page takes finished_at for the end.
    finished: dict = {}
    try:
        if stream is not None:
            finished["summary"] = _import(supporter_import, stream, log or _silent, started)
        else:
            with supporter_import.file.open("rb") as stored:
                finished["summary"] = _import(
                    supporter_import, binary_stream(stored), log or _silent, started
                )
    except ImportFileError as error:
        finished.update(status=Status.FAILED, error=str(error))
        raise
    except Exception:
        finished.update(status=Status.FAILED, error=_internal_error(import_id))
        raise
    finally:
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            # Give the server back the session's temporary buffers (staging.py).
            connection.close()
        if supporter_import.file:
            supporter_import.file.delete(save=False)
        if finished:
            SupporterImport.objects.filter(pk=import_id).update(
                **finished, file="", finished_at=timezone.now()
            )
    supporter_import.refresh_from_db()
    return supporter_import


def _import(supporter_import: SupporterImport, stream: BinaryIO, log, started: float) -> dict:
    stream.seek(0, 2)
    bytes_total = stream.tell()
    stream.seek(0)
    file_format = file_format_detect(stream, encoding=supporter_import.encoding)
    log(f"Reading {bytes_total:,} bytes as {file_format.note}, delimiter {file_format.delimiter!r}")
    rows = rows_read(stream, file_format)
    header = next(rows, None)
    if header is None or header.cells is None:
        raise ImportFileError("The file has no readable header row.")
    headers = [cell.strip() for cell in header.cells]
    mapping = supporter_import.mapping or mapping_guess(headers)
    mapping_check(headers, mapping)
    SupporterImport.objects.filter(pk=supporter_import.pk).update(
        headers=headers,
        mapping=mapping,
        encoding_used=file_format.note[:100],
        delimiter=file_format.delimiter,
        bytes_total=bytes_total,
    )
    # The lanes an earlier run of this import committed (a crash came between two commits).
    parts = list(SupporterImportPart.objects.filter(supporter_import=supporter_import))
    lanes = parts[0].lanes if parts else lanes_wanted()
    # Made, and committed, before the lanes start: each lane's session must see them.
    tag_ids = [Tag.objects.get_or_create(name=name)[0].pk for name in supporter_import.tag_names]
    now = timezone.now()
    lane_set = LaneSet(
        import_id=supporter_import.pk,
        lanes=lanes,
        done={part.lane: part.counts for part in parts},
        merge=lambda lane, rows_table: _lane_merge(
            supporter_import, tag_ids, lane, rows_table, now
        ),
        finish=lambda counts: _finish(supporter_import, file_format, counts),
    )
    with lane_set:
        read = _stage(supporter_import.pk, rows, RowCleaner(mapping), lane_set, stream, log)
        log(f"Read {read:,} rows in {time.monotonic() - started:.1f} s; merging…")
        SupporterImport.objects.filter(pk=supporter_import.pk).update(
            status=Status.MERGING, rows_done=read, bytes_done=bytes_total
        )
        read_seconds = time.monotonic() - started
        lane_set.merge()
        merged_at = time.monotonic()
    # Timed after the commits: checking the foreign keys of a million new rows is part of it.
    summary = {
        **SupporterImport.objects.get(pk=supporter_import.pk).summary,
        "seconds": round(time.monotonic() - started, 2),
        "read_seconds": round(read_seconds, 2),
        "merge_seconds": round(merged_at - started - read_seconds, 2),
        "lanes": lanes,
    }
    log(f"Done in {summary['seconds']} s.")
    return summary


def _stage(import_id, rows, cleaner, lane_set: LaneSet, stream, log) -> int:
    """Clean every row into its lane's staging table; return how many rows the file has."""
    lanes = lane_set.lanes
    chunks: list[list[tuple]] = [[] for _ in range(lanes)]
    # As many rows in the worker's memory whatever the number of lanes.
    chunk_rows = STAGING_CHUNK // lanes
    read = 0
    # Closed here if staging fails, not later by the collector, once the file is shut.
    with contextlib.closing(rows):
        for row in rows:
            staged = cleaner.stage(row)
            lane = lane_of(staged, lanes) if lanes > 1 else 0
            chunk = chunks[lane]
            chunk.append(staged)
            if len(chunk) >= chunk_rows:
                lane_set.write(lane, chunk)
                chunks[lane] = []
            read += 1
            if read % STAGING_CHUNK == 0:
                SupporterImport.objects.filter(pk=import_id).update(
                    rows_done=read, bytes_done=stream.tell()
                )
                if read % (10 * STAGING_CHUNK) == 0:
                    log(f"  {read:,} rows read")
    for lane, chunk in enumerate(chunks):
        lane_set.write(lane, chunk)
    return read


def _lane_merge(supporter_import, tag_ids, lane: int, rows_table: str, now) -> MergeCounts:
    _, people_table, created_table = staging_names(supporter_import.pk, lane)
    return staging_merge(
        rows_table=rows_table,
        people_table=people_table,
        created_table=created_table,
        import_id=supporter_import.pk,
        tag_ids=tag_ids,
        source=_source(supporter_import),
        consent_wording=supporter_import.consent_wording,
        consent_source=supporter_import.consent_source,
        now=now,
    )


def _finish(supporter_import: SupporterImport, file_format: FileFormat, counts: dict) -> None:
    """Record the outcome of every lane together, in the last lane's transaction."""
    total = {
        key: sum(lane_counts[key] for lane_counts in counts.values())
        for key in (
            "rows", "created", "merged", "rejected", "duplicates_in_file", "existing",
            "existing_not_subscribed", "consent_records",
        )
    }  # fmt: skip
    summary = {
        "duplicates_in_file": total["duplicates_in_file"],
        "existing": total["existing"],
        "existing_not_subscribed": total["existing_not_subscribed"],
        "consent_records": total["consent_records"],
        "encoding": file_format.note,
        "delimiter": file_format.delimiter,
        # Seconds by kind of statement, each lane's own: the lanes ran at the same time.
        "merge_steps": {f"lane {lane}": part["steps"] for lane, part in counts.items()},
    }
    SupporterImport.objects.filter(pk=supporter_import.pk).update(
        status=Status.DONE,
        rows=total["rows"],
        created=total["created"],
        merged=total["merged"],
        rejected=total["rejected"],
        summary=summary,
    )
    SupporterAuditEntry.objects.create(
        actor=supporter_import.started_by,
        actor_name=supporter_import.started_by_name,
        action=SupporterAuditEntry.Action.IMPORTED,
        row_count=total["rows"],
        detail=(
            f"Import {supporter_import.pk} of {supporter_import.original_name}: "
            f"{total['created']} created, {total['merged']} merged, {total['rejected']} "
            f"rejected; tags {', '.join(supporter_import.tag_names)}"
        )[:500],
    )


def _source(supporter_import: SupporterImport) -> str:
    """Return the `source` of the supporters an import creates: its number and the file's name."""
    return f"{SOURCE_PREFIX}{supporter_import.pk}:{supporter_import.original_name}"[:100]


def _internal_error(import_id: int) -> str:
    """Say what an import that stopped on an error left: nothing, or the lanes it committed."""
    parts = SupporterImportPart.objects.filter(supporter_import_id=import_id)
    if not parts:
        return "The import stopped on an internal error; nothing was imported."
    counts = [part.counts for part in parts]
    return (
        f"The import stopped on an internal error after committing {len(counts)} of "
        f"{parts[0].lanes} parts ({sum(c['created'] for c in counts)} supporters created); "
        "upload the file again to import the rest: those already imported are merged, "
        "never added twice."
    )


def _silent(message: str) -> None:
    """Discard progress lines: the worker reports progress on the import itself."""
