"""Votes on shared images: one per voter and share, never on one's own image."""

from __future__ import annotations

from bot.domain import Requester, VoteResult
from bot.errors import BadRequest, NotFound
from bot.i18n import msg
from bot.ports import Clock
from bot.store import Store


class Votes:
    """Voting, and the score a share shows."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def vote(self, voter: Requester, share_id: int, value: int) -> int:
        """Record ``value`` (-1, 1; 0 takes the vote back); returns the new score."""
        if value not in (-1, 0, 1):
            raise BadRequest(msg("core.bad_vote"))
        tables = self._store.community
        found = await tables.visible_share_owner(share_id)
        if found is None or found[1] != voter.platform:
            raise NotFound(msg("core.no_such_share", share=share_id))
        # Votes for your own image are ignored: the score is what others think.
        if found[0] != voter.user_key:
            await tables.set_vote(share_id, voter.user_key, value, self._clock.now())
        return await tables.score(share_id)

    async def toggle_vote(self, voter: Requester, share_id: int) -> VoteResult:
        """Like a share, or take back one's like: the core, not the button, knows which."""
        liked = await self.my_vote(voter, share_id) > 0
        score = await self.vote(voter, share_id, 0 if liked else 1)
        return VoteResult(score=score, my_vote=await self.my_vote(voter, share_id))

    async def my_vote(self, voter: Requester, share_id: int) -> int:
        return await self._store.community.vote_of(share_id, voter.user_key)
