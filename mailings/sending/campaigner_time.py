"""Times as a campaigner types and reads them: in a time zone of their choosing, never naive.

Rally stores and compares moments in UTC; the schedule page (mailings/admin_views/send.py) and
the audit log speak in the zone the campaigner chose, with UTC beside it.
"""

from datetime import UTC, datetime, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from django.utils import timezone


@cache
def zone_names() -> tuple[str, ...]:
    """IANA zones by region ("Europe/London"), and UTC.

    Not Etc/GMT+5 and kin, whose sign is the reverse of what it seems (Etc/GMT+5 is five hours
    behind UTC), nor the old region-less aliases (EST, GB, …).
    """
    regional = (
        name
        for name in available_timezones()
        if "/" in name and not name.startswith(("Etc/", "SystemV/"))
    )
    return ("UTC", *sorted(regional))


def moment_from_wall_time(wall_time: datetime, zone: ZoneInfo) -> datetime:
    """Return the future moment at which a clock in `zone` shows `wall_time` (naive).

    Raise ValueError, saying why, for a time that names no single moment (the hour skipped when
    clocks go forward, the hour shown twice when they go back) and for one that has passed.
    """
    moment = wall_time.replace(tzinfo=zone)
    if moment.utcoffset() != wall_time.replace(tzinfo=zone, fold=1).utcoffset():
        if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall_time:
            raise ValueError(
                f"There is no {wall_time:%H:%M} on {wall_time:%d %B %Y} in {zone}: the clocks "
                "go forward then. Choose another time."
            )
        raise ValueError(
            f"{wall_time:%H:%M} on {wall_time:%d %B %Y} happens twice in {zone}: the clocks go "
            "back then. Choose another time."
        )
    now = timezone.now()
    if moment <= now:
        raise ValueError(
            f"That time has passed: it is now {now.astimezone(zone):%d %B %Y, %H:%M} in {zone}. "
            "Choose a later time."
        )
    return moment


def moment_text(moment: datetime, zone: tzinfo | None = None) -> str:
    """Write a moment in `zone` (its own zone if None), with UTC beside it unless that is UTC."""
    local = moment.astimezone(zone or moment.tzinfo)
    text = f"{local:%A %d %B %Y, %H:%M} ({local.tzinfo})"
    if str(local.tzinfo) != "UTC":
        utc = moment.astimezone(UTC)
        text += f", {utc:%H:%M} UTC" if utc.date() == local.date() else f", {utc:%d %B %H:%M} UTC"
    return text
