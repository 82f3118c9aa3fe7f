"""Scoring a candidate's answers: a `Scorer` interface and the transparent default.

The default, `CriteriaScorer`, is deliberately simple so a recruiter can check it by hand:
- each question may list criteria; a criterion is met when any of its keywords appears in the
  answer as a whole word or phrase (case-insensitive);
- a question scores (weight of met criteria / weight of all its criteria) x 100;
- the match score is the mean of the question scores, each question weighted by the total
  weight of its criteria, rounded to a whole number; questions without criteria are not scored;
- tiers: 70 and above Strong, 50-69 Good, under 50 Weak.
A model-backed scorer can replace it by implementing `Scorer`; the workflow never changes.
"""

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from truffle.contracts import ScoreSummary

STRONG_THRESHOLD = 70
GOOD_THRESHOLD = 50
# Every score (the match, each question's, each criterion's) is out of this.
MAX_SCORE = 100


@dataclass(frozen=True)
class CriterionScore:
    id: str | None  # the criterion's stable id (None for questions being edited, unsaved)
    label: str
    weight: float
    met: bool

    @property
    def score(self) -> int:
        """100 when the answer meets it, 0 when not (out of 100)."""
        return 100 if self.met else 0


@dataclass(frozen=True)
class QuestionScore:
    question_index: int
    score: int | None  # None when the question has no criteria
    met: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    question_id: str | None = None
    criteria: list[CriterionScore] = field(default_factory=list)


@dataclass(frozen=True)
class ScoreResult:
    match_score: int
    tier: str
    questions: list[QuestionScore]
    summary: str


class Scorer(Protocol):
    def score(self, questions: Sequence[dict[str, Any]], answers: Sequence[str]) -> ScoreResult:
        """Scores `answers[i]` against `questions[i]` (a position's stored question dicts)."""
        ...


def tier_for(match_score: int) -> str:
    if match_score >= STRONG_THRESHOLD:
        return "Strong"
    if match_score >= GOOD_THRESHOLD:
        return "Good"
    return "Weak"


def _mentions(answer: str, keyword: str) -> bool:
    words = [re.escape(word) for word in keyword.lower().split()]
    if not words:
        return False
    pattern = r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)"
    return re.search(pattern, answer.lower()) is not None


class CriteriaScorer:
    def score(self, questions: Sequence[dict[str, Any]], answers: Sequence[str]) -> ScoreResult:
        if len(answers) != len(questions):
            raise ValueError(f"expected {len(questions)} answers, got {len(answers)}")
        scored: list[QuestionScore] = []
        weighted_total = 0.0
        weight_sum = 0.0
        for index, (question, answer) in enumerate(zip(questions, answers, strict=True)):
            criteria = question.get("criteria") or []
            if not criteria:
                scored.append(
                    QuestionScore(question_index=index, score=None, question_id=question.get("id"))
                )
                continue
            met = [c for c in criteria if any(_mentions(answer, k) for k in c["keywords"])]
            total_weight = sum(float(c["weight"]) for c in criteria)
            met_weight = sum(float(c["weight"]) for c in met)
            question_score = round(100 * met_weight / total_weight)
            scored.append(
                QuestionScore(
                    question_index=index,
                    score=question_score,
                    met=[c["label"] for c in met],
                    missed=[c["label"] for c in criteria if c not in met],
                    question_id=question.get("id"),
                    criteria=[
                        CriterionScore(c.get("id"), c["label"], float(c["weight"]), c in met)
                        for c in criteria
                    ],
                )
            )
            weighted_total += 100 * met_weight / total_weight * total_weight
            weight_sum += total_weight
        match_score = round(weighted_total / weight_sum) if weight_sum else 0
        return ScoreResult(
            match_score=match_score,
            tier=tier_for(match_score),
            questions=scored,
            summary=_summary(match_score, scored),
        )


def _summary(match_score: int, questions: list[QuestionScore]) -> str:
    met = [label for q in questions for label in q.met]
    missed = [label for q in questions for label in q.missed]
    total = len(met) + len(missed)
    if total == 0:
        return "No scoring criteria were set for this position's questions."
    tier = tier_for(match_score)
    parts = [f"{tier} match ({match_score}/100): met {len(met)} of {total} criteria"]
    if met:
        parts.append("strong on " + ", ".join(met[:3]))
    if missed:
        parts.append("missing " + ", ".join(missed[:3]))
    return "; ".join(parts) + "."


def scored_result(
    scorer: Scorer,
    questions: Sequence[dict[str, Any]],
    answers: Sequence[str],
    started: datetime,
    finished: datetime,
) -> dict[str, Any]:
    """A screening's stored result: the score of its answers and how long the candidate took
    (at least a minute)."""
    return {
        **dataclasses.asdict(scorer.score(questions, answers)),
        "duration_minutes": max(1, round((finished - started).total_seconds() / 60)),
    }


def summary_of(result: dict[str, Any]) -> ScoreSummary:
    """What the workflow and Ashby's update need of a stored result."""
    return ScoreSummary(match_score=int(result["match_score"]), tier=str(result["tier"]))
