"""BluePeak Benefits' own words: its status vocabulary (with the X12 truth behind each), its appeal
reasons, its security questions, and the words on its controls in each redesign.

This is the sandbox's table. The bot's knowledge of the same vocabulary is written separately in
``portals/bluepeak.py``; a test checks that one covers the other.
"""

from __future__ import annotations

from bot.status import Hcr01
from sandbox.data import ClaimKind, PaKind

CLAIM_KINDS: tuple[ClaimKind, ...] = (
    ClaimKind("A1", "19", "Received", 3, "pending", entity="PR"),
    ClaimKind("A2", "20", "Accepted - in queue", 2, "pending"),
    ClaimKind(
        "A3",
        "21",
        "Returned - correct the diagnosis code and resubmit",
        1,
        "pending",
        rarc=(1, 1),
        detail="255",
    ),
    ClaimKind(
        "A3",
        "21",
        "Returned - correct the procedure code and resubmit",
        1,
        "pending",
        rarc=(1, 1),
        detail="454",
    ),
    ClaimKind("P1", "20", "Processing", 5, "pending"),
    ClaimKind("P2", "46", "Under review", 3, "pending"),
    ClaimKind("P3", "294", "Awaiting documents - medical records", 3, "pending", rarc=(0, 1), detail="297"),
    ClaimKind("F1", "65", "Approved - payment issued", 12, "full", carc=(0, 1)),
    ClaimKind("F1", "1", "Partially approved", 6, "partial", carc=(1, 2), rarc=(0, 1)),
    ClaimKind("F2", "1", "Not covered", 10, "none", carc=(1, 2), rarc=(0, 2)),
    ClaimKind("F2", "54", "Denied - duplicate claim", 2, "none", carc=(1, 1)),
    ClaimKind("F3", "101", "Reprocessed", 2, "partial", carc=(1, 1)),
    ClaimKind("F4", "107", "Closed - no payment due", 4, "none", carc=(1, 1)),
)

PA_KINDS: tuple[PaKind, ...] = (
    PaKind(Hcr01.A1, "Authorized", 9, dated=True),
    PaKind(
        Hcr01.A6,
        "Authorized with changes",
        2,
        dated=True,
        reasons=("Fewer visits authorized than requested", "Authorized at a different site of care"),
    ),
    PaKind(
        Hcr01.A3,
        "Not authorized",
        5,
        reasons=(
            "Criteria for medical necessity not met",
            "Benefit excluded under the member's plan",
            "Try a preferred alternative first",
        ),
    ),
    PaKind(Hcr01.A4, "In review", 4),
    PaKind(
        Hcr01.A4,
        "Information requested",
        3,
        reasons=("Send the most recent office notes", "Send the imaging report"),
    ),
    PaKind(
        Hcr01.C,
        "Withdrawn",
        2,
        reasons=("Withdrawn by the requesting provider", "Member coverage ended"),
    ),
)

# BluePeak's option value, the label a person sees, and the bot.models.AppealReason it stands for.
APPEAL_REASONS: tuple[tuple[str, str, str], ...] = (
    ("necessity", "Medically necessary service", "medical_necessity"),
    ("coding", "Billing or coding correction", "coding_error"),
    ("timely", "Filed on time", "timely_filing"),
    ("other-coverage", "Other insurance / coordination of benefits", "coordination_of_benefits"),
    ("duplicate", "Not a duplicate claim", "duplicate_denial"),
    ("other", "Something else", "other"),
)

# BluePeak's option value for each review type (appeal level), its label, and the bot.models.AppealLevel.
APPEAL_LEVELS: tuple[tuple[str, str, str], ...] = (
    ("recon", "Reconsideration", "reconsideration"),
    ("appeal-1", "First-level appeal", "first_level"),
    ("appeal-2", "Second-level appeal", "second_level"),
    ("external", "Independent external review", "external_review"),
)

# BluePeak's filing limits: the days from the denial date within which it takes each level. Written
# apart from the bot's ``BluePeakPortal.filing_deadline_days``; a test checks that the two agree.
FILING_LIMITS: dict[str, int] = {
    "reconsideration": 90,
    "first_level": 180,
    "second_level": 60,
    "external_review": 120,
}
LATE = "The filing limit for this appeal has passed ({days} days from the denial)."

# The appeal dialog's fields beyond the reason and letter, by the shared form field name
# (``AppealRequest.form_fields``), and which of them are required.
APPEAL_FIELDS = (
    "level",
    "denial_date",
    "member_id",
    "service_from",
    "service_to",
    "billing_npi",
    "disputed_amount",
)
REQUIRED_FIELDS = frozenset({"level", "denial_date", "member_id", "billing_npi"})

SECURITY_QUESTIONS: tuple[str, ...] = (
    "What was the name of your first pet?",
    "In what city were you born?",
    "What was the make of your first car?",
    "What is the name of the street you grew up on?",
    "What was your childhood nickname?",
)

# The words on BluePeak's controls. "cosmetic" keeps them all; "renamed" changes some and moves
# the reference field to a second step of the appeal dialog.
WORDS: dict[str, str] = {
    "brand": "BluePeak Benefits · Provider Center",
    "sign_in_heading": "Sign in",
    "username": "Username",
    "password": "Password",
    "sign_in": "Sign in",
    "question": "Security question",
    "answer": "Answer",
    "verify": "Verify",
    "sign_out": "Sign out",
    "nav_claims": "Claims",
    "nav_pas": "Prior authorizations",
    "nav_appeals": "Appeals",
    "member_id": "Member ID",
    "search": "Search",
    "claims_table": "Claims",
    "pas_table": "Prior authorizations",
    "claim_number": "Claim number",
    "pa_number": "Authorization number",
    "status": "Status",
    "codes": "Adjustment codes",
    "previous": "Previous",
    "next": "Next",
    "file_appeal": "File an appeal",
    "level": "Review type",
    "denial_date": "Date of denial",
    "service_from": "Service date",
    "service_to": "Last service date",
    "billing_npi": "Billing NPI",
    "disputed_amount": "Amount disputed",
    "reason": "Reason",
    "explanation": "Explanation",
    "reference": "Your reference",
    "letter": "Appeal letter (PDF)",
    "attachments": "Supporting documents (optional)",
    "continue": "Continue",
    "submit_appeal": "Submit appeal",
    "cancel": "Cancel",
    "appeal_submitted": "Appeal submitted.",
    "appeal_number": "Appeal number",
    "history_table": "Submitted appeals",
    "history_reference": "Your reference",
    "terms": "Terms of use",
    "agree": "I agree",
}

RENAMED: dict[str, str] = {
    "search": "Find",
    "status": "Current status",
    "nav_appeals": "Requests",
    "file_appeal": "Request a review",
    "level": "Request type",
    "denial_date": "Denial letter date",
    "reason": "Appeal type",
    "reference": "Internal tracking ID",
    "letter": "Request letter (PDF)",
    "submit_appeal": "Send request",
    "appeal_submitted": "Request sent.",
    "appeal_number": "Request number",
    "history_reference": "Internal tracking ID",
}


def words(redesign: str) -> dict[str, str]:
    return {**WORDS, **RENAMED} if redesign == "renamed" else dict(WORDS)
