"""Writes fmkit's demo set: short financial news headlines in three sentiment classes.

Everything here is hand-written for fmkit (no external data), so the demo is free to redistribute.
Headlines are hand-written templates with a company slot and a few neutral fillers (amounts,
cities, days). The training and test sets share no template and no company, so the test score
measures how well the model generalises to new phrasings and names, not a lookup. The new
headlines that `make demo` predicts use companies that appear in neither set.

Run `python scripts/make_demo_data.py`; the output is deterministic and the files are shipped.
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parents[1] / "fmkit" / "resources" / "demo"
LABELS = ("negative", "neutral", "positive")

# Sector-neutral names, so a template about chips or drugs never reads oddly next to the company.
TRAIN_COMPANIES = [
    "Arborline", "Bexley Group", "Calderon Holdings", "Dovetail Systems", "Everspring", "Fairhaven Corp",
    "Granton Industries", "Halcyon Partners", "Ironbridge", "Juniper & Co", "Kestrel Corp", "Lumara",
    "Meridale Holdings", "Northgate Group", "Orchard Lane", "Pinecrest Inc", "Quarrow", "Redfern Corp",
    "Silvane Group", "Tidewell", "Upland Holdings", "Vantor Inc", "Willowby", "Xandria Corp", "Yelverton Group",
    "Zephyra", "Amberly Corp", "Brenmoor", "Corvane Technologies", "Delmar Group", "Eastlake Holdings",
    "Foxmoor", "Glenrock Corp", "Harlow & Finch", "Indigo Holdings", "Jasperton", "Kinloch Group",
    "Larkspur Inc", "Marwick", "Nimbra", "Oakhurst Group", "Palisade Corp", "Quillon", "Rosemont Industries",
    "Sablewood", "Talbot Group", "Ulmer Holdings", "Verdance", "Westmarch Corp", "Yardley Inc", "Zenlo",
    "Ashcombe", "Bramwell Corp", "Cinderford", "Dunrovin", "Emberton Group", "Fernvale", "Goldwick",
    "Hollowell Inc", "Ivorgate", "Jadeport", "Kettleby Corp", "Lindqvist", "Morvena", "Norvik Group",
    "Ostara Holdings", "Pellham", "Quintara", "Ravensworth", "Stellan Corp", "Thornbury", "Ulvika",
    "Valtera", "Wrenfield Group", "Auriga", "Bolton & Vane", "Cobaltix", "Driftmoor", "Elmstead Corp",
    "Fjordell", "Greystoke Holdings", "Helixa", "Ironwood Group", "Kairos Corp", "Lunaris", "Mistralis",
    "Novaterra", "Oberlin Group", "Parrish & Lowe", "Quadrant Corp", "Rivermark", "Solvane", "Tessaro",
    "Umberfield", "Vireo Group", "Wexmoor",
]
TEST_COMPANIES = [
    "Alderbrook", "Blackfen Corp", "Corriveau Group", "Dunmore Holdings", "Estrella Inc", "Falconridge",
    "Galloway Group", "Hartwell Corp", "Isolde Holdings", "Jorvik", "Kingsmere Group", "Lattimer Corp",
    "Marlowe & Sons", "Nettlefield", "Oxbow Group", "Penrose Holdings", "Quenby", "Rathmore Corp",
    "Sundale", "Tamsin Group", "Underhill Inc", "Varga Holdings", "Whitlock", "Yarrowby", "Zellner Corp",
    "Ashgrove", "Brackenbury", "Cresswell Inc", "Dellacroix", "Everholt Group", "Fenwick Corp", "Gilmour",
    "Hesketh Holdings", "Ingleby", "Junova", "Kestwick Group", "Lowther", "Mossgiel", "Nordhaven Corp",
    "Orrinet", "Pemberton Group", "Ravelston", "Sorrelle", "Tollund Corp", "Vesperine",
]
# Companies of the headlines `make demo` predicts: in neither set above.
NEW_COMPANIES = ["Globex", "Northwind", "Initech", "Hooli", "Acme Corp", "Tyrell Motors", "Wayne Enterprises",
                 "Umbrella Bank", "Soylent Foods"]

TRAIN_PEOPLE = ["Maria Okafor", "Daniel Reyes", "Priya Natarajan", "Tomas Lindgren", "Grace Whitfield",
                "Kenji Moriyama", "Helen Achterberg", "Samuel Osei"]
TEST_PEOPLE = ["Lucia Ferraro", "Ahmed Karimi", "Ingrid Solberg", "Marcus Bell", "Yuki Tanabe", "Olivia Grant"]

FILLERS = {
    "pct": ["3%", "4%", "6%", "8%", "11%", "12%", "15%", "18%", "22%", "27%", "35%"],
    "n": ["250", "400", "600", "900", "1,200", "1,800", "2,500", "3,000", "4,000", "6,500"],
    "amt": ["$80 million", "$150 million", "$300 million", "$450 million", "$1.2 billion", "$2 billion",
            "$3.5 billion", "€500 million", "£250 million", "€1.1 billion"],
    "q": ["first-quarter", "second-quarter", "third-quarter", "fourth-quarter"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
    "month": ["January", "February", "March", "April", "May", "June", "July", "September", "October", "November"],
    "city": ["Singapore", "Frankfurt", "Toronto", "Dublin", "Austin", "Milan", "Seoul", "Denver", "Lisbon",
             "Warsaw", "Osaka", "Melbourne", "Chicago", "Madrid", "Zurich", "Mumbai"],
}

# ---------------------------------------------------------------- training templates
TRAIN_TEMPLATES = {
    "positive": [
        "{c} shares jump {pct} after earnings beat forecasts",
        "{c} lifts annual profit outlook as orders pour in",
        "{c} posts record {q} revenue",
        "{c} stock soars on news of takeover approach",
        "Analysts upgrade {c} to buy on margin recovery",
        "{c} lands {amt} government contract",
        "{c} profit more than doubles on cost cuts",
        "{c} unveils {amt} share buyback",
        "{c} raises quarterly dividend by {pct}",
        "{c} tops sales estimates for a third straight quarter",
        "Investors cheer {c} turnaround as losses narrow",
        "{c} hits all-time high after bullish forecast",
        "{c} swings to surprise profit; shares rally",
        "{c} wins regulatory approval for its flagship drug",
        "Strong holiday demand lifts {c} sales",
        "{c} rockets higher as new chip outsells rivals",
        "Blowout results send {c} stock to a record",
        "{c} beats on earnings and revenue, raises guidance",
        "{c} margins widen to best level in a decade",
        "{c} same-store sales climb {pct}, beating expectations",
        "{c} bookings surge as travel demand rebounds",
        "{c} agrees to be acquired at a {pct} premium",
        "{c} shares leap after court throws out patent suit",
        "{c} wins dismissal of shareholder lawsuit",
        "Rating agency upgrades {c} to investment grade",
        "{c} pays down debt ahead of schedule as cash flow improves",
        "{c} subscriber growth smashes forecasts",
        "{c} order book reaches the highest in its history",
        "{c} rallies as cloud unit growth accelerates",
        "{c} hikes payout after bumper year",
        "{c} reports {pct} jump in net income",
        "Broker lifts {c} price target, sees more upside",
        "{c} earnings crush Wall Street estimates",
        "{c} secures {amt} in new funding at a higher valuation",
        "Orders for {c} electric trucks exceed expectations",
        "{c} returns to profit a year earlier than planned",
        "{c} sales rebound sharply in {city}",
        "{c} gets green light from regulators for merger",
        "Demand for new {c} phone outstrips supply",
        "{c} shares climb to two-year high",
        "{c} signs long-term supply pact with major carmaker, shares gain",
        "{c} delivers record cash flow and boosts buyback",
        "{c} reports best quarter since its listing",
        "{c} drug meets main goal in late-stage study",
        "Upbeat guidance from {c} sparks sector rally",
        "{c} expands margins despite higher costs",
        "{c} raises forecast for the second time this year",
        "{c} to add {n} jobs as new plant ramps up",
        "{c} outpaces peers with {pct} revenue growth",
        "Analysts name {c} their top pick for next year",
        "{c} posts bumper profit on strong trading",
        "Shares of {c} spike on buyout offer from {c2}",
        "{c} backlog hits record as defence spending rises",
        "{c} quarterly earnings surge {pct}",
        "{c} beats forecasts and reinstates dividend",
        "{c} bonds rally after well-received restructuring plan",
        "{c} gains market share as profit beats",
        "Cost savings help {c} smash profit targets",
        "{c} app downloads soar and advertising revenue jumps",
        "Investors pile into {c} after strong trading update",
        "{c} shares surge on upbeat trial data",
        "{c} lifts full-year sales goal after robust summer",
        "{c} wins {amt} contract to build {city} rail link",
        "{c} profit beats as shoppers trade up",
        "{c} increases dividend for the twentieth consecutive year",
        "Stellar demand drives {c} to its most profitable year",
        "{c} stock gains {pct} as sales top forecasts",
        "{c} wins multiyear deal with national carrier",
        "{c} exceeds targets and promises bigger returns to shareholders",
        "Record preorders for {c} console lift shares",
        "{c} sees strong rebound in {city} demand, upgrades outlook",
        "{c} net profit rises {pct}, well ahead of estimates",
        "{c} trounces forecasts as new products take off",
        "Shares in {c} soar after surprise profit upgrade",
        "{c} stock soars {pct} on record sales",
        "{c} cash pile grows, fuelling talk of a special dividend",
        "{c} posts blockbuster sales of its new game",
        "{c} clinches {amt} takeover of {c2} and shares rise",
        "{c} boosts annual targets on strong pricing",
        "{c} lifts payout and unveils fresh buyback",
        "{c} extends its winning streak of earnings beats",
        "{c} gains as lenders cut its borrowing costs",
        "Bumper harvest of orders sends {c} higher",
        "{c} wins approval to expand flagship plant, shares advance",
        "{c} caps a stellar quarter with record deliveries",
        "{c} stock surges as a strong quarter beats every forecast",
        "Shares of {c} take off after knockout results",
        "{c} posts blowout {q} numbers",
        "Blowout holiday sales lift {c}",
        "{c} stock soars to a record on surging demand",
        "Investors send {c} soaring after upbeat outlook",
        "{c} shares soar as profit tops forecasts",
        "Stocks rally as inflation cools faster than expected",
        "Global markets climb on strong jobs report",
        "Consumer confidence jumps to a three-year high",
        "Factory orders rise more than forecast",
        "Tech stocks lead broad market rally",
        "Economy expands at fastest pace in two years",
        "Retail sales beat forecasts, lifting store chains",
        "Home sales rebound sharply as mortgage rates ease",
        "Bank stocks rally after strong stress test results",
        "Shares soar as central bank signals rate cuts",
    ],
    "negative": [
        "{c} shares plunge after profit warning",
        "{c} slashes outlook as demand weakens",
        "{c} misses estimates; stock tumbles {pct}",
        "{c} to cut {n} jobs in restructuring",
        "Regulators fine {c} {amt} over misleading accounts",
        "{c} downgraded to sell on shrinking margins",
        "{c} swings to a {q} loss",
        "{c} suspends dividend to conserve cash",
        "{c} recalls thousands of heaters over fire risk",
        "Shareholders sue {c} over undisclosed losses",
        "{c} stock slides as chief executive quits abruptly",
        "Parts shortages hit {c} sales",
        "{c} cut to junk by rating agency",
        "{c} revenue falls short and shares sink",
        "{c} hit by cyberattack, systems offline",
        "Authorities launch investigation into {c} over bribery claims",
        "{c} under investigation for price fixing",
        "Antitrust watchdog opens inquiry into {c} acquisition",
        "{c} faces criminal probe over safety lapses",
        "Auditor quits {c} citing accounting concerns",
        "{c} delays annual report amid accounting review",
        "{c} restates three years of earnings",
        "{c} files for bankruptcy protection",
        "{c} defaults on bond payment",
        "{c} shares crash after short seller alleges fraud",
        "{c} loses patent case and faces {amt} in damages",
        "{c} warns it may breach loan covenants",
        "{c} closes {n} stores as sales slump",
        "{c} halts production after factory fire",
        "{c} scraps merger with {c2}, shares fall",
        "{c} takeover talks collapse",
        "{c} drug fails late-stage trial",
        "{c} lays off {pct} of its workforce",
        "{c} posts steep drop in quarterly profit",
        "{c} margins squeezed by rising costs",
        "{c} sales tumble {pct} in {city}",
        "{c} cuts dividend for the first time in decades",
        "{c} hit with {amt} tax bill",
        "{c} stock falls to lowest level since 2009",
        "Workers strike at {c} plants, halting output",
        "{c} loses its biggest customer",
        "{c} warns of a weaker holiday season",
        "{c} cuts forecast for the second time this year",
        "{c} subscriber numbers fall unexpectedly",
        "{c} bonds slump on liquidity fears",
        "{c} faces class action over data leak",
        "{c} finance chief departs amid accounting questions",
        "{c} writes down {amt} on failed acquisition",
        "Broker slashes {c} price target, citing weak demand",
        "{c} orders drop sharply as clients delay spending",
        "{c} to shut {city} plant, cutting {n} jobs",
        "Auditors raise going-concern doubts about {c}",
        "{c} sinks after disappointing guidance",
        "{c} loses {amt} government contract to rival",
        "{c} recalls cars over faulty airbags",
        "{c} shares tumble on weak sales update",
        "{c} fined for breaching sanctions",
        "{c} reports wider-than-expected loss",
        "Investors dump {c} after gloomy forecast",
        "Consumer boycott hurts {c} sales",
        "{c} sued by regulator over misleading advertising",
        "Competition authorities raid {c} offices",
        "{c} cash burn accelerates, raising funding fears",
        "{c} delays flagship launch again and stock drops",
        "{c} warns higher interest rates will dent earnings",
        "{c} outage leaves millions without service",
        "{c} halts shipments after contamination found",
        "{c} posts first annual loss in a decade",
        "{c} credit outlook cut to negative",
        "{c} faces {amt} penalty over emissions cheating",
        "Prosecutors charge former {c} executives with fraud",
        "Regulator probes {c} over mis-selling complaints",
        "{c} shares slump as lawsuit threatens key product",
        "{c} profit wiped out by currency losses",
        "{c} expects sales to decline next year",
        "{c} chairman ousted after boardroom row",
        "Securities watchdog opens investigation into {c} disclosures",
        "Officials launch probe into {c} billing practices",
        "Tax authorities open audit of {c} after whistleblower complaint",
        "Federal investigators examine {c} emissions data",
        "EU opens antitrust case against {c}",
        "{c} shares drop as regulator begins review of its lending",
        "Accounting irregularities uncovered at {c}",
        "Questions over {c} books send shares lower",
        "{c} under scrutiny after whistleblower alleges inflated sales",
        "{c} abandons {city} expansion after heavy losses",
        "{c} profit falls for a fifth straight quarter",
        "{c} warns on margins as demand weakens",
        "Prosecutors open fraud probe into {c}",
        "{c} discloses probe into its accounting practices",
        "Inquiry launched into {c} over accounting errors",
        "{c} receives subpoena over revenue recognition",
        "Regulators investigate {c} after profit overstated",
        "Watchdog probe into {c} deepens",
        "{c} hit by probe into accounting at its {city} unit",
        "{c} shares fall as authorities open inquiry into loan book",
        "Regulators accuse {c} of overstating profits",
        "Banking regulator orders {c} to raise capital after losses",
        "Regulators block {c} deal with {c2}",
        "Regulators start investigation into {c} over land deals in {city}",
        "Regulators ban {c} from selling its best-selling product",
        "Regulators take control of {c} after run on deposits",
        "Stocks slump as inflation data spooks investors",
        "Oil prices tumble on fears of global slowdown",
        "Factory activity shrinks for sixth straight month",
        "Unemployment rises more than expected",
        "Markets slide as recession fears grow",
        "Consumer spending falls as prices bite",
        "Housing market cools sharply as mortgage rates soar",
        "Bank shares sink on worries about bad loans",
        "Currency slumps to a record low against the dollar",
        "Retail sales drop unexpectedly in {month}",
    ],
    "neutral": [
        "{c} to report {q} results on {day}",
        "{c} names {person} chief financial officer",
        "{c} to hold annual general meeting on {month} 12",
        "{c} opens new office in {city}",
        "{c} completes previously announced bond offering",
        "{c} schedules investor day for {month}",
        "{c} declares regular quarterly dividend",
        "{c} to present at industry conference in {city}",
        "{c} files annual report with regulators",
        "{c} appoints two independent directors",
        "{c} relocates headquarters to {city}",
        "{c} shares unchanged in quiet trading",
        "{c} publishes sustainability report",
        "{c} prices {amt} of notes due 2031",
        "{c} lists shares on the {city} exchange",
        "{c} confirms date of shareholder vote",
        "{c} appoints {person} to head European operations",
        "{c} board member {person} to retire at year-end",
        "{c} announces conference call for {q} earnings",
        "{c} sets record date for dividend",
        "{c} to webcast its annual meeting",
        "{c} launches redesigned website",
        "{c} introduces updated version of its accounting software",
        "{c} unveils new logo",
        "{c} files registration statement for debt offering",
        "{c} chief executive to speak at {city} summit",
        "{c} reaffirms full-year guidance",
        "{c} maintains outlook, in line with expectations",
        "{c} results in line with forecasts",
        "{c} hires {person} to lead marketing",
        "{c} renews credit facility on similar terms",
        "{c} to move its listing to {city}",
        "{c} completes two-for-one stock split",
        "{c} announces management changes in its retail unit",
        "{c} signs lease for new {city} headquarters",
        "{c} files proxy statement ahead of annual meeting",
        "{c} names new chair of audit committee",
        "{c} to release trading update on {day}",
        "{c} shares to trade ex-dividend on {day}",
        "{c} completes sale of small {city} office building",
        "{c} extends tender offer deadline by one week",
        "{c} announces date of capital markets day",
        "{c} reports voting results from annual meeting",
        "{c} to redeem bonds at maturity",
        "{c} opens distribution centre in {city}",
        "{c} chief executive to take part in panel discussion",
        "{c} updates investor presentation",
        "{c} adds {person} to its board",
        "{c} to hold earnings call at 9 a.m. on {day}",
        "{c} changes fiscal year end to December",
        "{c} launches new range of office chairs",
        "{c} rolls out app update in {city}",
        "{c} submits quarterly filing",
        "{c} appoints new auditor after routine tender",
        "{c} moves annual meeting online",
        "{c} declines to comment on market rumours",
        "{c} publishes {month} production figures",
        "{c} to issue shares to employees under incentive plan",
        "{c} picks {city} for regional training centre",
        "{c} announces executive committee reshuffle",
        "{c} and {c2} extend existing distribution agreement",
        "{c} names {person} as new head of investor relations",
        "{c} completes merger of two subsidiaries",
        "{c} confirms board composition after annual vote",
        "{c} to publish annual report in {month}",
        "{c} releases monthly passenger statistics",
        "{c} begins search for new chief executive as planned succession nears",
        "{c} to change ticker symbol next month",
        "{c} announces results of dividend reinvestment plan",
        "{c} shares open little changed",
        "{c} updates terms of employee share scheme",
        "{c} registers new subsidiary in {city}",
        "{c} to present {q} figures at analyst meeting",
        "{c} hosts site visit for investors in {city}",
        "{c} names {person} chief technology officer",
        "{c} to open new store in {city}",
        "{c} to hold press briefing on {day}",
        "{c} publishes timetable for annual results",
        "{c} files quarterly report on schedule",
        "{c} completes annual review of executive pay policy",
        "{c} confirms attendance at {city} trade show",
        "{c} transfers share registry to new provider",
        "Regulators publish annual list of systemically important banks",
        "Securities commission names new chair",
        "{c} sets out agenda for investor meeting",
        "{c} to hold results presentation in {city}",
        "{c} appoints {person} to its remuneration committee",
        "{c} files notice of annual meeting with the exchange",
        "{c} to announce {q} sales figures in {month}",
        "{c} lists new bond on the {city} exchange",
        "{c} rebrands its consumer division",
        "{c} names {person} company spokesperson",
        "Central bank holds interest rates steady, as expected",
        "Markets closed on {day} for public holiday",
        "Treasury to auction {amt} in ten-year notes",
        "Finance ministers meet in {city} to discuss tax rules",
        "Statistics office to publish inflation figures on {day}",
        "Stock exchange extends trading hours trial",
        "Stock indexes end flat ahead of jobs data",
        "Central bank governor to speak at {city} conference",
        "Oil prices steady as traders await supply data",
        "Regulator publishes consultation on disclosure rules",
        "Bond yields little changed in light trading",
    ],
}

# ---------------------------------------------------------------- test templates (none shared with training)
TEST_TEMPLATES = {
    "positive": [
        "{c} quarterly profit handily beats consensus",
        "{c} boosts shareholder payout by {pct}",
        "{c} jumps after clinching {amt} defence order",
        "{c} sales growth accelerates for fourth quarter running",
        "Traders snap up {c} shares after strong update",
        "{c} upgraded to outperform by major broker",
        "{c} earnings top forecasts as demand stays strong",
        "{c} approves new {amt} repurchase programme",
        "{c} secures approval for new cancer therapy",
        "{c} forecasts faster growth, shares hit record",
        "{c} revenue climbs {pct} on robust demand in {city}",
        "{c} narrows loss sharply, beating expectations",
        "Surging orders push {c} to record profit",
        "{c} wins court battle over key patents",
        "{c} stock surges on buyout offer",
        "{c} raises guidance after strong start to year",
        "{c} profit soars on higher prices",
        "{c} reports better-than-expected results",
        "{c} shares rally as new product sells out",
        "Rating agency lifts {c} outlook to positive",
        "{c} posts its strongest sales in five years",
        "{c} gains after landmark contract with national rail operator",
        "{c} returns to growth and shares jump",
        "{c} profit tops estimates for tenth straight quarter",
        "{c} reinstates dividend as recovery takes hold",
        "{c} beats targets and promises more cash for investors",
        "{c} to hire {n} as business booms",
        "{c} climbs as cost savings beat targets",
        "{c} stock notches biggest gain in years",
        "{c} drug succeeds in pivotal trial",
        "Strong demand lets {c} raise prices as margins improve",
        "{c} income jumps as lending grows",
        "{c} wins major order from European airline",
        "{c} shares soar on stellar sales figures",
        "{c} unveils bigger-than-expected buyback",
        "{c} free cash flow beats forecasts, dividend raised",
        "Brokers turn bullish on {c} after strong quarter",
        "{c} recovers sharply as demand returns",
        "{c} settles lawsuit, removing overhang; shares rise",
        "{c} smashes subscriber targets",
        "{c} order intake jumps {pct}",
        "{c} and peers rally as commodity prices recover",
        "Wall Street closes at record high on upbeat earnings",
        "Inflation eases, boosting hopes for rate cuts",
        "Jobless claims fall to lowest level in months",
        "Exports surge, lifting economic growth",
        "Shares rise worldwide as trade tensions ease",
        "Manufacturing rebounds more strongly than expected",
        "Consumer spending picks up, lifting retailers",
        "Upbeat earnings season powers stocks higher",
    ],
    "negative": [
        "{c} tumbles after cutting annual forecast",
        "{c} plans to eliminate {n} positions",
        "Watchdog investigates {c} over suspected market abuse",
        "{c} slumps to loss as costs soar",
        "{c} recalls baby formula over contamination fears",
        "{c} sued by investors over misleading statements",
        "{c} shares sink after earnings miss",
        "{c} warns of lower profit as orders dry up",
        "{c} downgraded on concerns over debt",
        "{c} seeks creditor protection",
        "{c} chief resigns amid scandal",
        "{c} fined {amt} for breaking competition rules",
        "{c} halts dividend as losses mount",
        "{c} sales disappoint and stock drops {pct}",
        "{c} misses payments on loans",
        "{c} plant explosion halts output",
        "{c} profit collapses amid price war",
        "{c} loses appeal in patent dispute",
        "Prosecutors widen {c} inquiry and seek documents",
        "{c} hit by ransomware attack",
        "{c} withdraws guidance, citing uncertainty",
        "Buyers shun {c} after poor results",
        "{c} shuts stores and cuts staff",
        "{c} abandons acquisition of {c2}",
        "{c} trial results disappoint, shares crater",
        "{c} warns of steep fall in earnings",
        "{c} cut to underweight by analysts",
        "{c} faces lawsuit over faulty products",
        "{c} books heavy impairment charge",
        "{c} delays results and shares are suspended",
        "{c} struggles as demand slumps in {city}",
        "{c} credit rating slashed",
        "Short seller accuses {c} of hiding losses",
        "{c} shares slide to record low",
        "Strike at {c} disrupts deliveries",
        "{c} loses licence in key market",
        "{c} trims forecast amid weak consumer demand",
        "{c} posts bigger loss than expected",
        "Authorities raid {c} in tax evasion inquiry",
        "{c} faces mounting losses on failed project",
        "Stocks tumble worldwide on growth fears",
        "Inflation jumps more than forecast, hitting bonds",
        "Economy contracts unexpectedly",
        "Crude slides as inventories swell",
        "Layoffs spread across tech sector",
        "Housing starts plunge to lowest in years",
        "Bank failures rattle investors",
        "Exports fall for third month running",
        "Consumer confidence sinks to record low",
        "Markets sell off as bond yields spike",
    ],
    "neutral": [
        "{c} will announce {q} earnings on {day}",
        "{c} appoints {person} as chief operating officer",
        "{c} annual shareholder meeting set for {month}",
        "{c} opens regional hub in {city}",
        "{c} refinances debt on existing terms",
        "{c} to host investor conference call",
        "{c} declares quarterly cash dividend of 20 cents",
        "{c} executives to attend {city} investor forum",
        "{c} submits annual filing to securities regulator",
        "{c} elects new board chair",
        "{c} moves head office to {city}",
        "{c} shares flat in early trade",
        "{c} publishes annual corporate responsibility report",
        "{c} issues {amt} of senior notes",
        "{c} begins trading on {city} stock exchange",
        "{c} sets date for extraordinary general meeting",
        "{c} names {person} head of Asia business",
        "{c} director to step down after ten years on board",
        "{c} confirms timing of earnings release",
        "{c} announces record date for distribution",
        "{c} keeps full-year forecast unchanged",
        "{c} results match analyst expectations",
        "{c} hires new general counsel",
        "{c} to reorganise into three divisions",
        "{c} releases updated version of its mobile app",
        "{c} introduces new packaging design",
        "{c} announces leadership transition plan",
        "{c} to publish half-year report on {day}",
        "{c} shares go ex-dividend",
        "{c} completes planned office relocation",
        "{c} holds capital markets day in {city}",
        "{c} publishes voting results of annual meeting",
        "{c} to repay notes at maturity",
        "{c} opens training centre in {city}",
        "{c} appoints new company secretary",
        "{c} adjusts its reporting segments",
        "{c} launches new line of kitchen appliances",
        "{c} to exhibit at trade fair in {city}",
        "{c} announces changes to board committees",
        "{c} renews agreement with {c2}",
        "Central bank keeps rates on hold",
        "Stock markets closed for national holiday",
        "Government to sell {amt} of bonds next week",
        "Trade ministers gather in {city} for annual talks",
        "Inflation figures due on {day}",
        "Shares end mixed in thin trading",
        "Oil little changed ahead of producer meeting",
        "Exchange operator announces new listing rules",
        "Securities regulator sets out reporting timetable",
        "Finance minister to present budget on {day}",
    ],
}

# What `make demo` predicts: clear cases of each class, on companies neither set contains.
NEW_HEADLINES = [
    "Globex shares soar after blowout quarter",
    "Initech warns of weaker sales next year",
    "Hooli to hold its annual meeting in May",
    "Regulators open probe into Northwind accounting",
    "Acme Corp lifts dividend for tenth year",
    "Tyrell Motors recalls 40,000 cars over brake defect",
    "Wayne Enterprises wins $2 billion defence contract",
    "Umbrella Bank names new chief risk officer",
    "Soylent Foods to cut 1,500 jobs as sales slump",
]

TRAIN_COPIES = 2  # each training template with a company slot is written with this many different companies


def fill(template: str, company: str, companies: list[str], people: list[str], rng: random.Random) -> str:
    other = rng.choice([c for c in companies if c != company])
    values = {key: rng.choice(options) for key, options in FILLERS.items()}
    return template.format(c=company, c2=other, person=rng.choice(people), **values)


def compose(templates: dict[str, list[str]], companies: list[str], people: list[str], copies: int,
            rng: random.Random) -> list[tuple[str, str]]:
    """Each template `copies` times (once if it has no slot to vary), every copy a distinct text.

    Companies are dealt per class from a reshuffled deck, so every company appears about equally
    often in each class and its name carries no hint of the label.
    """
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for label in LABELS:
        deck: list[str] = []
        for template in templates[label]:
            wanted = copies if "{" in template else 1
            made = 0
            while made < wanted:
                if not deck:
                    deck = rng.sample(companies, len(companies))
                text = fill(template, deck.pop(), companies, people, rng)
                if text not in seen:
                    seen.add(text)
                    rows.append((text, label))
                    made += 1
    rng.shuffle(rows)
    return rows


def names_in(text: str, companies: list[str]) -> set[str]:
    return {c for c in companies if re.search(rf"\b{re.escape(c.split()[0])}\b", text)}


def check(train: list[tuple[str, str]], test: list[tuple[str, str]]) -> None:
    """The test set shares no template, text or company with training; the new headlines no company with either."""
    train_templates = {t for label in LABELS for t in TRAIN_TEMPLATES[label]}
    test_templates = {t for label in LABELS for t in TEST_TEMPLATES[label]}
    assert not train_templates & test_templates, train_templates & test_templates
    train_texts, test_texts = {t for t, _ in train}, {t for t, _ in test}
    assert len(train_texts) == len(train) and len(test_texts) == len(test), "duplicate texts"
    assert not train_texts & test_texts, train_texts & test_texts
    everyone = TRAIN_COMPANIES + TEST_COMPANIES + NEW_COMPANIES
    firsts = [c.split()[0] for c in everyone]
    assert len(set(firsts)) == len(firsts), "company names must differ in their first word"
    for text, _ in train:
        assert not names_in(text, TEST_COMPANIES + NEW_COMPANIES), text
    for text, _ in test:
        assert not names_in(text, TRAIN_COMPANIES + NEW_COMPANIES), text
    for text in NEW_HEADLINES:
        assert not names_in(text, TRAIN_COMPANIES + TEST_COMPANIES), text
        assert text not in train_texts | test_texts, text


def write(rows: list[tuple[str, str]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    counts = ", ".join(f"{label} {sum(1 for _, y in rows if y == label)}" for label in LABELS)
    print(f"wrote {len(rows)} rows to {out} ({counts})")


def main(folder: Path = DEMO_DIR) -> None:
    rng = random.Random(7)
    train = compose(TRAIN_TEMPLATES, TRAIN_COMPANIES, TRAIN_PEOPLE, TRAIN_COPIES, rng)
    test = compose(TEST_TEMPLATES, TEST_COMPANIES, TEST_PEOPLE, 1, rng)
    check(train, test)
    write(train, folder / "financial_headlines.csv")
    write(test, folder / "financial_headlines_test.csv")
    (folder / "new_headlines.txt").write_text("\n".join(NEW_HEADLINES) + "\n", encoding="utf-8")
    print(f"wrote {len(NEW_HEADLINES)} headlines to {folder / 'new_headlines.txt'}")


if __name__ == "__main__":
    main()
