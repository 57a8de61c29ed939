"""Meridian Health's own words: its status vocabulary (with the X12 truth behind each), its appeal
reasons, and the words on its controls in each redesign.

This is the sandbox's table. The bot's knowledge of the same vocabulary is written separately in
``portals/meridian.py``; a test checks that one covers the other.
"""

from __future__ import annotations

from bot.status import Hcr01
from sandbox.data import ClaimKind, PaKind

CLAIM_KINDS: tuple[ClaimKind, ...] = (
    ClaimKind("F1", "65", "Paid", 12, "full", carc=(0, 1)),
    ClaimKind("F1", "1", "Partially paid", 6, "partial", carc=(1, 2), rarc=(0, 1)),
    ClaimKind("F2", "1", "Denied", 14, "none", carc=(1, 2), rarc=(0, 2)),
    ClaimKind("F4", "107", "Processed - no payment due", 5, "none", carc=(1, 1)),
    ClaimKind("F3", "101", "Adjusted", 2, "partial", carc=(1, 1)),
    ClaimKind("P1", "20", "In process", 6, "pending"),
    ClaimKind("P2", "46", "Under review", 3, "pending"),
    ClaimKind("P3", "294", "Pending - awaiting medical records from provider", 2, "pending", detail="297"),
    ClaimKind(
        "P3",
        "294",
        "Additional information requested - other payer's EOB",
        3,
        "pending",
        rarc=(0, 1),
        detail="286",
    ),
    ClaimKind("A1", "19", "Received", 3, "pending", entity="PR"),
    ClaimKind("A2", "20", "Accepted for processing", 2, "pending"),
    ClaimKind(
        "A3", "21", "Returned - missing or invalid diagnosis code", 1, "pending", rarc=(1, 1), detail="255"
    ),
    ClaimKind(
        "A3", "21", "Returned - missing or invalid date of service", 1, "pending", rarc=(1, 1), detail="187"
    ),
)

PA_KINDS: tuple[PaKind, ...] = (
    PaKind(Hcr01.A1, "Approved", 9, dated=True),
    PaKind(
        Hcr01.A6,
        "Approved with modifications",
        2,
        dated=True,
        reasons=("Approved for fewer units than requested", "Approved for a shorter period than requested"),
    ),
    PaKind(
        Hcr01.A3,
        "Denied",
        5,
        reasons=(
            "Not medically necessary",
            "Service not covered under the member's plan",
            "Step therapy required",
            "Out-of-network provider",
        ),
        reason_codes=("MN01", "NC02", "ST03", "ON04"),  # Meridian's own denial reason codes
    ),
    PaKind(Hcr01.A4, "Pending review", 4),
    PaKind(
        Hcr01.A4,
        "Additional information needed",
        3,
        reasons=("Clinical notes required", "Imaging report required", "Lab results required"),
    ),
    PaKind(
        Hcr01.C,
        "Cancelled",
        2,
        reasons=("Cancelled at the provider's request", "Member no longer eligible"),
    ),
    # added later: drawn apart, so the PAs above stay as the seed gave them
    PaKind(Hcr01.NR, "No authorization required", 2, late=True),
    PaKind(
        Hcr01.A6,
        "Authorized at a different site of care",
        2,
        dated=True,
        reasons=("Authorized at an outpatient facility instead of the hospital requested",),
        late=True,
    ),
    PaKind(
        Hcr01.A2,
        "Partially approved",
        2,
        dated=True,
        reasons=("Some of the requested services were not approved",),
        late=True,
    ),
)

# Meridian's option value, the label a person sees, and the bot.models.AppealReason it stands for.
APPEAL_REASONS: tuple[tuple[str, str, str], ...] = (
    ("MN", "Medical necessity", "medical_necessity"),
    ("CE", "Coding error", "coding_error"),
    ("TF", "Timely filing", "timely_filing"),
    ("COB", "Coordination of benefits", "coordination_of_benefits"),
    ("DUP", "Duplicate claim denial", "duplicate_denial"),
    ("OTH", "Other", "other"),
)

# Meridian's option value for each appeal level, the label a person sees, and the bot.models.AppealLevel.
APPEAL_LEVELS: tuple[tuple[str, str, str], ...] = (
    ("RECON", "Reconsideration", "reconsideration"),
    ("L1", "Level 1 appeal", "first_level"),
    ("L2", "Level 2 appeal", "second_level"),
    ("IRO", "External review (IRO)", "external_review"),
)

# Meridian's filing limits: the days from the denial date within which it takes each level. Written
# apart from the bot's ``MeridianPortal.filing_deadline_days``; a test checks that the two agree.
FILING_LIMITS: dict[str, int] = {
    "reconsideration": 180,
    "first_level": 180,
    "second_level": 60,
    "external_review": 120,
}

# The appeal wizard's claim step: the fields beyond the claim number, by the shared form field name
# (``AppealRequest.form_fields``), and which of them are required.
APPEAL_FIELDS = (
    "level",
    "denial_date",
    "member_id",
    "service_from",
    "service_to",
    "billing_npi",
    "disputed_codes",
    "disputed_amount",
)
REQUIRED_FIELDS = frozenset({"level", "denial_date", "member_id", "billing_npi"})

CODE_TYPES = {"carc": "Adjustment reason", "rarc": "Remark"}

# The words on Meridian's controls. "cosmetic" keeps them all; "renamed" changes some.
WORDS: dict[str, str] = {
    "username": "Username",
    "password": "Password",
    "sign_in": "Sign in",
    "one_time_code": "One-time code",
    "verify": "Verify",
    "sign_out": "Sign out",
    "nav_claims": "Claims",
    "nav_pas": "Prior authorizations",
    "nav_new_appeal": "New appeal",
    "nav_history": "Appeal history",
    "claim_number": "Claim number",
    "pa_number": "Authorization number",
    "search": "Search",
    "status": "Status",
    "codes": "Adjustment and remark codes",
    "continue": "Continue",
    "level": "Appeal level",
    "denial_date": "Denial date",
    "member_id": "Member ID",
    "service_from": "Service date",
    "service_to": "Service end date",
    "billing_npi": "Billing provider NPI",
    "disputed_codes": "Denial codes",
    "disputed_amount": "Amount in dispute",
    "reason": "Reason for appeal",
    "explanation": "Explanation",
    "reference": "Your reference",
    "letter": "Appeal letter (PDF)",
    "attachments": "Supporting documents (optional)",
    "upload": "Upload and continue",
    "confirm": "I confirm this appeal is accurate and authorized",
    "submit_appeal": "Submit appeal",
    "appeal_received": "Appeal received",
    "appeal_number": "Appeal number",
    "history_reference": "Reference",
    "history_table": "Submitted appeals",
}

RENAMED: dict[str, str] = {
    "claim_number": "Claim ID",
    "pa_number": "Authorization ID",
    "search": "Find",
    "status": "Current status",
    "continue": "Next",
    "level": "Review level",
    "billing_npi": "Billing NPI",
    "reason": "Appeal type",
    "reference": "Internal tracking ID",
    "letter": "Request letter (PDF)",
    "upload": "Attach files",
    "submit_appeal": "Send request",
    "appeal_received": "Request received",
    "appeal_number": "Request number",
    "history_reference": "Tracking ID",
    "nav_new_appeal": "New request",
}


def words(redesign: str) -> dict[str, str]:
    return {**WORDS, **RENAMED} if redesign == "renamed" else dict(WORDS)
