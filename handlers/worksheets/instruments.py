"""Built-in instruments: PHQ-9 and GAD-7, their standard items, answer scale, scoring and severity bands."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stores.worksheets.assignments import Score
from stores.worksheets.worksheets import Field

ANSWERS = ("Not at all", "Several days", "More than half the days", "Nearly every day")  # scored 0..3
STEM = "Over the last 2 weeks, how often have you been bothered by any of the following problems?"


@dataclass(frozen=True)
class Instrument:
    """A validated questionnaire: items answered 0-3, summed, and read against severity bands."""

    key: str
    title: str
    items: tuple[str, ...]
    bands: tuple[tuple[int, str], ...]  # (lowest total of the band, band name), ascending

    @property
    def fields(self) -> tuple[Field, ...]:
        """One required 0-3 scale per item, the answers as its anchor labels."""
        return tuple(Field(id=f"{self.key}_{number}", type="scale", label=item, required=True, options=ANSWERS,
                           min=0, max=len(ANSWERS) - 1)
                     for number, item in enumerate(self.items, start=1))

    @property
    def max_total(self) -> int:
        """The highest possible total."""
        return len(self.items) * (len(ANSWERS) - 1)

    def severity(self, total: int) -> str:
        """The band a total falls in."""
        return [name for lowest, name in self.bands if total >= lowest][-1]

    def score(self, responses: dict[str, Any]) -> Score:
        """Total and band of complete responses."""
        total = sum(int(responses[field.id]) for field in self.fields)
        return Score(instrument=self.key, total=total, max=self.max_total, severity=self.severity(total))


PHQ9 = Instrument("phq9", "PHQ-9", (
    "Little interest or pleasure in doing things",
    "Feeling down, depressed, or hopeless",
    "Trouble falling or staying asleep, or sleeping too much",
    "Feeling tired or having little energy",
    "Poor appetite or overeating",
    "Feeling bad about yourself - or that you are a failure or have let yourself or your family down",
    "Trouble concentrating on things, such as reading the newspaper or watching television",
    "Moving or speaking so slowly that other people could have noticed? Or the opposite - being so fidgety or "
    "restless that you have been moving around a lot more than usual",
    "Thoughts that you would be better off dead or of hurting yourself in some way",
), ((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "moderately severe"), (20, "severe")))

GAD7 = Instrument("gad7", "GAD-7", (
    "Feeling nervous, anxious or on edge",
    "Not being able to stop or control worrying",
    "Worrying too much about different things",
    "Trouble relaxing",
    "Being so restless that it is hard to sit still",
    "Becoming easily annoyed or irritable",
    "Feeling afraid as if something awful might happen",
), ((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe")))

INSTRUMENTS = {each.key: each for each in (PHQ9, GAD7)}
SAFETY_ITEM = "phq9_9"  # thoughts of self-harm: any answer above 0 alerts the therapist


def needs_safety_alert(instrument: str | None, responses: dict[str, Any]) -> bool:
    """A PHQ-9 whose item 9 was answered above "Not at all"."""
    return instrument == PHQ9.key and float(responses.get(SAFETY_ITEM) or 0) > 0
