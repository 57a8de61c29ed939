"""PayerHub's claim status inquiry and authorization inquiry, both for one chosen plan.

Claim status: choose the plan ("Select plan"), then search by dates of service (at most 24 months
apart; claim number and member ID narrow it down). Results come newest first, ten to a page, with
"Previous" and "Next" posting back; "View" opens a claim's detail and "Back to results" returns to
the same page. The rows and the search live in the view state, as a WebForms grid keeps them.
Authorization inquiry answers only for the plans that offer it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.codelists import shipped_codelists
from bot.models import CodeSystem
from sandbox.data import Claim
from sandbox.payerhub.forms import control, money, parse_date, pressed, text, us_date
from sandbox.payerhub.viewstate import PageState
from sandbox.payerhub.wording import CODE_TYPES, Plan
from sandbox.sessions import Session

if TYPE_CHECKING:
    from sandbox.payerhub.app import PayerHub

CLAIMS = "/Claims/ClaimStatus.aspx"
AUTHORIZATIONS = "/Authorizations/Inquiry.aspx"
PAGE_SIZE = 10
MAX_SPAN_DAYS = 731  # 24 months
VIEW_COMMAND = "Select$"  # a grid row's command, as WebForms posts it


def read_search(form: FormData) -> tuple[dict[str, str], list[str]]:
    """The claim search as posted, normalized, and what is wrong with it."""
    values = {
        "from": text(form, "txtFrom"),
        "to": text(form, "txtTo"),
        "claim_number": text(form, "txtClaimNumber").upper(),
        "member_id": text(form, "txtMemberId").upper(),
    }
    start, end = parse_date(values["from"]), parse_date(values["to"])
    if not values["from"] or not values["to"]:
        return values, ["Enter both dates of service."]
    if start is None or end is None:
        return values, ["Enter the dates of service as MM/DD/YYYY."]
    if end < start:
        return values, ["The To date must be on or after the From date."]
    if (end - start).days > MAX_SPAN_DAYS:
        return values, ["Dates of service can span at most 24 months."]
    return {**values, "from": us_date(start), "to": us_date(end)}, []


def codes_of(claim: Claim) -> list[tuple[str, str, str, str, str]]:
    """Each adjustment (type, group, code, description, amount), then each remark."""
    lists = shipped_codelists()
    rows = [
        (CODE_TYPES["carc"], a.group, a.code, lists.describe(CodeSystem.CARC, a.code) or "", money(a.amount))
        for a in claim.adjustments
    ]
    return rows + [
        (CODE_TYPES["rarc"], "", c, lists.describe(CodeSystem.RARC, c) or "", "") for c in claim.rarc
    ]


class Lookups:
    def __init__(self, portal: PayerHub) -> None:
        self.portal = portal
        self.state = portal.state

    # -- claim status ----------------------------------------------------------------------------

    def search(self, plan: Plan, criteria: dict[str, str]) -> list[Claim]:
        start, end = parse_date(criteria["from"]), parse_date(criteria["to"])
        number, member = criteria.get("claim_number", ""), criteria.get("member_id", "")
        found = [
            c
            for c in list(self.state.claims.values())
            if c.plan == plan.name
            and start is not None
            and end is not None
            and start <= c.service_date <= end
            and (not number or c.claim_number == number)
            and (not member or c.patient.member_id.upper() == member)
        ]
        return sorted(found, key=lambda c: (-c.service_date.toordinal(), c.claim_number))

    def claims_page(self, request: Request, session: Session, page: PageState, **context: Any) -> Response:
        self.portal.offer_plans(page)
        plan = self.portal.plan_of(page)
        page.rows = ()
        shown: dict[str, Any] = {"results": None, "claim": None}
        claim = self.state.claims.get(page.record) if page.record else None
        if claim is not None:
            shown.update(claim=claim, codes=codes_of(claim))
        elif page.criteria and plan is not None:
            found = self.search(plan, page.criteria)
            pages = max(1, -(-len(found) // PAGE_SIZE))
            page.index = min(max(page.index, 0), pages - 1)
            results = found[page.index * PAGE_SIZE : (page.index + 1) * PAGE_SIZE]
            page.rows = tuple(c.key for c in results)
            shown.update(results=results, total=len(found), pages=pages)
        page.allowed["btnView"] = tuple(f"{VIEW_COMMAND}{i}" for i in range(len(page.rows)))
        values = {**page.criteria, **context.pop("values", {})}
        return self.portal.render(
            request,
            "claims.html",
            session=session,
            page=page,
            plan=plan,
            values=values,
            index=page.index,
            **shown,
            **context,
        )

    async def claims_form(self, request: Request, session: Session) -> Response:
        return self.claims_page(request, session, PageState("claims"))

    async def claims_post(self, request: Request, session: Session) -> Response:
        got = await self.portal.postback(request, session, "claims")
        if isinstance(got, Response):
            return got
        form, page = got
        errors: list[str] = []
        values: dict[str, str] = {}
        row = control(form, "btnView")
        if pressed(form, "btnSelectPlan"):
            errors = self.portal.choose_plan(form, page)
        elif pressed(form, "btnChangePlan"):
            page = PageState("claims")
        elif pressed(form, "btnSearch"):
            values, errors = read_search(form)
            if self.portal.merged_plan:
                errors = self.portal.choose_plan(form, page) + errors
            if not errors:
                page.criteria, page.index, page.record = values, 0, None
        elif pressed(form, "btnNext"):
            page.index += 1
        elif pressed(form, "btnPrev"):
            page.index -= 1
        elif row is not None:  # event validation vouched for the row's command
            page.record = page.rows[int(str(row).removeprefix(VIEW_COMMAND))]
        elif pressed(form, "btnBack"):
            page.record = None
        return self.claims_page(request, session, page, errors=errors, values=values)

    # -- authorization inquiry -------------------------------------------------------------------

    def authorizations_page(
        self, request: Request, session: Session, page: PageState, **context: Any
    ) -> Response:
        self.portal.offer_plans(page)
        pa = self.state.pas.get(page.record) if page.record else None
        return self.portal.render(
            request,
            "authorizations.html",
            session=session,
            page=page,
            plan=self.portal.plan_of(page),
            pa=pa,
            values={"auth_number": page.criteria.get("auth_number", "")},
            **context,
        )

    async def authorizations_form(self, request: Request, session: Session) -> Response:
        return self.authorizations_page(request, session, PageState("authorizations"))

    async def authorizations_post(self, request: Request, session: Session) -> Response:
        got = await self.portal.postback(request, session, "authorizations")
        if isinstance(got, Response):
            return got
        form, page = got
        errors: list[str] = []
        notices: list[str] = []
        if pressed(form, "btnSelectPlan"):
            errors = self.portal.choose_plan(form, page, authorizations=True)
        elif pressed(form, "btnChangePlan"):
            page = PageState("authorizations")
        elif pressed(form, "btnSearch"):
            number = text(form, "txtAuthNumber").upper()
            page.criteria, page.record = {"auth_number": number}, None
            if self.portal.merged_plan:
                errors = self.portal.choose_plan(form, page, authorizations=True)
            if not number:
                errors.append("Enter the authorization number.")
            plan = self.portal.plan_of(page)
            if not errors and plan is not None:
                pa = self.state.pa(number, plan.name)
                page.record = pa.key if pa is not None else None
                if pa is None:
                    notices = [f"No authorization with this number was found for {plan.name}."]
        return self.authorizations_page(request, session, page, errors=errors, notices=notices)


def routes(portal: PayerHub) -> list[Route]:
    pages = Lookups(portal)
    auth = portal.authenticated
    return [
        Route(CLAIMS, auth(pages.claims_form), methods=["GET"]),
        Route(CLAIMS, auth(pages.claims_post), methods=["POST"]),
        Route(AUTHORIZATIONS, auth(pages.authorizations_form), methods=["GET"]),
        Route(AUTHORIZATIONS, auth(pages.authorizations_post), methods=["POST"]),
    ]
