"""Who knows whom: the people a user shares a conversation, booking, meeting or assignment with.

Features register a source when they are built (`shared.relations.add(store.related)`); `user:lookup`
(every namespace, CONTRACT §1 "People") answers names and roles only for related users, so a user id
learnt somewhere cannot be turned into a name.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from handlers.auth import User
from stores.users import UserRecord, UserStore

#: (user id, candidate ids) -> the candidates related to the user
RelatedSource = Callable[[str, frozenset[str]], Awaitable[Collection[str]]]


class Relations:
    """The registered sources of relations between users."""

    def __init__(self, users: UserStore) -> None:
        self._users = users
        self._sources: list[RelatedSource] = []

    def add(self, source: RelatedSource) -> None:
        """Count `source`'s relations too (a feature's store method)."""
        self._sources.append(source)

    async def related(self, user_id: str, candidates: Collection[str]) -> set[str]:
        """Which of `candidates` share something with the user (the user counts as related to themself)."""
        wanted = frozenset(candidates) - {user_id}
        found = {user_id} & set(candidates)
        for source in self._sources:
            if not wanted - found:
                break
            found |= set(await source(user_id, frozenset(wanted - found)))
        return found

    async def lookup(self, caller: User, ids: list[str]) -> list[UserRecord]:
        """`user:lookup`: the known users among `ids` the caller is related to (admins: any), in the order asked."""
        visible = set(ids) if caller.is_admin else await self.related(caller.id, ids)
        records = await self._users.get_many(sorted(visible))
        return [records[user_id] for user_id in dict.fromkeys(ids) if user_id in records]
