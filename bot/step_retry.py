"""When a failed page step is tried again within its run, and how the page is brought back first.

``bot.steps.StepRecorder`` applies these: a step that failed because the portal answered 5xx is
tried again up to ``RetryPolicy.retries`` times (``per_run`` for all steps of a run together),
each retry waiting on the run's clock, and only while the page can be rebuilt: its address loaded
again, then the steps since that load that only change what the page shows (``Repeat.REDO``) done
again. A click the page object does not mark repeatable (``Repeat.NEVER``) ends that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from bot.errors import PortalError, PortalServerError

RETRIED_IN_PLACE: tuple[type[PortalError], ...] = (PortalServerError,)
"""What a step tries again: the portal answered 5xx. A timeout has already waited its whole length,
maintenance outlasts an attempt, an ended session needs a login: those end the attempt, and the
runner or the queue decides."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failed step is tried again within one run, and how long each retry waits."""

    retries: int = 3  # for one failing step
    per_run: int = 12  # for all the steps of one run together
    first_wait: float = 0.25  # seconds before a step's first retry, doubled for each next one
    max_wait: float = 2.0
    kinds: tuple[type[PortalError], ...] = RETRIED_IN_PLACE

    def wait(self, retry: int) -> float:
        return min(self.max_wait, self.first_wait * 2.0 ** (retry - 1))


class Repeat(Enum):
    """What doing a step again would do, which decides how its failure is retried."""

    LOAD = "load"  # asks for a page by its address: the page the run can rebuild from
    REDO = "redo"  # changes only what the page shows (typing, a wait, a click marked repeatable)
    NEVER = "never"  # a click not marked repeatable: the page cannot be rebuilt past it
    READ = "read"  # changes nothing


@dataclass
class Segment:
    """How to rebuild the page a run is on: load ``url``, then do each of ``redo`` again."""

    url: str
    target: str  # the load's step target: the address without its query
    redo: list[Callable[[], object]] = field(default_factory=list)

    @classmethod
    def at(cls, url: str) -> Segment:
        """A page to rebuild by loading ``url``, its step named by the path alone (a query may
        hold a searched number)."""
        path = url.split("?", 1)[0]
        return cls(url, "/" + path.split("/", 3)[3] if path.count("/") >= 3 else path)
