"""@handle mentions in comment text, resolved to person ids with the people directory."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Protocol

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


def resolve_mentions(directory: HandleDirectory, org_id: str, body: str) -> tuple[str, ...]:
    """Return the ids of the people ``body`` mentions, raising SocialGraphError naming ``body``.

    Every handle must name an active person of the organisation. Whether they may see the goal
    is not checked, so the result does not depend on it.
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
    return tuple(entries[handle].person_id for handle in handles)
