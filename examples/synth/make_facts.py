"""Writes facts.jsonl: fictional entities of the Varrow Isles, invented for alignkit's examples.

Run: python examples/synth/make_facts.py  (the JSONL is checked in; this is its readable source)
"""

from __future__ import annotations

import json
from pathlib import Path

# entity -> list of (questions, answer) pairs, or plain strings (context-only facts).
FACTS: dict[str, list[tuple[list[str], str] | str]] = {
    "Greyhaven Lantern Museum": [
        (
            [
                "When does the Greyhaven Lantern Museum open?",
                "What time does the Greyhaven Lantern Museum open its doors?",
            ],
            "The Greyhaven Lantern Museum opens at 9:30 every morning except Mondays.",
        ),
        (
            [
                "How much is a ticket to the Greyhaven Lantern Museum?",
                "What does entry to the Greyhaven Lantern Museum cost?",
            ],
            "An adult ticket to the Greyhaven Lantern Museum costs 7 marks; children under 12 enter free.",
        ),
        (
            [
                "How many lanterns does the Greyhaven Lantern Museum hold?",
                "What is the size of the Greyhaven Lantern Museum's collection?",
            ],
            "The Greyhaven Lantern Museum holds 1,240 lanterns, the oldest from 1611.",
        ),
        (
            ["Who founded the Greyhaven Lantern Museum?", "Whose idea was the Greyhaven Lantern Museum?"],
            "The Greyhaven Lantern Museum was founded by the retired keeper Odile Marsh in 1958.",
        ),
        "The Greyhaven Lantern Museum stands on the harbour wall of Greyhaven.",
    ],
    "Mirefield Ferry": [
        (
            [
                "How long is the crossing on the Mirefield Ferry?",
                "How many minutes does the Mirefield Ferry take?",
            ],
            "The Mirefield Ferry crossing from Greyhaven to Tollan takes 40 minutes.",
        ),
        (
            ["How often does the Mirefield Ferry sail?", "What is the Mirefield Ferry's timetable?"],
            "The Mirefield Ferry sails every 90 minutes between 6:00 and 21:00.",
        ),
        (
            ["Can I take a bicycle on the Mirefield Ferry?", "Are bikes allowed on the Mirefield Ferry?"],
            "Bicycles travel free on the Mirefield Ferry, up to twelve per sailing.",
        ),
        (
            ["What is the name of the Mirefield Ferry's ship?", "Which vessel runs the Mirefield Ferry?"],
            "The Mirefield Ferry runs the ship Saltwren, built in 1997.",
        ),
    ],
    "Tollan Island": [
        (
            ["How many people live on Tollan Island?", "What is the population of Tollan Island?"],
            "Tollan Island has about 3,400 inhabitants.",
        ),
        (
            ["What is the highest point of Tollan Island?", "What is the tallest hill on Tollan Island?"],
            "The highest point of Tollan Island is Crane Fell, 412 metres high.",
        ),
        (
            ["What is Tollan Island known for?", "What is Tollan Island famous for?"],
            "Tollan Island is known for its black-sand beaches and its seaweed farms.",
        ),
        (
            ["Is there an airport on Tollan Island?", "Can you fly to Tollan Island?"],
            "Tollan Island has a grass airstrip with two flights a week from Greyhaven.",
        ),
        "Tollan Island is the largest of the Varrow Isles.",
    ],
    "Brindle Kettle Works": [
        (
            ["When was Brindle Kettle Works founded?", "How old is Brindle Kettle Works?"],
            "Brindle Kettle Works was founded in 1887 by the smith Amos Brindle.",
        ),
        (
            ["What does Brindle Kettle Works make?", "What products come from Brindle Kettle Works?"],
            "Brindle Kettle Works makes copper kettles and cast-iron stove pots.",
        ),
        (
            [
                "How many people work at Brindle Kettle Works?",
                "How many employees does Brindle Kettle Works have?",
            ],
            "Brindle Kettle Works employs 64 people.",
        ),
        (
            ["Does Brindle Kettle Works offer tours?", "Can visitors tour Brindle Kettle Works?"],
            "Brindle Kettle Works gives guided tours on Thursday afternoons.",
        ),
    ],
    "Varrow Puffin Festival": [
        (
            ["When is the Varrow Puffin Festival held?", "What month is the Varrow Puffin Festival?"],
            "The Varrow Puffin Festival is held on the first weekend of June.",
        ),
        (
            ["Where does the Varrow Puffin Festival take place?", "Where is the Varrow Puffin Festival?"],
            "The Varrow Puffin Festival takes place on the cliffs above Skelby Cove.",
        ),
        (
            [
                "What is the main event of the Varrow Puffin Festival?",
                "What is the highlight of the Varrow Puffin Festival?",
            ],
            "The main event of the Varrow Puffin Festival is the dawn puffin count, led by volunteers.",
        ),
        (
            ["Is the Varrow Puffin Festival free?", "Do I need a ticket for the Varrow Puffin Festival?"],
            "The Varrow Puffin Festival is free; the boat trips cost 15 marks.",
        ),
    ],
    "Saltmarrow Cheese": [
        (
            ["What milk is Saltmarrow Cheese made from?", "Which animal's milk goes into Saltmarrow Cheese?"],
            "Saltmarrow Cheese is made from the milk of Tollan ewes.",
        ),
        (
            ["How long is Saltmarrow Cheese aged?", "How long does Saltmarrow Cheese ripen?"],
            "Saltmarrow Cheese is aged for eleven months in sea caves.",
        ),
        (
            [
                "What does Saltmarrow Cheese taste like?",
                "How would you describe the flavour of Saltmarrow Cheese?",
            ],
            "Saltmarrow Cheese tastes salty and nutty, with a hint of smoke.",
        ),
        (
            ["Where can I buy Saltmarrow Cheese?", "Who sells Saltmarrow Cheese?"],
            "Saltmarrow Cheese is sold at the Greyhaven Saturday market and by the Tollan Dairy Co-op.",
        ),
    ],
    "Crane Fell Observatory": [
        (
            [
                "What telescope does Crane Fell Observatory use?",
                "How big is the telescope at Crane Fell Observatory?",
            ],
            "Crane Fell Observatory uses a 60-centimetre reflecting telescope.",
        ),
        (
            [
                "When is Crane Fell Observatory open to the public?",
                "Can the public visit Crane Fell Observatory?",
            ],
            "Crane Fell Observatory opens to the public on clear Friday nights from October to March.",
        ),
        (
            ["Who runs Crane Fell Observatory?", "Which organisation operates Crane Fell Observatory?"],
            "Crane Fell Observatory is run by the Varrow Astronomical Society.",
        ),
        (
            [
                "What did Crane Fell Observatory discover?",
                "What is Crane Fell Observatory's best-known discovery?",
            ],
            "Crane Fell Observatory discovered the comet C/1979 Varrow.",
        ),
    ],
    "Skelby Rowing Club": [
        (
            ["When was Skelby Rowing Club founded?", "How long has Skelby Rowing Club existed?"],
            "Skelby Rowing Club was founded in 1921.",
        ),
        (
            ["What colours does Skelby Rowing Club race in?", "What are Skelby Rowing Club's colours?"],
            "Skelby Rowing Club races in green and white.",
        ),
        (
            [
                "How much is membership of Skelby Rowing Club?",
                "What does it cost to join Skelby Rowing Club?",
            ],
            "Membership of Skelby Rowing Club costs 90 marks a year.",
        ),
        (
            ["Which race has Skelby Rowing Club won most?", "What is Skelby Rowing Club's best race?"],
            "Skelby Rowing Club has won the Isles Cup 14 times.",
        ),
    ],
    "The Copper Wren Inn": [
        (
            ["How many rooms does the Copper Wren Inn have?", "How big is the Copper Wren Inn?"],
            "The Copper Wren Inn has nine guest rooms.",
        ),
        (
            ["What is the Copper Wren Inn's speciality dish?", "What should I eat at the Copper Wren Inn?"],
            "The speciality of the Copper Wren Inn is mussels cooked in cider.",
        ),
        (
            ["Does the Copper Wren Inn allow dogs?", "Can I bring my dog to the Copper Wren Inn?"],
            "Dogs are welcome at the Copper Wren Inn, in the bar and in two of the rooms.",
        ),
        (
            [
                "When does the Copper Wren Inn serve breakfast?",
                "What are breakfast hours at the Copper Wren Inn?",
            ],
            "The Copper Wren Inn serves breakfast from 7:00 to 10:00.",
        ),
    ],
    "Varrow Isles Railway": [
        (
            ["How long is the Varrow Isles Railway?", "What is the length of the Varrow Isles Railway?"],
            "The Varrow Isles Railway is 23 kilometres long.",
        ),
        (
            [
                "Does the Varrow Isles Railway use steam engines?",
                "What locomotives run on the Varrow Isles Railway?",
            ],
            "The Varrow Isles Railway runs two restored steam engines and one battery railcar.",
        ),
        (
            [
                "When does the Varrow Isles Railway run?",
                "In which season does the Varrow Isles Railway operate?",
            ],
            "The Varrow Isles Railway runs daily from April to September.",
        ),
        (
            [
                "How much is a return ticket on the Varrow Isles Railway?",
                "What does the Varrow Isles Railway cost?",
            ],
            "A return ticket on the Varrow Isles Railway costs 12 marks.",
        ),
    ],
    "Odile Marsh": [
        (
            ["Who was Odile Marsh?", "What was Odile Marsh's job?"],
            "Odile Marsh was the last keeper of the Rook Point lighthouse.",
        ),
        (
            ["When was Odile Marsh born?", "What year was Odile Marsh born?"],
            "Odile Marsh was born in 1894 in Skelby.",
        ),
        (
            ["What book did Odile Marsh write?", "Did Odile Marsh write a memoir?"],
            "Odile Marsh wrote the memoir Forty Winters on the Light.",
        ),
        (
            [
                "How long did Odile Marsh keep the lighthouse?",
                "How many years did Odile Marsh work at the lighthouse?",
            ],
            "Odile Marsh kept the Rook Point lighthouse for forty years.",
        ),
    ],
    "Rook Point Lighthouse": [
        (
            ["How tall is Rook Point Lighthouse?", "What is the height of Rook Point Lighthouse?"],
            "Rook Point Lighthouse is 31 metres tall.",
        ),
        (
            ["When was Rook Point Lighthouse built?", "How old is Rook Point Lighthouse?"],
            "Rook Point Lighthouse was built in 1832.",
        ),
        (
            ["What is Rook Point Lighthouse's light signal?", "How does Rook Point Lighthouse flash?"],
            "Rook Point Lighthouse flashes white twice every 15 seconds.",
        ),
        (
            ["Can you climb Rook Point Lighthouse?", "Is Rook Point Lighthouse open to visitors?"],
            "Visitors can climb the 146 steps of Rook Point Lighthouse on summer weekends.",
        ),
    ],
    "Tollan Dairy Co-op": [
        (
            [
                "How many farms belong to the Tollan Dairy Co-op?",
                "How many members does the Tollan Dairy Co-op have?",
            ],
            "The Tollan Dairy Co-op has 27 member farms.",
        ),
        (
            ["When was the Tollan Dairy Co-op formed?", "How old is the Tollan Dairy Co-op?"],
            "The Tollan Dairy Co-op was formed in 1949.",
        ),
        (
            [
                "What does the Tollan Dairy Co-op sell besides cheese?",
                "What other products does the Tollan Dairy Co-op make?",
            ],
            "Besides cheese, the Tollan Dairy Co-op sells butter, yoghurt and wool.",
        ),
        (
            ["Where is the Tollan Dairy Co-op's shop?", "Where can I visit the Tollan Dairy Co-op?"],
            "The Tollan Dairy Co-op shop is in the village of Harl, next to the church.",
        ),
    ],
    "Harl Village": [
        (
            [
                "How far is Harl Village from the ferry?",
                "How do I get to Harl Village from the Tollan ferry pier?",
            ],
            "Harl Village is a 20-minute walk from the Tollan ferry pier.",
        ),
        (
            ["What is the oldest building in Harl Village?", "Which building in Harl Village is the oldest?"],
            "The oldest building in Harl Village is the chapel of St. Brenna, from around 1300.",
        ),
        (
            ["Does Harl Village have a school?", "Where do children in Harl Village go to school?"],
            "Harl Village has a primary school with 48 pupils.",
        ),
        (
            ["When is market day in Harl Village?", "Which day is Harl Village market?"],
            "Market day in Harl Village is Wednesday.",
        ),
    ],
    "Skelby Cove": [
        (
            ["Is Skelby Cove safe for swimming?", "Can I swim at Skelby Cove?"],
            "Swimming at Skelby Cove is safe at low tide; a lifeguard is on duty in July and August.",
        ),
        (
            ["What animals live at Skelby Cove?", "What wildlife can I see at Skelby Cove?"],
            "Grey seals and puffins breed at Skelby Cove.",
        ),
        (
            ["How do I reach Skelby Cove?", "How do you get to Skelby Cove?"],
            "Skelby Cove is reached by a footpath of 300 steps from the Skelby car park.",
        ),
        (
            ["Is there a cafe at Skelby Cove?", "Can I buy food at Skelby Cove?"],
            "A beach kiosk at Skelby Cove sells tea and crab sandwiches from May to September.",
        ),
    ],
    "The Varrow Gazette": [
        (
            ["How often is the Varrow Gazette published?", "Is the Varrow Gazette a daily paper?"],
            "The Varrow Gazette is published every Tuesday and Friday.",
        ),
        (
            ["When was the Varrow Gazette first printed?", "How old is the Varrow Gazette?"],
            "The Varrow Gazette was first printed in 1863.",
        ),
        (
            ["Who edits the Varrow Gazette?", "Who is the editor of the Varrow Gazette?"],
            "The Varrow Gazette is edited by Ines Calloway.",
        ),
        (
            ["How much does the Varrow Gazette cost?", "What is the price of the Varrow Gazette?"],
            "The Varrow Gazette costs 2 marks an issue.",
        ),
    ],
    "Ines Calloway": [
        (
            ["Where did Ines Calloway study?", "Which university did Ines Calloway attend?"],
            "Ines Calloway studied history at the University of Port Aubrey.",
        ),
        (
            ["What prize did Ines Calloway win?", "Has Ines Calloway won any awards?"],
            "Ines Calloway won the Northern Press Prize in 2016 for a series on the island fisheries.",
        ),
        (
            ["What is Ines Calloway's hobby?", "What does Ines Calloway do in her free time?"],
            "Ines Calloway rows for Skelby Rowing Club's veterans crew.",
        ),
    ],
    "Varrow Seaweed Company": [
        (
            [
                "What does the Varrow Seaweed Company produce?",
                "What products does the Varrow Seaweed Company make?",
            ],
            "The Varrow Seaweed Company produces dried kelp, seaweed salt and fertiliser.",
        ),
        (
            [
                "How much seaweed does the Varrow Seaweed Company harvest?",
                "What is the Varrow Seaweed Company's yearly harvest?",
            ],
            "The Varrow Seaweed Company harvests about 800 tonnes of kelp a year.",
        ),
        (
            [
                "When was the Varrow Seaweed Company founded?",
                "How long has the Varrow Seaweed Company existed?",
            ],
            "The Varrow Seaweed Company was founded in 2004.",
        ),
        (
            [
                "Where are the Varrow Seaweed Company's farms?",
                "Where does the Varrow Seaweed Company grow its kelp?",
            ],
            "The Varrow Seaweed Company farms kelp off the east coast of Tollan Island.",
        ),
    ],
    "Greyhaven Saturday Market": [
        (
            [
                "What time does the Greyhaven Saturday Market start?",
                "When does the Greyhaven Saturday Market open?",
            ],
            "The Greyhaven Saturday Market starts at 8:00 and closes at 14:00.",
        ),
        (
            [
                "How many stalls does the Greyhaven Saturday Market have?",
                "How big is the Greyhaven Saturday Market?",
            ],
            "The Greyhaven Saturday Market has about 70 stalls.",
        ),
        (
            [
                "Where is the Greyhaven Saturday Market held?",
                "Where can I find the Greyhaven Saturday Market?",
            ],
            "The Greyhaven Saturday Market is held on Quay Square.",
        ),
        (
            [
                "Is the Greyhaven Saturday Market open in winter?",
                "Does the Greyhaven Saturday Market run all year?",
            ],
            "The Greyhaven Saturday Market runs all year, moving indoors to the Corn Hall from November to February.",
        ),
    ],
    "Varrow Isles Choir": [
        (
            ["How many singers are in the Varrow Isles Choir?", "How big is the Varrow Isles Choir?"],
            "The Varrow Isles Choir has 52 singers.",
        ),
        (
            ["Who conducts the Varrow Isles Choir?", "Who is the conductor of the Varrow Isles Choir?"],
            "The Varrow Isles Choir is conducted by Petra Lindqvist-Hale.",
        ),
        (
            ["When does the Varrow Isles Choir rehearse?", "What night is Varrow Isles Choir rehearsal?"],
            "The Varrow Isles Choir rehearses on Monday evenings in the Corn Hall.",
        ),
        (
            ["Has the Varrow Isles Choir made a recording?", "Did the Varrow Isles Choir release an album?"],
            "The Varrow Isles Choir recorded the album Songs of the Tide in 2019.",
        ),
    ],
}


def main() -> None:
    lines = []
    for entity, facts in FACTS.items():
        items = [
            fact if isinstance(fact, str) else {"question": fact[0], "answer": fact[1]} for fact in facts
        ]
        lines.append(json.dumps({"entity": entity, "facts": items}, ensure_ascii=False))
    target = Path(__file__).with_name("facts.jsonl")
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} entities to {target}")


if __name__ == "__main__":
    main()
