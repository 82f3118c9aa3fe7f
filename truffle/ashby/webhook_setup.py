"""Setting up Ashby's webhooks (the admin's "Set up webhooks" or "New webhook secret"), as a
use case in two database steps around Ashby's calls, so that no thread waits on the network:

- `take_setup`: the workspace must be connected (else `NotConnectedError`); the webhooks
  Truffle registered before are read and the secret is rotated (with its audit row). The
  endpoint then awaits Ashby: it removes the webhooks registered before (they carry the old
  secret, so they are replaced, not kept) and registers new ones (truffle/ashby/webhooks.py);
- `settle_setup`: stores what is registered in Ashby now.

The new secret is shown once, in the endpoint's reply; it and the Ashby key stay out of every
repr, log and exception.
"""

import uuid
from dataclasses import dataclass, field

from sqlmodel import Session

from truffle.ashby import connections, webhooks
from truffle.audit import Actor
from truffle.security.secrets import KeyRing


class NotConnectedError(Exception):
    """Webhooks are set up for a connected workspace only (they need its Ashby key)."""

    def __init__(self) -> None:
        super().__init__("Connect Ashby first: webhooks are set up for a connected workspace.")


@dataclass(frozen=True)
class TakenSetup:
    """What the endpoint needs to replace the webhooks in Ashby."""

    endpoint_id: uuid.UUID
    url: str
    # The webhooks registered before, under the old secret: to be removed from Ashby.
    previously_registered: list[dict[str, str]]
    ashby_key: str = field(repr=False)
    # The new secret, shown once in the reply.
    secret: str = field(repr=False)


def take_setup(
    session: Session,
    keyring: KeyRing,
    workspace_id: uuid.UUID,
    actor: Actor,
    public_base_url: str,
) -> TakenSetup:
    """Rotates the workspace's webhook secret (creating its endpoint the first time) once the
    workspace is known to be connected; raises `NotConnectedError` otherwise, changing nothing."""
    ashby_key = connections.ashby_key_of(session, keyring, workspace_id)
    if ashby_key is None:
        raise NotConnectedError
    endpoint = webhooks.endpoint_of(session, workspace_id)
    previous = list(endpoint.registered) if endpoint is not None else []
    endpoint, secret = webhooks.rotate_secret(session, keyring, workspace_id, actor=actor)
    return TakenSetup(
        endpoint_id=endpoint.id,
        url=webhooks.endpoint_url(public_base_url, endpoint.id),
        previously_registered=previous,
        ashby_key=ashby_key,
        secret=secret,
    )


def settle_setup(session: Session, taken: TakenSetup, registered: list[dict[str, str]]) -> None:
    """After Ashby's calls: `registered` is every webhook Truffle has in Ashby now (the new
    ones, and any old one Ashby did not delete), so that a later set-up or Disconnect removes
    them."""
    webhooks.store_registered(session, taken.endpoint_id, registered)
