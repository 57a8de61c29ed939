"""PayerHub's own words: its health plans, its claim status vocabulary (with the X12 277 truth behind
each), its authorization inquiry answers, its reconsideration reasons, and the words on its controls
in each redesign.

A clearinghouse relays what each plan answered in its own phrasing: a category first ("Finalized",
"Pended", "Acknowledged", "Rejected"), then what happened. Why each line lands where it does:

* ``Forwarded to payer`` -> A0:16:PR: the clearinghouse has passed the claim on to the plan (code
  16 names the entity it went to: PR, the payer). ``Acknowledged - received by payer`` -> A1:19:PR.
* ``Rejected - missing or invalid diagnosis code`` -> A3:21, second code 255 (date of service: 187):
  the plan refused to take the claim in; code 21 needs a second code saying what was wrong. It is
  corrected and sent again, not reconsidered.
* ``Pended - in adjudication`` -> P1:20, ``Pended - payer review`` -> P2:46 (internal review).
* ``Pended - administrative hold`` -> P5:38: held for a system or admin reason (awaiting the next
  adjudication cycle is the nearest code).
* ``Pended - medical records requested`` -> P3:294, second code 297: a 276/277 status reports
  "waiting for the provider's information" as P3 (R categories belong to the 277 request for
  information); 294 (supporting documentation) needs a second code naming it (medical notes).
* ``Finalized - paid, see remittance`` -> F1:1: paid in part; the remittance advice says why.
  ``Finalized - denied`` -> F2:1: the remittance's CARCs say why.

This is the sandbox's table. The bot's knowledge of the same vocabulary is written separately in
``portals/payerhub.py``; the contract suite checks that one covers the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.status import Hcr01
from sandbox.data import ClaimKind, PaKind


@dataclass(frozen=True)
class Plan:
    """A health plan PayerHub reaches: its payer id (the option value), its name (the label a person
    picks, and the ``plan`` of its claims), and whether it answers authorization inquiries."""

    payer_id: str
    name: str
    authorizations: bool


PLANS: tuple[Plan, ...] = (
    Plan("BLH01", "Blue Lakes Health", authorizations=True),
    Plan("CRD22", "Cardinal Care", authorizations=True),
    Plan("SMA90", "Summit Medicare Advantage", authorizations=False),
)
PLAN_BY_ID = {p.payer_id: p for p in PLANS}

CLAIM_KINDS: tuple[ClaimKind, ...] = (
    ClaimKind("A0", "16", "Forwarded to payer", 3, "pending", entity="PR"),
    ClaimKind("A1", "19", "Acknowledged - received by payer", 3, "pending", entity="PR"),
    ClaimKind("A2", "20", "Acknowledged - accepted for adjudication", 3, "pending"),
    ClaimKind(
        "A3", "21", "Rejected - missing or invalid diagnosis code", 2, "pending", rarc=(1, 1), detail="255"
    ),
    ClaimKind(
        "A3", "21", "Rejected - missing or invalid date of service", 1, "pending", rarc=(1, 1), detail="187"
    ),
    ClaimKind("P1", "20", "Pended - in adjudication", 6, "pending"),
    ClaimKind("P2", "46", "Pended - payer review", 3, "pending"),
    ClaimKind("P5", "38", "Pended - administrative hold", 2, "pending"),
    ClaimKind("P3", "294", "Pended - medical records requested", 3, "pending", rarc=(0, 1), detail="297"),
    ClaimKind("F1", "65", "Finalized - paid", 14, "full", carc=(0, 1)),
    ClaimKind("F1", "1", "Finalized - paid, see remittance", 7, "partial", carc=(1, 2), rarc=(0, 1)),
    ClaimKind("F2", "1", "Finalized - denied", 14, "none", carc=(1, 2), rarc=(0, 2)),
    ClaimKind("F2", "54", "Finalized - denied as duplicate", 3, "none", carc=(1, 1)),
    ClaimKind("F3", "101", "Finalized - adjusted", 3, "partial", carc=(1, 1)),
    ClaimKind("F4", "107", "Finalized - no payment forthcoming", 5, "none", carc=(1, 1)),
)

PA_KINDS: tuple[PaKind, ...] = (
    PaKind(Hcr01.A1, "Certified", 9, dated=True),
    PaKind(
        Hcr01.A6,
        "Certified - modified",
        3,
        dated=True,
        reasons=("Certified for fewer units than requested", "Certified for a different level of care"),
    ),
    PaKind(
        Hcr01.A3,
        "Not certified",
        5,
        reasons=(
            "Clinical criteria not met",
            "Service excluded from the member's benefit plan",
            "Provider not in the plan's network",
        ),
        reason_codes=("CLN", "EXC", "NET"),  # PayerHub's own denial reason codes
    ),
    PaKind(Hcr01.A4, "Pended - in clinical review", 4),
    PaKind(
        Hcr01.A4,
        "Pended - information requested",
        3,
        reasons=("Send the treating physician's notes", "Send the results of prior therapy"),
    ),
    PaKind(
        Hcr01.C,
        "Request canceled",
        2,
        reasons=("Canceled by the submitting provider", "Member not eligible on the date of service"),
    ),
    # added later: drawn apart, so the PAs above stay as the seed gave them
    PaKind(Hcr01.NR, "Certification not required", 2, late=True),
    PaKind(Hcr01.CT, "Contact the plan's utilization management", 1, late=True),
)

# PayerHub's option value, the label a person sees, and the bot.models.AppealReason it stands for.
RECONSIDERATION_REASONS: tuple[tuple[str, str, str], ...] = (
    ("MEDNEC", "Medical necessity review", "medical_necessity"),
    ("CODING", "Coding or billing correction", "coding_error"),
    ("TIMELY", "Proof of timely filing", "timely_filing"),
    ("COB", "Other insurance / coordination of benefits", "coordination_of_benefits"),
    ("DUPLICATE", "Incorrect duplicate denial", "duplicate_denial"),
    ("OTHER", "Other (explain below)", "other"),
)

# PayerHub's appeal levels: the option value, the label a person sees, the bot.models.AppealLevel it
# stands for, and the plans' filing limit, in days from the denial date (PayerHub's own rule, written
# apart from the bot's ``portals/payerhub.py``; a test checks that the two agree).
APPEAL_LEVELS: tuple[tuple[str, str, str, int], ...] = (
    ("RECON", "Reconsideration", "reconsideration", 65),
    ("APPEAL1", "First-level appeal", "first_level", 120),
    ("APPEAL2", "Second-level appeal", "second_level", 60),
    ("EXTERNAL", "External review (IRO)", "external_review", 120),
)

# The "Code type" column of the codes table on a claim.
CODE_TYPES = {"carc": "CARC", "rarc": "RARC"}

# The words on PayerHub's controls. "cosmetic" keeps them all; "renamed" changes some (and moves
# the plan choice into each form: see ``app.PayerHub.merged_plan``).
WORDS: dict[str, str] = {
    "user_name": "User name",
    "password": "Password",
    "sign_in": "Sign in",
    "code": "Verification code",
    "verify": "Verify",
    "sign_out": "Sign out",
    "nav_home": "Home",
    "nav_claims": "Claim status",
    "nav_auth": "Authorization inquiry",
    "nav_recon": "Reconsideration request",
    "nav_history": "Reconsideration history",
    "plan": "Health plan",
    "select_plan": "Select plan",
    "change_plan": "Change plan",
    "selected_plan": "Selected plan",
    "dates": "Dates of service",
    "from": "From",
    "to": "To",
    "claim_number": "Claim number",
    "member_id": "Member ID",
    "search": "Search",
    "lookup": "Search",
    "results": "Claim search results",
    "view": "View",
    "next": "Next",
    "previous": "Previous",
    "back": "Back to results",
    "claim_detail": "Claim detail",
    "status": "Claim status",
    "codes": "Reason and remark codes",
    "auth_number": "Authorization number",
    "auth_detail": "Authorization detail",
    "auth_status": "Certification status",
    "find_claim": "Find claim",
    "level": "Appeal level",
    "denial_date": "Denial date",
    "billing_npi": "Billing provider NPI",
    "service_from": "First date of service",
    "service_to": "Last date of service",
    "disputed_amount": "Amount in dispute",
    "reason": "Reason for reconsideration",
    "explanation": "Explanation",
    "reference": "Your reference",
    "letter": "Reconsideration letter (PDF)",
    "attachments": "Supporting documents (optional)",
    "certify": "I certify that this request is accurate and authorized",
    "submit": "Submit request",
    "submitted": "Reconsideration request submitted",
    "request_number": "Request number",
    "history_table": "Reconsideration requests",
}

RENAMED: dict[str, str] = {
    "plan": "Payer",
    "dates": "Service dates",
    "claim_number": "Payer claim ID",
    "search": "Find claims",
    "lookup": "Look up",
    "results": "Matching claims",
    "view": "Open",
    "status": "Current status",
    "auth_number": "Auth ID",
    "find_claim": "Look up claim",
    "level": "Review type",
    "denial_date": "Date of denial",
    "billing_npi": "Billing NPI",
    "reference": "Tracking number",
    "letter": "Cover letter (PDF)",
    "submit": "Send reconsideration",
    "submitted": "Reconsideration received",
    "request_number": "Confirmation number",
    "history_table": "Submitted reconsiderations",
    "nav_recon": "New reconsideration",
}


def words(redesign: str) -> dict[str, str]:
    return {**WORDS, **RENAMED} if redesign == "renamed" else dict(WORDS)
