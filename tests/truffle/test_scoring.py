from typing import Any

import pytest

from truffle.position.scoring import CriteriaScorer, tier_for

QUESTIONS: list[dict[str, Any]] = [
    {
        "prompt": "How do you make a retried operation safe?",
        "criteria": [
            {"label": "Idempotency", "keywords": ["idempotent", "idempotency"], "weight": 3},
            {"label": "Dedup keys", "keywords": ["dedupe key", "idempotency key"], "weight": 1},
        ],
    },
    {
        "prompt": "How do you test timers?",
        "criteria": [{"label": "Time skipping", "keywords": ["time skipping"], "weight": 2}],
    },
    {"prompt": "Anything else?", "criteria": []},
]


def test_a_full_match_scores_100_and_is_strong() -> None:
    result = CriteriaScorer().score(
        QUESTIONS,
        ["Make it IDEMPOTENT with a dedupe key.", "Use time   skipping.", "No."],
    )
    assert result.match_score == 100
    assert result.tier == "Strong"
    assert [q.score for q in result.questions] == [100, 100, None]
    assert result.summary.startswith("Strong match (100/100): met 3 of 3 criteria")


def test_scores_are_weighted_by_criteria() -> None:
    result = CriteriaScorer().score(QUESTIONS, ["It must be idempotent.", "Sleep a lot.", ""])
    # Question 1: 3 of 4 weight = 75; question 2: 0 of 2; match = (75*4 + 0*2) / 6 = 50.
    assert [q.score for q in result.questions] == [75, 0, None]
    assert result.match_score == 50
    assert result.tier == "Good"
    assert result.questions[0].met == ["Idempotency"]
    assert result.questions[0].missed == ["Dedup keys"]
    assert "missing Dedup keys, Time skipping" in result.summary


def test_keywords_match_whole_words_only() -> None:
    result = CriteriaScorer().score(QUESTIONS, ["nonidempotently", "time skippingly", ""])
    assert result.match_score == 0
    assert result.tier == "Weak"


def test_the_same_answers_always_score_the_same() -> None:
    answers = ["idempotency key", "time skipping", "x"]
    results = [CriteriaScorer().score(QUESTIONS, answers) for _ in range(5)]
    assert all(result == results[0] for result in results)


def test_positions_without_criteria_score_zero_and_say_why() -> None:
    result = CriteriaScorer().score([{"prompt": "Hi?", "criteria": []}], ["Hello"])
    assert result.match_score == 0
    assert result.summary == "No scoring criteria were set for this position's questions."


def test_answers_must_line_up_with_questions() -> None:
    with pytest.raises(ValueError, match="expected 3 answers"):
        CriteriaScorer().score(QUESTIONS, ["one"])


@pytest.mark.parametrize(
    ("score", "tier"), [(100, "Strong"), (70, "Strong"), (69, "Good"), (50, "Good"), (49, "Weak")]
)
def test_tier_boundaries(score: int, tier: str) -> None:
    assert tier_for(score) == tier
