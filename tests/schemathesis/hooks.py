"""Schemathesis hooks for dealflow's fuzz test (tests/tests/cli_remote.rs).

`positive_data_acceptance` fails a run when a request the OpenAPI document
allows is refused with 400 or 422. Most of those are gaps in the document,
and the document is fixed for them. A few refusals depend on what the store
holds or on the clock, which no JSON Schema can say: an id in a body that
names nothing (`unknown_reference`), a move the deal's current stage does
not allow (`invalid_transition`), a policy's own verdict (`guard_rejected`,
`policy_failed`), a script that does not compile (`policy_invalid`), a
business time in the future. This check is `positive_data_acceptance` with
exactly those refusals let through; the run excludes the stock check and
runs this one in its place.
"""

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

# Codes whose refusal depends on the stored state, never on the request's shape.
STATE_CODES = {
    "unknown_reference",
    "invalid_transition",
    "guard_rejected",
    "policy_failed",
    "policy_invalid",
}

# `validation_failed` reasons that depend on the clock or on stored state:
# business times against now and the deal's own times; a token's expiry
# against now; a written reason that only an owner change (the stored owner
# differs) or a signed contract's money change needs; a signing time only
# a signed contract has.
STATE_REASONS = (
    "must not be in the future",
    "must be in the future",
    "must not be before",
    "must not be after",
    "is required to change a",
    "only a signed contract has a signing time",
)


# Operations whose `validation_failed` answers are about relations between
# values, which JSON Schema cannot state: a pipeline's stage ids are unique,
# its first stage is open, one stage is won, and every move goes between two
# of its stages; a report's `from` is not after its `to`.
RELATIONAL = {
    ("PUT", "/v1/branches/{id}/pipeline"),
    ("GET", "/v1/reports/referrals"),
}


# A well-formed cursor this server did not issue: whether it did is stored
# state (the referral report's cursor names a position in its ranking).
NOT_ISSUED = "is not one this server issued"


def _state_dependent(case, error):
    code = error.get("code")
    if code in STATE_CODES:
        return True
    details = error.get("details") or {}
    if code == "bad_request" and details.get("field") == "cursor":
        return NOT_ISSUED in str(details.get("reason", ""))
    if code != "validation_failed":
        return False
    if (case.method.upper(), case.path) in RELATIONAL:
        return True
    details = error.get("details") or {}
    field = str(details.get("field", ""))
    reason = str(details.get("reason", ""))
    if any(r in reason for r in STATE_REASONS):
        return True
    return False


@schemathesis.check
def positive_data_acceptance_beyond_state(ctx, response, case):
    """Schema-valid requests are accepted, unless refused for state-dependent reasons."""
    if response.status_code in (400, 422):
        try:
            error = response.json().get("error") or {}
        except Exception:
            error = {}
        if _state_dependent(case, error):
            return None
    return positive_data_acceptance(ctx, response, case)
