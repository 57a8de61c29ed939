"""RxPress PBM's own words: its pharmacy claim and drug PA vocabulary (with the X12 truth behind
each), its redetermination reasons, and the words on its controls in each redesign.

The X12 277 truth behind each claim wording, and why:

* ``PAID`` -> F1 / 65 (claim/line has been paid).
* ``REJECTED`` -> F2:<reject>::RX: the plan adjudicated the claim and refused it for a benefit
  reason (NCPDP 70 not covered, 75 prior authorization required, 76 plan limits, 79 refill too
  soon, 88 DUR, ...). The composite names the primary NCPDP reject as its status code, with the
  code list qualifier RX (STC01-4), as a 277 for a pharmacy claim does.
* ``REJECTED - INVALID CLAIM DATA`` -> A3:<reject>::RX: an NCPDP "M/I" (missing/invalid) reject
  never got into adjudication; the pharmacy corrects and resubmits, no redetermination. A3
  (returned as unprocessable) rather than A6 or A7, because "M/I" does not say whether missing or
  invalid; the M/I reject itself says what.
* ``REVERSED`` -> F3 / 686: a paid claim the pharmacy reversed; the finalized adjudication was
  revised and the whole claim voided (686).
* ``IN PROCESS`` -> P1:20; ``CAPTURED - PENDING ADJUDICATION`` -> A2 / 20: the switch captured the
  transaction and accepted it for adjudication later.

This is the sandbox's table; the bot's own knowledge of it is ``portals/rxpress.py``, and a test
checks that one covers the other.
"""

from __future__ import annotations

from bot.codelists import shipped_codelists
from bot.models import CodeSystem
from bot.status import Hcr01
from sandbox.data import ClaimKind, PaKind

# The rejects a PBM returns most often for benefit reasons: the primary reject of a REJECTED claim.
COMMON_REJECTS = ("70", "75", "76", "79", "88", "MR", "PA", "41", "65", "69", "AF", "606")

# The rejects RxPress takes no redetermination of: fixed by waiting, an override, the primary payer or
# a PA. (The plan's own rule, written here apart from the bot's ``bot.pharmacy``.)
CLOSED_REJECTS = frozenset({"75", "79", "88", "PA", "41", "65", "69", "AF", "606"})

# NCPDP's "M/I" (missing or invalid field) rejects, from the shipped list.
MISSING_INVALID = tuple(
    sorted(
        c.code
        for c in shipped_codelists().active_codes(CodeSystem.NCPDP_REJECT)
        if c.description.startswith("M/I ")
    )
)

# Only a claim the plan adjudicated and refused (REJECTED) can be sent for redetermination.
CLAIM_KINDS: tuple[ClaimKind, ...] = (
    ClaimKind("F1", "65", "PAID", 14, "full", appealable=False),
    ClaimKind(
        "F2",
        None,
        "REJECTED",
        16,
        "none",
        ncpdp=(1, 3),
        ncpdp_first=COMMON_REJECTS,
        code_list="RX",
        closed_rejects=CLOSED_REJECTS,
    ),
    ClaimKind(
        "A3",
        None,
        "REJECTED - INVALID CLAIM DATA",
        4,
        "none",
        ncpdp=(1, 1),
        ncpdp_first=MISSING_INVALID,
        code_list="RX",
    ),
    ClaimKind("F3", "686", "REVERSED", 4, "none", appealable=False),
    ClaimKind("P1", "20", "IN PROCESS", 4, "pending"),
    ClaimKind("A2", "20", "CAPTURED - PENDING ADJUDICATION", 3, "pending"),
)

PA_KINDS: tuple[PaKind, ...] = (
    PaKind(Hcr01.A1, "APPROVED", 9, dated=True),
    PaKind(
        Hcr01.A3,
        "DENIED",
        6,
        reasons=(
            "Step therapy requirement not met",
            "Non-formulary drug; formulary alternatives are available",
            "Diagnosis does not meet plan criteria",
            "Quantity requested exceeds the plan limit",
        ),
    ),
    PaKind(Hcr01.A4, "PENDED", 4),
    PaKind(
        Hcr01.A4,
        "MORE INFORMATION NEEDED",
        4,
        reasons=(
            "Chart notes documenting prior therapies",
            "Recent laboratory results",
            "Prescriber attestation of the diagnosis",
        ),
    ),
)

