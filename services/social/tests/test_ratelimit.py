"""The fixed-window rate limiter on the social read database, with a controlled clock."""

from concurrent.futures import ThreadPoolExecutor

from spm_social.ratelimit import RateLimit, RateLimiter
from spm_social.readmodel import SocialReadModel

LIMIT = RateLimit("social_commands", max_requests=3, window_seconds=10)


class ManualClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_requests_over_the_limit_are_rejected(read_model: SocialReadModel, org_id: str) -> None:
    limiter = RateLimiter(read_model.engine, clock=ManualClock(1_000.0))

    decisions = [limiter.hit(org_id, "person-1", LIMIT) for _ in range(5)]

    assert [decision.allowed for decision in decisions] == [True, True, True, False, False]
    assert [decision.request_count for decision in decisions] == [1, 2, 3, 4, 5]


def test_retry_after_counts_to_the_window_end(read_model: SocialReadModel, org_id: str) -> None:
    clock = ManualClock(1_003.2)
    limiter = RateLimiter(read_model.engine, clock=clock)

    decision = limiter.hit(org_id, "person-1", LIMIT)

    # The window runs from 1000 to 1010, so 6.8 seconds remain, rounded up.
    assert decision.retry_after_seconds == 7


def test_next_window_starts_counting_again(read_model: SocialReadModel, org_id: str) -> None:
    clock = ManualClock(1_000.0)
    limiter = RateLimiter(read_model.engine, clock=clock)
    for _ in range(4):
        limiter.hit(org_id, "person-1", LIMIT)

    clock.now = 1_010.0
    decision = limiter.hit(org_id, "person-1", LIMIT)

    assert decision.allowed is True
    assert decision.request_count == 1


def test_people_orgs_and_classes_count_apart(read_model: SocialReadModel, org_id: str) -> None:
    limiter = RateLimiter(read_model.engine, clock=ManualClock(1_000.0))
    for _ in range(3):
        limiter.hit(org_id, "person-1", LIMIT)

    assert limiter.hit(org_id, "person-1", LIMIT).allowed is False
    assert limiter.hit(org_id, "person-2", LIMIT).allowed is True
    assert limiter.hit(f"{org_id}-other", "person-1", LIMIT).allowed is True
    assert limiter.hit(org_id, "person-1", RateLimit("other_class", 3, 10)).allowed is True


def test_two_limiters_on_one_database_share_the_count(read_model: SocialReadModel, org_id: str) -> None:
    clock = ManualClock(1_000.0)
    replicas = [RateLimiter(read_model.engine, clock=clock), RateLimiter(read_model.engine, clock=clock)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        decisions = list(pool.map(lambda index: replicas[index % 2].hit(org_id, "person-1", LIMIT), range(12)))

    assert sorted(decision.request_count for decision in decisions) == list(range(1, 13))
    assert sum(decision.allowed for decision in decisions) == LIMIT.max_requests


def test_replica_with_clock_behind_keeps_the_later_window(read_model: SocialReadModel, org_id: str) -> None:
    ahead = RateLimiter(read_model.engine, clock=ManualClock(1_010.0))
    behind = RateLimiter(read_model.engine, clock=ManualClock(1_009.0))
    for _ in range(3):
        ahead.hit(org_id, "person-1", LIMIT)

    decision = behind.hit(org_id, "person-1", LIMIT)

    assert decision.allowed is False
    assert decision.request_count == 4
