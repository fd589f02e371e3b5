"""Background work on the list: imports, on the `bulk` queue (a long task, like a send batch),
and the beat's deletion of uploads left unstarted."""

from celery import shared_task


@shared_task(ignore_result=True)
def supporter_import_task(import_id: int) -> None:
    """Run a queued import; a bad file is recorded on the import, and retrying cannot help."""
    from .imports.reading import ImportFileError
    from .imports.services import supporter_import_run

    try:
        supporter_import_run(import_id=import_id)
    except ImportFileError:
        return


@shared_task(ignore_result=True)
def supporter_import_drafts_expire_task() -> None:
    from .imports.services import supporter_import_drafts_expire

    supporter_import_drafts_expire()