DRUGS = (
    "adalimumab 40 mg/0.4 mL pen",
    "semaglutide 1 mg/0.75 mL pen",
    "apixaban 5 mg tablet",
    "rosuvastatin 20 mg tablet",
    "insulin glargine 100 units/mL pen",
    "sumatriptan 100 mg tablet",
    "methylphenidate ER 36 mg tablet",
    "pregabalin 75 mg capsule",
    "fluticasone/salmeterol 250/50 mcg inhaler",
    "tofacitinib 5 mg tablet",
)

# RxPress's option value, the label a person sees, and the bot.models.AppealReason it stands for.
REDETERMINATION_REASONS: tuple[tuple[str, str, str], ...] = (
    ("01", "Medical necessity", "medical_necessity"),
    ("02", "Claim submitted with incorrect information", "coding_error"),
    ("03", "Submitted within the timely filing limit", "timely_filing"),
    ("04", "Other coverage / coordination of benefits", "coordination_of_benefits"),
    ("05", "Rejected as a duplicate in error", "duplicate_denial"),
    ("99", "Other", "other"),
)

# RxPress's review levels: the option value, the label a person sees, the bot.models.AppealLevel it
# stands for, and the plan's filing limit, in days from the date of the rejection notice (the plan's
# own rule, written apart from the bot's ``portals/rxpress.py``; a test checks that the two agree).
REVIEW_LEVELS: tuple[tuple[str, str, str, int], ...] = (
    ("RC", "Claim reconsideration", "reconsideration", 65),
    ("L1", "Redetermination (level 1)", "first_level", 65),
    ("L2", "Second-level review (level 2)", "second_level", 60),
    ("IR", "Independent review entity (IRE)", "external_review", 120),
)

# The words on RxPress's controls. "cosmetic" keeps them all; "renamed" changes some (and moves
# the letter upload from the request form to the review page).
WORDS: dict[str, str] = {
    "user_id": "User ID",
    "password": "Password",
    "log_in": "Log In",
    "security_code": "Security code",
    "remember": "Remember this device",
    "verify": "Verify",
    "send_new_code": "Send a new code",
    "log_out": "Log Out",
    "menu": "Menu",
    "nav_claims": "Claim Inquiry",
    "nav_pa": "Prior Authorization Status",
    "nav_redetermination": "Request a Redetermination",
    "nav_history": "Redetermination History",
    "work_area": "Work area",
    "rx_number": "Rx number",
    "fill_date": "Fill date",
    "pa_number": "PA number",
    "search": "Search",
    "claim_detail": "Claim detail",
    "claim_status": "Claim status",
    "rejects": "Reject codes",
    "pa_detail": "Prior authorization detail",
    "pa_status": "PA status",
    "form": "Redetermination request",
    "reason": "Reason for redetermination",
    "level": "Review level",
    "denial_date": "Date of rejection notice",
    "member_id": "Cardholder ID",
    "contact_name": "Pharmacy contact",
    "contact_phone": "Contact phone",
    "contact_email": "Contact e-mail",
    "explanation": "Explanation",
    "reference": "Your reference",
    "letter": "Redetermination letter (PDF)",
    "attachments": "Supporting documents (optional)",
    "review": "Review request",
    "summary": "Request summary",
    "submit": "Submit redetermination request",
    "received": "Redetermination request received",
    "rd_number": "Redetermination number",
    "history_reference": "Reference",
    "history_table": "Redetermination requests",
}

RENAMED: dict[str, str] = {
    "rx_number": "Prescription #",
    "fill_date": "Date filled",
    "pa_number": "PA ID",
    "search": "Go",
    "claim_status": "Adjudication status",
    "pa_status": "Determination",
    "reason": "Request type",
    "level": "Appeal tier",
    "denial_date": "Rejection date",
    "contact_name": "Contact person",
    "reference": "Internal tracking ID",
    "letter": "Letter (PDF)",
    "review": "Next",
    "submit": "Send request",
    "received": "Request received",
    "rd_number": "Request number",
    "history_reference": "Tracking ID",
}


def words(redesign: str) -> dict[str, str]:
    return {**WORDS, **RENAMED} if redesign == "renamed" else dict(WORDS)
