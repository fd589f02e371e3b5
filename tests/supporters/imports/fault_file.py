"""A generated import file with deliberate faults, and what an import of it must report."""

from dataclasses import dataclass, field
from pathlib import Path

from supporters.models import Supporter, SuppressedEmail
from supporters.suppression import email_hash

HEADER = ["E-mail", "Имя", "Фамилия", "Страна", "Индекс", "Notes"]
EXISTING_STATUSES = ["subscribed", "unsubscribed", "bounced", "complained"]
SUPPRESSED_LINES = (13, 23)
HUGE_LINE_AT = 500  # the row index before which a 10 MB line is written
INVALID = ["no-at-sign", "two@@example.org", '=HYPERLINK("http://x")', "", "a@b"]


@dataclass
class FaultPlan:
    rows: int = 0
    created: int = 0
    merged: int = 0
    rejected: int = 0
    duplicates: int = 0
    existing_by_status: dict[str, int] = field(default_factory=dict)
    rejected_lines: dict[int, str] = field(default_factory=dict)
    formula_email: str = ""


def fault_file_write(path: Path, *, rows: int, encoding: str, delimiter: str, newline: str):
    """Write the file and create the supporters it refers to; return the plan of its outcome.

    Row i is, by the first rule that holds: invalid (i % 50 == 0), a repeat of row i - 3
    (i % 10 == 1), a row with a stray extra field (i % 1000 == 7), an erased address
    (SUPPRESSED_LINES), a known supporter (i % 5 == 2; statuses in turn), else new, sometimes
    short (i % 1000 == 17) or with a formula for a name (i % 997 == 3).
    """
    plan = FaultPlan(existing_by_status=dict.fromkeys(EXISTING_STATUSES, 0))
    existing = []
    line = 1
    lines = [delimiter.join(HEADER)]
    for i in range(rows):
        if i == HUGE_LINE_AT:
            line += 1
            lines.append("x" * 10_000_000)
            plan.rows += 1
            plan.rejected += 1
            plan.rejected_lines[line] = "line longer"
        if i % 400 == 9:
            line += 1
            lines.append("")  # blank lines are skipped, not rows
        line += 1
        plan.rows += 1
        cells = [_email(i), "Анна", f"Row{i}", "DE", "10115", ""]
        if i % 50 == 0:
            cells[0] = INVALID[(i // 50) % len(INVALID)]
            plan.rejected += 1
            plan.rejected_lines[line] = "email"
        elif i % 10 == 1 and i >= 3:
            cells = [f"  {_email(i - 3).upper()} ", "", "", "", "", ""]
            plan.merged += 1
            plan.duplicates += 1
        elif i % 1000 == 7:
            cells = [*cells, "stray"]
            plan.rejected += 1
            plan.rejected_lines[line] = "fields"
        elif i in SUPPRESSED_LINES:
            SuppressedEmail.objects.create(email_hash=email_hash(_email(i)))
            plan.rejected += 1
            plan.rejected_lines[line] = "erased on request"
        elif i % 5 == 2:
            status = EXISTING_STATUSES[(i // 5) % len(EXISTING_STATUSES)]
            existing.append(Supporter(email=_email(i), status=status, first_name="", country="FR"))
            plan.existing_by_status[status] += 1
            plan.merged += 1
        else:
            plan.created += 1
            if i % 1000 == 17:
                cells = cells[:1]  # a short row: the rest is empty
            elif i % 997 == 3:
                cells[1] = "=1+2"
                plan.formula_email = _email(i)
        lines.append(delimiter.join(cells))
    Supporter.objects.bulk_create(existing, batch_size=2000)
    path.write_bytes(
        (("\ufeff" if encoding == "utf-8" else "") + newline.join(lines) + newline).encode(encoding)
    )
    return plan


def _email(i: int) -> str:
    return f"person{i}@example.org"
