"""Writes fmkit's demo set: short financial news headlines in three sentiment classes.

The headlines are composed by this script from hand-written phrases (no external data),
so the demo is small, balanced-ish and free to redistribute. Run once; the CSV is shipped.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

COMPANIES = [
    "Acme Corp", "Northwind", "Globex", "Initech", "Umbrella Bank", "Stark Industries", "Wayne Enterprises",
    "Hooli", "Vandelay Imports", "Soylent Foods", "Cyberdyne", "Tyrell Motors", "Oscorp", "Aperture Labs",
    "Massive Dynamic", "Pied Piper", "Blue Sun", "Gringotts Capital", "Monarch Airlines", "Dunder Paper",
]
POSITIVE = [
    "{c} shares jump after earnings beat estimates",
    "{c} raises full-year guidance on strong demand",
    "{c} posts record quarterly revenue",
    "{c} stock surges on takeover bid",
    "Analysts upgrade {c} to buy, citing margin growth",
    "{c} wins multibillion-dollar government contract",
    "{c} profit doubles as costs fall",
    "{c} announces larger share buyback and dividend hike",
    "{c} beats sales forecasts for third straight quarter",
    "Investors cheer {c} turnaround plan",
    "{c} hits all-time high after upbeat outlook",
    "{c} reports surprise profit, shares rally",
    "{c} secures regulatory approval for flagship product",
    "Strong holiday sales lift {c}",
    "{c} expands into Asia, revenue outlook raised",
]
NEGATIVE = [
    "{c} shares plunge after profit warning",
    "{c} cuts guidance as demand weakens",
    "{c} misses earnings estimates, stock tumbles",
    "{c} announces layoffs of 2,000 workers",
    "Regulators fine {c} over accounting irregularities",
    "{c} downgraded to sell on falling margins",
    "{c} swings to quarterly loss",
    "{c} suspends dividend amid cash crunch",
    "{c} recalls products after safety complaints",
    "{c} faces lawsuit from shareholders",
    "{c} stock slides as CEO resigns abruptly",
    "{c} warns of supply chain disruption hitting sales",
    "Credit agency cuts {c} rating to junk",
    "{c} revenue falls short, outlook lowered",
    "{c} hit by data breach, shares drop",
]
NEUTRAL = [
    "{c} to report quarterly results on Thursday",
    "{c} names new chief financial officer",
    "{c} holds annual shareholder meeting",
    "{c} opens new office in Berlin",
    "{c} completes previously announced bond offering",
    "{c} schedules investor day for next month",
    "{c} board approves routine dividend",
    "{c} to present at industry conference",
    "{c} files annual report with regulators",
    "{c} appoints two independent directors",
    "{c} moves headquarters to new building",
    "{c} confirms talks with suppliers continue",
    "{c} shares unchanged in quiet trading",
    "{c} releases sustainability report",
    "{c} updates website for investors",
]


HELD_OUT_COMPANIES = ["Bluth Company", "Prestige Worldwide", "Sterling Cooper", "Wonka Industries"]


def write(rows: list[tuple[str, str]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {out}")


def main(folder: Path = Path(__file__).resolve().parents[1] / "fmkit/resources/demo") -> None:
    """Train on 20 companies; test on 4 companies the model never saw, so the test is not a lookup."""
    rng = random.Random(7)
    train, test = [], []
    for label, templates in (("positive", POSITIVE), ("negative", NEGATIVE), ("neutral", NEUTRAL)):
        for template in templates:
            train.extend((template.format(c=company), label) for company in rng.sample(COMPANIES, 7))
            test.extend((template.format(c=company), label) for company in rng.sample(HELD_OUT_COMPANIES, 2))
    rng.shuffle(train)
    rng.shuffle(test)
    write(train, folder / "financial_headlines.csv")
    write(test, folder / "financial_headlines_test.csv")


if __name__ == "__main__":
    main()
