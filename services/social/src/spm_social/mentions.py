"""@handle mentions in comment text, resolved to person ids with the people directory."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Protocol

from spm_events.auth import Principal
from spm_events.visibility import GoalAudience
from spm_social.directory_lookup import DirectoryEntry
from spm_social.graph_rules import MAX_MENTIONS, SocialGraphError

# A directory handle is 1-64 lowercase letters, digits, '.', '_' or '-' starting with a letter or digit.
# A mention must also end with a letter or digit, so the full stop or dash after "@alice." is not part
# of it. The look-behind skips e-mail addresses such as "casey@example.com".
MENTION_PATTERN = re.compile(r"(?<![A-Za-z0-9._%+@-])@([A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?)(?![A-Za-z0-9])")


class HandleDirectory(Protocol):
    def entries_by_handle(self, org_id: str, handles: Collection[str]) -> Mapping[str, DirectoryEntry]: ...


def mentioned_handles(body: str) -> list[str]:
    """Return the distinct handles that ``body`` mentions, lowercased, in order of first mention."""
    handles: dict[str, None] = {}
    for match in MENTION_PATTERN.finditer(body):
        handles.setdefault(match.group(1).lower(), None)
    return list(handles)


def resolve_mentions(directory: HandleDirectory, org_id: str, body: str) -> tuple[DirectoryEntry, ...]:
    """Return the directory entries of the people ``body`` mentions, raising SocialGraphError naming ``body``.

    Every handle must name an active person of the organisation. Whether they may see the goal is
    not checked here, so the error does not depend on it.
    """
    handles = mentioned_handles(body)
    if len(handles) > MAX_MENTIONS:
        raise SocialGraphError("body", f"body mentions {len(handles)} people; the limit is {MAX_MENTIONS}")
    entries = directory.entries_by_handle(org_id, handles)
    unknown = [handle for handle in handles if handle not in entries]
    if unknown:
        listed = ", ".join(f"@{handle}" for handle in unknown)
        raise SocialGraphError(
            "body", f"body mentions handles not in your organisation's people directory: {listed}; check the spelling"
        )
    inactive = [handle for handle in handles if not entries[handle].active]
    if inactive:
        listed = ", ".join(f"@{handle}" for handle in inactive)
        raise SocialGraphError("body", f"body mentions deactivated people: {listed}; remove those mentions")
    return tuple(entries[handle] for handle in handles)


def mentioned_people_who_may_see(
    org_id: str, audience: GoalAudience, mentioned: tuple[DirectoryEntry, ...]
) -> tuple[str, ...]:
    """Return the ids of the mentioned people who may see the goal, in mention order.

    A mention of anyone else is left out of the comment's events and response, so no consumer can
    notify them and no notification reveals that the goal exists. A person's teams are taken from
    the people directory, because only their own token carries the ``teams`` claim.
    """
    # NOTE: the directory stores one team per person and no admin role, so a person whose token
    # names more teams, or an admin, who may see a team or private goal is left out too.
    return tuple(
        entry.person_id
        for entry in mentioned
        if audience.can_see(Principal(org_id, entry.person_id, teams=frozenset({entry.team})))
    )
