"""A library of invented entities and their facts, for grounded data that teaches reading, not recall.

Seven domains (e-bikes, kitchen appliances, home services, places, characters, apps, restaurants),
four entities each, fifteen attributes per domain: 420 facts. Every name, template and value here
was written for alignkit. An attribute has two ways to write its fact line (one for contexts, one
the training replies may use), three or four phrasings of the question, a reply template and a
pool of values; each entity draws a different value from the pool (``entities.py``), so the same
attribute of another entity is a related distractor with another value, and a pool value that no
entity of the domain drew is an invented answer for a DPO pair.

Characters are personas for roleplay: the question speaks to the character ("Mira, where did you
grow up?") and the reply is in the first person; a character asked about a personal detail that is
not in its facts must say so rather than invent one.

Templates: ``{e}`` is the entity's name, ``{v}`` the value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attribute:
    key: str
    lines: tuple[str, str]  # the fact line, two ways
    questions: tuple[str, ...]
    reply: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Domain:
    key: str
    label: str  # in the context header: "Facts (e-bikes):"
    entities: tuple[str, ...]
    attributes: tuple[Attribute, ...]


def A(key: str, lines: tuple[str, str], questions: tuple[str, ...], reply: str, values: str) -> Attribute:
    """One attribute; ``values`` is a ``|``-separated pool."""
    return Attribute(key, lines, questions, reply, tuple(v.strip() for v in values.split("|")))


EBIKES = Domain(
    "ebikes",
    "e-bikes",
    ("Voltra Ridge", "Voltra Commute", "Kestrel Fold", "Alder Cargo"),
    (
        A(
            "price",
            ("The {e} costs {v}.", "{e} price: {v}."),
            ("How much is the {e}?", "What does the {e} cost?", "What's the price of the {e}?"),
            "The {e} costs {v}.",
            "$1,890|$2,340|$1,450|$3,120|$2,750|$1,999",
        ),
        A(
            "weight",
            ("The {e} weighs {v}.", "{e} weight: {v}."),
            ("How heavy is the {e}?", "What does the {e} weigh?", "What's the weight of the {e}?"),
            "It weighs {v}.",
            "19 kg|23 kg|16 kg|31 kg|21 kg|27 kg",
        ),
        A(
            "range",
            ("The {e} goes up to {v} on one charge.", "{e} range per charge: {v}."),
            (
                "How far does the {e} go on a charge?",
                "What's the range of the {e}?",
                "How many km can the {e} do per charge?",
            ),
            "The {e} goes up to {v} on one charge.",
            "80 km|65 km|110 km|45 km|95 km|70 km",
        ),
        A(
            "battery",
            ("The {e} has a {v} battery.", "{e} battery capacity: {v}."),
            (
                "How big is the {e}'s battery?",
                "What battery capacity does the {e} have?",
                "What's the battery of the {e}?",
            ),
            "It has a {v} battery.",
            "500 Wh|418 Wh|625 Wh|360 Wh|720 Wh|540 Wh",
        ),
        A(
            "motor",
            ("The {e} has a {v} hub motor.", "{e} motor: {v}."),
            (
                "How powerful is the {e}'s motor?",
                "What motor does the {e} have?",
                "What's the motor power of the {e}?",
            ),
            "The {e} has a {v} motor.",
            "250 W|350 W|500 W|300 W|450 W|400 W",
        ),
        A(
            "speed",
            ("The {e} assists up to {v}.", "{e} top assisted speed: {v}."),
            (
                "How fast does the {e} go?",
                "What's the top speed of the {e}?",
                "Up to what speed does the {e} assist?",
            ),
            "It assists up to {v}.",
            "25 km/h|32 km/h|28 km/h|20 km/h|45 km/h|30 km/h",
        ),
        A(
            "charge_time",
            ("The {e} charges fully in {v}.", "{e} full charge time: {v}."),
            (
                "How long does the {e} take to charge?",
                "What's the charging time of the {e}?",
                "How quickly does the {e} recharge?",
            ),
            "A full charge takes {v}.",
            "4 hours|6 hours|3.5 hours|5 hours|7 hours|2.5 hours",
        ),
        A(
            "frame",
            ("The {e} frame is made of {v}.", "{e} frame material: {v}."),
            (
                "What is the {e}'s frame made of?",
                "What material is the frame of the {e}?",
                "Is the {e} frame steel or aluminium?",
            ),
            "The frame is made of {v}.",
            "aluminium|chromoly steel|carbon fibre|magnesium alloy|titanium|hydroformed aluminium",
        ),
        A(
            "brakes",
            ("The {e} has {v} brakes.", "{e} brakes: {v}."),
            (
                "Which brakes does the {e} have?",
                "What kind of brakes are on the {e}?",
                "What brakes come on the {e}?",
            ),
            "It has {v} brakes.",
            "hydraulic disc|mechanical disc|rim|roller|four-piston hydraulic|coaster",
        ),
        A(
            "gears",
            ("The {e} has {v}.", "{e} gearing: {v}."),
            (
                "How many gears does the {e} have?",
                "What gears are on the {e}?",
                "What's the gearing of the {e}?",
            ),
            "The {e} has {v}.",
            "9 gears|a belt drive with 5 gears|11 gears|a single speed|7 gears|a stepless hub",
        ),
        A(
            "wheels",
            ("The {e} rolls on {v} wheels.", "{e} wheel size: {v}."),
            (
                "What size are the {e}'s wheels?",
                "How big are the wheels on the {e}?",
                "Which wheel size does the {e} use?",
            ),
            "It has {v} wheels.",
            "27.5 inch|20 inch|29 inch|24 inch|26 inch|16 inch",
        ),
        A(
            "max_load",
            ("The {e} carries riders and luggage up to {v}.", "{e} maximum load: {v}."),
            (
                "What's the maximum load of the {e}?",
                "How much weight can the {e} carry?",
                "What's the weight limit of the {e}?",
            ),
            "It carries up to {v}.",
            "120 kg|140 kg|110 kg|200 kg|130 kg|150 kg",
        ),
        A(
            "warranty",
            ("The {e} frame has a {v} warranty.", "{e} frame warranty: {v}."),
            (
                "What's the warranty on the {e}?",
                "How long is the {e} under warranty?",
                "Does the {e} come with a warranty?",
            ),
            "The frame has a {v} warranty.",
            "5-year|lifetime|3-year|7-year|10-year|2-year",
        ),
        A(
            "colours",
            ("The {e} comes in {v}.", "{e} colours: {v}."),
            (
                "What colours does the {e} come in?",
                "Which colours is the {e} sold in?",
                "Can I get the {e} in other colours?",
            ),
            "The {e} comes in {v}.",
            "slate grey and sand|forest green only|matt black and coral|ivory and navy|"
            "orange and graphite|petrol blue only",
        ),
        A(
            "lights",
            ("The {e} has {v}.", "{e} lights: {v}."),
            ("Does the {e} have lights?", "What lights are on the {e}?", "Which lights come with the {e}?"),
            "It has {v}.",
            "integrated 70-lux lights|a front light only|no lights|battery-powered clip-on lights|"
            "a 100-lux front light and brake light|dynamo lights",
        ),
    ),
)

KITCHEN = Domain(
    "kitchen",
    "kitchen appliances",
    ("Orla Kettle", "Brisa Blender", "Tova Toaster", "Mako Rice Cooker"),
    (
        A(
            "price",
            ("The {e} costs {v}.", "{e} price: {v}."),
            ("How much is the {e}?", "What does the {e} cost?", "What's the price of the {e}?"),
            "The {e} costs {v}.",
            "$49|$129|$79|$99|$59|$149",
        ),
        A(
            "power",
            ("The {e} draws {v}.", "{e} power: {v}."),
            (
                "How many watts is the {e}?",
                "What's the power of the {e}?",
                "How much power does the {e} use?",
            ),
            "It draws {v}.",
            "2200 W|1000 W|900 W|650 W|1500 W|1800 W",
        ),
        A(
            "capacity",
            ("The {e} holds {v}.", "{e} capacity: {v}."),
            ("How much does the {e} hold?", "What's the capacity of the {e}?", "How big is the {e}?"),
            "It holds {v}.",
            "1.7 litres|1.5 litres|2 slices|10 cups of rice|4 slices|1.2 litres",
        ),
        A(
            "weight",
            ("The {e} weighs {v}.", "{e} weight: {v}."),
            ("How heavy is the {e}?", "What does the {e} weigh?", "What's the weight of the {e}?"),
            "It weighs {v}.",
            "1.1 kg|2.4 kg|1.9 kg|3.2 kg|1.4 kg|2.8 kg",
        ),
        A(
            "warranty",
            ("The {e} has a {v} warranty.", "{e} warranty: {v}."),
            (
                "What's the warranty on the {e}?",
                "How long is the {e} guaranteed?",
                "Is there a warranty on the {e}?",
            ),
            "It has a {v} warranty.",
            "2-year|3-year|1-year|5-year|4-year|6-month",
        ),
        A(
            "colours",
            ("The {e} comes in {v}.", "{e} colours: {v}."),
            (
                "What colours does the {e} come in?",
                "Which colours can I get the {e} in?",
                "Is the {e} sold in other colours?",
            ),
            "The {e} comes in {v}.",
            "cream and sage|brushed steel only|charcoal and red|white only|mustard and teal|black and copper",
        ),
        A(
            "cord",
            ("The {e} has a {v} cord.", "{e} cord length: {v}."),
            (
                "How long is the {e}'s cord?",
                "What's the cable length of the {e}?",
                "How long is the power cord on the {e}?",
            ),
            "The cord is {v} long.",
            "75 cm|1.2 m|90 cm|1 m|1.5 m|60 cm",
        ),
        A(
            "dishwasher",
            ("On the {e}, {v}.", "{e} dishwasher-safe parts: {v}."),
            (
                "Can the {e} go in the dishwasher?",
                "Is the {e} dishwasher safe?",
                "Which parts of the {e} are dishwasher safe?",
            ),
            "On the {e}, {v}.",
            "only the filter is dishwasher safe|the jug and blades are dishwasher safe|"
            "the crumb tray is dishwasher safe|the inner pot is dishwasher safe|no part is dishwasher safe|"
            "the lid and basket are dishwasher safe",
        ),
        A(
            "timer",
            ("The {e} has {v}.", "{e} timer: {v}."),
            ("Does the {e} have a timer?", "Is there a timer on the {e}?", "What timer does the {e} have?"),
            "It has {v}.",
            "a keep-warm timer of 30 minutes|a 60-second pulse timer|a 7-level browning dial|"
            "a 24-hour delay timer|no timer|a 10-minute boost timer",
        ),
        A(
            "noise",
            ("The {e} runs at {v}.", "{e} noise level: {v}."),
            ("How loud is the {e}?", "What's the noise level of the {e}?", "Is the {e} noisy?"),
            "It runs at {v}.",
            "52 dB|78 dB|45 dB|38 dB|64 dB|70 dB",
        ),
        A(
            "shutoff",
            ("The {e} switches itself off {v}.", "{e} auto shut-off: {v}."),
            (
                "Does the {e} switch off by itself?",
                "When does the {e} turn itself off?",
                "Does the {e} have an auto shut-off?",
            ),
            "It switches itself off {v}.",
            "when the water boils|after 3 minutes of idling|when the toast pops up|"
            "12 hours after cooking|after 10 minutes|when the lid opens",
        ),
        A(
            "material",
            ("The {e} body is made of {v}.", "{e} body material: {v}."),
            ("What is the {e} made of?", "What material is the {e}?", "Is the {e} plastic or metal?"),
            "The body is made of {v}.",
            "stainless steel|borosilicate glass|enamelled steel|BPA-free plastic|cast aluminium|ceramic",
        ),
        A(
            "programmes",
            ("The {e} has {v}.", "{e} programmes: {v}."),
            (
                "How many settings does the {e} have?",
                "What programmes does the {e} offer?",
                "How many modes has the {e}?",
            ),
            "The {e} has {v}.",
            "4 temperature settings|6 speed settings|3 bread modes|8 cooking programmes|2 settings|5 presets",
        ),
        A(
            "made_in",
            ("The {e} is made in {v}.", "{e} country of manufacture: {v}."),
            ("Where is the {e} made?", "Which country makes the {e}?", "Where is the {e} manufactured?"),
            "It is made in {v}.",
            "Portugal|Poland|Vietnam|Japan|Slovenia|Mexico",
        ),
        A(
            "launch",
            ("The {e} came out in {v}.", "{e} launch year: {v}."),
            (
                "When did the {e} come out?",
                "What year was the {e} launched?",
                "How long has the {e} been around?",
            ),
            "It came out in {v}.",
            "2019|2022|2017|2021|2023|2020",
        ),
    ),
)

SERVICES = Domain(
    "services",
    "home services",
    ("Nimbus Fibre", "Sparkle Home Cleaning", "Quickfix Plumbing", "Greenleaf Gardening"),
    (
        A(
            "price",
            ("{e} charges {v}.", "{e} price: {v}."),
            ("How much does {e} charge?", "What does {e} cost?", "What are the prices at {e}?"),
            "{e} charges {v}.",
            "$39 a month|$28 an hour|$85 per call-out|$45 per visit|$60 a month|$32 an hour",
        ),
        A(
            "phone",
            ("{e} can be called on {v}.", "{e} phone: {v}."),
            ("What's the phone number of {e}?", "How do I call {e}?", "What number do I ring for {e}?"),
            "You can call {e} on {v}.",
            "0800 214 330|0800 551 902|0800 377 128|0800 640 415|0800 905 271|0800 118 664",
        ),
        A(
            "email",
            ("{e} answers email at {v}.", "{e} email: {v}."),
            ("What's the email of {e}?", "How can I email {e}?", "Which address do I write to for {e}?"),
            "You can write to {v}.",
            "help@nimbusfibre.example|hello@sparklehome.example|jobs@quickfix.example|"
            "team@greenleaf.example|office@homeservices.example|care@fixit.example",
        ),
        A(
            "hours",
            ("{e} works {v}.", "{e} hours: {v}."),
            ("When is {e} open?", "What are the hours of {e}?", "What times does {e} work?"),
            "{e} works {v}.",
            "Monday to Friday, 8 am to 8 pm|every day, 7 am to 6 pm|around the clock|"
            "Tuesday to Saturday, 9 am to 5 pm|weekdays, 10 am to 4 pm|Monday to Saturday, 7 am to 3 pm",
        ),
        A(
            "area",
            ("{e} covers {v}.", "{e} service area: {v}."),
            ("Which area does {e} cover?", "Where does {e} operate?", "Does {e} come to my town?"),
            "{e} covers {v}.",
            "the whole of Brackenshire|the city centre and 10 km around it|the north and east districts|"
            "Lowmere and Ashby only|three counties in the west|the coastal towns",
        ),
        A(
            "notice",
            ("{e} needs {v} notice to book.", "{e} booking notice: {v}."),
            (
                "How far ahead do I need to book {e}?",
                "How much notice does {e} need?",
                "Can I book {e} for today?",
            ),
            "{e} needs {v} notice.",
            "48 hours|24 hours|one week|2 hours|3 days|12 hours",
        ),
        A(
            "cancellation",
            ("Cancelling {e} costs {v}.", "{e} cancellation fee: {v}."),
            (
                "What happens if I cancel {e}?",
                "Is there a cancellation fee at {e}?",
                "How much does it cost to cancel {e}?",
            ),
            "Cancelling costs {v}.",
            "nothing up to a day before|$15|half the visit price|$40|one month's fee|$10",
        ),
        A(
            "founded",
            ("{e} was founded in {v}.", "{e} founded: {v}."),
            ("When was {e} founded?", "How old is {e}?", "What year did {e} start?"),
            "{e} was founded in {v}.",
            "2011|2004|1998|2016|2009|2013",
        ),
        A(
            "staff",
            ("{e} has {v}.", "{e} team size: {v}."),
            ("How big is the team at {e}?", "How many people work for {e}?", "How many staff does {e} have?"),
            "{e} has {v}.",
            "140 engineers|35 cleaners|12 plumbers|18 gardeners|60 staff|9 technicians",
        ),
        A(
            "payment",
            ("{e} takes {v}.", "{e} payment: {v}."),
            ("How can I pay {e}?", "Which payment methods does {e} accept?", "Does {e} take cards?"),
            "{e} takes {v}.",
            "direct debit only|cards and bank transfer|cash, cards and invoices|cards only|"
            "bank transfer and PayPal|invoices paid within 14 days",
        ),
        A(
            "contract",
            ("{e} has {v}.", "{e} contract: {v}."),
            (
                "Is there a minimum contract with {e}?",
                "How long is the contract with {e}?",
                "Do I have to sign up for long with {e}?",
            ),
            "{e} has {v}.",
            "an 18-month minimum contract|no contract at all|a 3-month minimum|a 12-month minimum|"
            "a rolling monthly contract|a 6-month minimum",
        ),
        A(
            "response",
            ("{e} answers a call-out within {v}.", "{e} response time: {v}."),
            (
                "How quickly does {e} respond?",
                "How fast can {e} get to me?",
                "What's the response time of {e}?",
            ),
            "{e} responds within {v}.",
            "4 hours|2 hours|1 working day|90 minutes|6 hours|3 days",
        ),
        A(
            "weekend",
            ("At weekends, {e} {v}.", "{e} weekend service: {v}."),
            ("Does {e} work at weekends?", "Can I get {e} on a Sunday?", "Is {e} available at the weekend?"),
            "At weekends, {e} {v}.",
            "works on Saturdays only|charges 50% more|is closed|works as usual|"
            "takes emergencies only|works on Sunday mornings",
        ),
        A(
            "founder",
            ("{e} was started by {v}.", "{e} founder: {v}."),
            ("Who founded {e}?", "Who started {e}?", "Who is behind {e}?"),
            "{e} was started by {v}.",
            "Dana Ferreira|Tomasz Wilk|Amara Okafor|Lise Berger|Ravi Menon|Hollis Gray",
        ),
        A(
            "guarantee",
            ("{e} guarantees {v}.", "{e} guarantee: {v}."),
            ("What does {e} guarantee?", "Is the work of {e} guaranteed?", "What guarantee does {e} give?"),
            "{e} guarantees {v}.",
            "a free redo within 24 hours|its repairs for 12 months|99.9% uptime|"
            "healthy plants for 6 months|its work for 90 days|a refund within 30 days",
        ),
    ),
)

PLACES = Domain(
    "places",
    "places to visit",
    ("Harbourlight Hotel", "Museum of Tides", "Fernhill Park", "Old Mill Theatre"),
    (
        A(
            "address",
            ("The {e} is at {v}.", "{e} address: {v}."),
            ("Where is the {e}?", "What's the address of the {e}?", "How do I find the {e}?"),
            "The {e} is at {v}.",
            "4 Quay Street|22 Anchor Lane|Fernhill Road|9 Mill Yard|17 Beacon Hill|3 Salt Row",
        ),
        A(
            "hours",
            ("The {e} is open {v}.", "{e} opening hours: {v}."),
            (
                "When is the {e} open?",
                "What are the opening hours of the {e}?",
                "What time does the {e} open?",
            ),
            "The {e} is open {v}.",
            "around the clock|10 am to 5 pm|dawn to dusk|from 6 pm on show days|9 am to 6 pm|11 am to 7 pm",
        ),
        A(
            "price",
            ("Entry to the {e} costs {v}.", "{e} entry: {v}."),
            (
                "How much does the {e} cost?",
                "What's the entry price of the {e}?",
                "How much are tickets for the {e}?",
            ),
            "Entry costs {v}.",
            "$140 a night|$12|nothing|$18 to $35|$9|$22",
        ),
        A(
            "phone",
            ("The {e} can be reached on {v}.", "{e} phone: {v}."),
            ("What's the phone number of the {e}?", "How do I call the {e}?", "What number is the {e}?"),
            "You can call the {e} on {v}.",
            "0161 400 221|0161 522 908|0161 733 045|0161 218 660|0161 904 117|0161 345 782",
        ),
        A(
            "station",
            ("The nearest station to the {e} is {v}.", "{e} nearest station: {v}."),
            (
                "What's the nearest station to the {e}?",
                "Which train station is closest to the {e}?",
                "How do I get to the {e} by train?",
            ),
            "The nearest station is {v}.",
            "Harbour Central|Tidegate|Fernhill Halt|Millbrook|Beacon Street|Saltmarsh",
        ),
        A(
            "parking",
            ("Parking at the {e}: {v}.", "{e} parking: {v}."),
            ("Is there parking at the {e}?", "Where can I park at the {e}?", "Does the {e} have a car park?"),
            "Parking: {v}.",
            "40 spaces at $8 a day|none, use the Quay car park|a free car park by the east gate|"
            "street parking only|120 spaces, free after 6 pm|a bike rack only",
        ),
        A(
            "opened",
            ("The {e} opened in {v}.", "{e} opened: {v}."),
            ("When did the {e} open?", "How old is the {e}?", "What year did the {e} open?"),
            "It opened in {v}.",
            "1926|1988|1871|1904|1963|2012",
        ),
        A(
            "capacity",
            ("The {e} has room for {v}.", "{e} capacity: {v}."),
            ("How big is the {e}?", "How many people fit in the {e}?", "What's the capacity of the {e}?"),
            "It has room for {v}.",
            "64 guests|600 visitors at a time|3,000 people|420 seats|150 people|80 guests",
        ),
        A(
            "access",
            ("Wheelchair access at the {e}: {v}.", "{e} step-free access: {v}."),
            (
                "Is the {e} wheelchair accessible?",
                "Does the {e} have step-free access?",
                "Can I visit the {e} in a wheelchair?",
            ),
            "Wheelchair access: {v}.",
            "lifts to every floor|the ground floor only|paved paths throughout|"
            "ramps and 6 wheelchair spaces|none in the old wing|full access with a lift",
        ),
        A(
            "pets",
            ("Dogs at the {e}: {v}.", "{e} pets policy: {v}."),
            ("Can I bring my dog to the {e}?", "Are pets allowed at the {e}?", "Is the {e} dog friendly?"),
            "Dogs: {v}.",
            "welcome for $15 a night|assistance dogs only|welcome on a lead|not allowed|"
            "welcome in the garden|allowed in the foyer only",
        ),
        A(
            "cafe",
            ("The {e} has {v}.", "{e} food: {v}."),
            ("Is there a cafe at the {e}?", "Can I eat at the {e}?", "Does the {e} serve food?"),
            "The {e} has {v}.",
            "a rooftop bar|a cafe on the first floor|a kiosk by the lake|a bar in the interval|"
            "no food at all|a tea room",
        ),
        A(
            "tours",
            ("Guided tours of the {e} run {v}.", "{e} guided tours: {v}."),
            (
                "Are there guided tours of the {e}?",
                "When are the tours at the {e}?",
                "Can I book a tour of the {e}?",
            ),
            "Guided tours run {v}.",
            "on request|every day at 11 am and 2 pm|on Sundays at 10 am|before matinees|"
            "on the first Saturday of the month|hourly in summer",
        ),
        A(
            "closed",
            ("The {e} is closed {v}.", "{e} closing days: {v}."),
            ("When is the {e} closed?", "Which days is the {e} shut?", "Is the {e} open every day?"),
            "It is closed {v}.",
            "on 25 December|on Mondays|never|in August|on Tuesdays|in January",
        ),
        A(
            "wifi",
            ("Wi-Fi at the {e}: {v}.", "{e} Wi-Fi: {v}."),
            ("Is there Wi-Fi at the {e}?", "Does the {e} have internet?", "Can I get online at the {e}?"),
            "Wi-Fi: {v}.",
            "free in every room|free in the entrance hall|none|free in the foyer|$5 a day|free by the cafe",
        ),
        A(
            "architect",
            ("The {e} was designed by {v}.", "{e} architect: {v}."),
            ("Who designed the {e}?", "Who was the architect of the {e}?", "Who built the {e}?"),
            "It was designed by {v}.",
            "Edith Marlow|Karel Novak|Agnes Thorne|Silas Webb|Yusuf Demir|Clara Voss",
        ),
    ),
)

CHARACTERS = Domain(
    "characters",
    "characters",
    ("Mira Vale", "Oren Duska", "Pip Larkspur", "Sable Quinn"),
    (
        A(
            "age",
            ("{e} is {v} old.", "{e}, age: {v}."),
            ("{e}, how old are you?", "How old are you, {e}?", "{e}, what's your age?"),
            "I'm {v} old.",
            "34 years|61 years|19 years|47 years|28 years|72 years",
        ),
        A(
            "hometown",
            ("{e} grew up in {v}.", "{e}'s hometown: {v}."),
            ("{e}, where did you grow up?", "Where are you from, {e}?", "{e}, what's your hometown?"),
            "I grew up in {v}.",
            "Port Calloway|the hill town of Vesk|a lighthouse on Gull Rock|the river city of Ambry|"
            "a farm near Dunmoor|the capital, Serith",
        ),
        A(
            "job",
            ("{e} works as {v}.", "{e}'s job: {v}."),
            ("{e}, what do you do for a living?", "What's your job, {e}?", "{e}, what work do you do?"),
            "I work as {v}.",
            "a ship's navigator|a retired sea captain|a baker's apprentice|a clockmaker|"
            "a night-train conductor|a beekeeper",
        ),
        A(
            "food",
            ("{e}'s favourite food is {v}.", "{e}, favourite food: {v}."),
            (
                "{e}, what's your favourite food?",
                "What do you like to eat most, {e}?",
                "{e}, which dish do you love?",
            ),
            "My favourite food is {v}.",
            "smoked mackerel|plum dumplings|cinnamon buns|lentil soup|grilled peppers|rye bread with honey",
        ),
        A(
            "pet",
            ("{e} has {v}.", "{e}'s pet: {v}."),
            ("{e}, do you have a pet?", "Have you got any pets, {e}?", "{e}, what's your pet called?"),
            "I have {v}.",
            "a grey cat called Tiller|an old parrot named Admiral|a hedgehog called Crumb|"
            "no pets|a tortoise named Gear|a sheepdog called Bramble",
        ),
        A(
            "sibling",
            ("{e} has {v}.", "{e}'s siblings: {v}."),
            (
                "{e}, do you have brothers or sisters?",
                "Any siblings, {e}?",
                "{e}, tell me about your family.",
            ),
            "I have {v}.",
            "a younger brother, Tomas|two sisters, Ada and June|no siblings|an older sister, Wren|"
            "a twin brother, Idris|three brothers",
        ),
        A(
            "hobby",
            ("In free time, {e} {v}.", "{e}'s hobby: {v}."),
            ("{e}, what do you do in your free time?", "What's your hobby, {e}?", "{e}, how do you relax?"),
            "In my free time, I {v}.",
            "maps the stars|carves model ships|plays chess by post|swims in the sea|"
            "grows tomatoes|collects old keys",
        ),
        A(
            "fear",
            ("{e} is afraid of {v}.", "{e}'s fear: {v}."),
            ("{e}, what are you afraid of?", "What scares you, {e}?", "{e}, is there anything you fear?"),
            "I'm afraid of {v}.",
            "deep caves|thunderstorms|big dogs|heights|crowded markets|the dark",
        ),
        A(
            "colour",
            ("{e}'s favourite colour is {v}.", "{e}, favourite colour: {v}."),
            (
                "{e}, what's your favourite colour?",
                "Which colour do you like best, {e}?",
                "{e}, do you have a favourite colour?",
            ),
            "My favourite colour is {v}.",
            "sea green|rust red|butter yellow|midnight blue|violet|amber",
        ),
        A(
            "instrument",
            ("{e} plays {v}.", "{e}, instrument: {v}."),
            ("{e}, do you play an instrument?", "What instrument do you play, {e}?", "{e}, are you musical?"),
            "I play {v}.",
            "the fiddle|the accordion|the tin whistle|no instrument|the cello|the harmonica",
        ),
        A(
            "birthday",
            ("{e} was born in {v}.", "{e}'s birthday month: {v}."),
            ("{e}, when is your birthday?", "When were you born, {e}?", "{e}, what month is your birthday?"),
            "I was born in {v}.",
            "March|November|July|February|September|May",
        ),
        A(
            "friend",
            ("{e}'s best friend is {v}.", "{e}'s closest friend: {v}."),
            (
                "{e}, who is your best friend?",
                "Who's your closest friend, {e}?",
                "{e}, who do you trust most?",
            ),
            "My best friend is {v}.",
            "Captain Hale|a fisherman called Luk|the miller's daughter, Rosa|"
            "old Mr Penhallow|a librarian named Ines|Kit the postman",
        ),
        A(
            "home",
            ("{e} now lives {v}.", "{e}'s home: {v}."),
            ("{e}, where do you live now?", "Where's your home these days, {e}?", "{e}, where do you stay?"),
            "I live {v}.",
            "on a houseboat in the harbour|above the bakery|in a cottage by the cliffs|"
            "in a flat near the station|in a caravan|in a tower room at the clock works",
        ),
        A(
            "first_job",
            ("{e}'s first job was {v}.", "{e}, first job: {v}."),
            (
                "{e}, what was your first job?",
                "How did you start working, {e}?",
                "{e}, what did you do before this?",
            ),
            "My first job was {v}.",
            "mending nets|sweeping the market|selling newspapers|washing dishes at an inn|"
            "herding goats|delivering letters",
        ),
        A(
            "book",
            ("{e}'s favourite book is {v}.", "{e}, favourite book: {v}."),
            (
                "{e}, what's your favourite book?",
                "Which book do you love most, {e}?",
                "{e}, what do you like to read?",
            ),
            "My favourite book is {v}.",
            "The Salt Road|A Hundred Winters|The Clockwork Fox|Tides of Amber|"
            "Letters from Vesk|The Quiet Lantern",
        ),
    ),
)

APPS = Domain(
    "apps",
    "apps",
    ("Tallyo", "Snapnote", "Routewise", "Quillby"),
    (
        A(
            "price",
            ("{e} costs {v}.", "{e} price: {v}."),
            ("How much does {e} cost?", "What's the price of {e}?", "Is {e} free?"),
            "{e} costs {v}.",
            "$4.99 a month|$29 a year|nothing, with ads|$2.49 a month|$9.99 a month|$59 once",
        ),
        A(
            "platforms",
            ("{e} runs on {v}.", "{e} platforms: {v}."),
            ("Which devices does {e} run on?", "Is {e} on Android?", "What platforms does {e} support?"),
            "{e} runs on {v}.",
            "iOS and Android|iOS only|Android, iOS and the web|Windows and macOS|the web only|Android only",
        ),
        A(
            "trial",
            ("{e} has {v}.", "{e} free trial: {v}."),
            ("Is there a free trial of {e}?", "Can I try {e} first?", "How long is the {e} trial?"),
            "{e} has {v}.",
            "a 14-day free trial|a 30-day free trial|no free trial|a 7-day free trial|"
            "a free plan for one device|a 60-day free trial",
        ),
        A(
            "storage",
            ("{e} includes {v} of storage.", "{e} storage: {v}."),
            (
                "How much storage does {e} give?",
                "What's the storage limit in {e}?",
                "How much space do I get with {e}?",
            ),
            "It includes {v} of storage.",
            "5 GB|50 GB|200 MB|1 TB|20 GB|2 GB",
        ),
        A(
            "languages",
            ("{e} is available in {v}.", "{e} languages: {v}."),
            (
                "Which languages is {e} in?",
                "How many languages does {e} support?",
                "Is {e} available in Spanish?",
            ),
            "{e} is available in {v}.",
            "12 languages|English only|English and Spanish|31 languages|8 languages|"
            "English, French and German",
        ),
        A(
            "released",
            ("{e} was released in {v}.", "{e} release year: {v}."),
            ("When did {e} come out?", "How old is {e}?", "What year was {e} released?"),
            "It was released in {v}.",
            "2018|2021|2015|2023|2019|2016",
        ),
        A(
            "developer",
            ("{e} is made by {v}.", "{e} developer: {v}."),
            ("Who makes {e}?", "Which company develops {e}?", "Who is behind {e}?"),
            "{e} is made by {v}.",
            "Brightmoss Ltd|Kettle & Code|Northpaw Studio|Lumen Works|Greyfin Labs|Oakbit",
        ),
        A(
            "offline",
            ("Offline, {e} {v}.", "{e} offline mode: {v}."),
            ("Does {e} work offline?", "Can I use {e} without internet?", "Is there an offline mode in {e}?"),
            "Offline, {e} {v}.",
            "works fully|shows saved items only|does not work|keeps downloaded maps|"
            "syncs when you reconnect|opens read-only",
        ),
        A(
            "users",
            ("{e} allows {v}.", "{e} shared use: {v}."),
            (
                "Can several people use one {e} account?",
                "How many users does {e} allow?",
                "Can I share {e} with my family?",
            ),
            "{e} allows {v}.",
            "up to 5 users per account|one user only|up to 10 users|2 users|unlimited users|"
            "up to 6 family members",
        ),
        A(
            "export",
            ("{e} exports to {v}.", "{e} export formats: {v}."),
            (
                "Can I export my data from {e}?",
                "Which formats does {e} export?",
                "How do I get my data out of {e}?",
            ),
            "{e} exports to {v}.",
            "CSV and PDF|Markdown|GPX files|PDF only|CSV, JSON and Excel|plain text",
        ),
        A(
            "version",
            ("The current version of {e} is {v}.", "{e} current version: {v}."),
            (
                "What's the latest version of {e}?",
                "Which version of {e} is current?",
                "What version is {e} on?",
            ),
            "The current version is {v}.",
            "4.2|2.11|7.0.3|1.8|3.5|5.1",
        ),
        A(
            "support",
            ("{e} support answers at {v}.", "{e} support email: {v}."),
            (
                "How do I contact {e} support?",
                "What's the support email for {e}?",
                "Where can I get help with {e}?",
            ),
            "You can write to {v}.",
            "help@tallyo.example|support@snapnote.example|hi@routewise.example|"
            "care@quillby.example|team@appsupport.example|desk@northpaw.example",
        ),
        A(
            "rating",
            ("{e} is rated {v} in the app stores.", "{e} store rating: {v}."),
            ("What's the rating of {e}?", "Is {e} well rated?", "How many stars does {e} have?"),
            "It is rated {v}.",
            "4.7 stars|4.1 stars|4.5 stars|3.9 stars|4.8 stars|4.3 stars",
        ),
        A(
            "size",
            ("The {e} download is {v}.", "{e} download size: {v}."),
            (
                "How big is the {e} download?",
                "How much space does {e} take?",
                "What's the download size of {e}?",
            ),
            "The download is {v}.",
            "85 MB|42 MB|310 MB|120 MB|18 MB|64 MB",
        ),
        A(
            "data_location",
            ("{e} stores your data {v}.", "{e} data storage: {v}."),
            ("Where does {e} store my data?", "Is my {e} data kept in the EU?", "Where are {e}'s servers?"),
            "{e} stores your data {v}.",
            "in Frankfurt|on your phone only|in Dublin|in Oregon|in Helsinki|in Montreal",
        ),
    ),
)

RESTAURANTS = Domain(
    "restaurants",
    "restaurants",
    ("Casa Lumo", "Copper Ladle", "Umi Noodle Bar", "Verde Table"),
    (
        A(
            "address",
            ("{e} is at {v}.", "{e} address: {v}."),
            ("Where is {e}?", "What's the address of {e}?", "How do I find {e}?"),
            "{e} is at {v}.",
            "12 Lantern Street|5 Copper Row|88 Canal Walk|31 Orchard Place|7 Fig Lane|19 Tannery Yard",
        ),
        A(
            "hours",
            ("{e} is open {v}.", "{e} hours: {v}."),
            ("When is {e} open?", "What are the opening hours of {e}?", "What time does {e} open?"),
            "{e} is open {v}.",
            "noon to 11 pm|5 pm to midnight|11 am to 10 pm|8 am to 4 pm|6 pm to 1 am|noon to 3 pm",
        ),
        A(
            "chef",
            ("The head chef at {e} is {v}.", "{e} head chef: {v}."),
            ("Who is the chef at {e}?", "Who cooks at {e}?", "Who runs the kitchen at {e}?"),
            "The head chef is {v}.",
            "Lucia Moreno|Bram Kettering|Haruto Sano|Nell Adeyemi|Paolo Ricci|Signe Lund",
        ),
        A(
            "signature",
            ("The signature dish of {e} is {v}.", "{e} signature dish: {v}."),
            ("What is {e} known for?", "What's the signature dish at {e}?", "What should I order at {e}?"),
            "The signature dish is {v}.",
            "saffron rice with mussels|beef and ale stew|miso ramen with pork belly|"
            "roast squash with farro|lemon sole|duck dumplings",
        ),
        A(
            "price",
            ("Mains at {e} cost {v}.", "{e} mains: {v}."),
            ("How expensive is {e}?", "What do mains cost at {e}?", "What are the prices at {e}?"),
            "Mains cost {v}.",
            "$18 to $32|$14 to $22|$11 to $16|$16 to $24|$25 to $40|$9 to $13",
        ),
        A(
            "seats",
            ("{e} seats {v}.", "{e} seating: {v}."),
            ("How many people can {e} seat?", "How big is {e}?", "How many seats does {e} have?"),
            "{e} seats {v}.",
            "60 guests|45 guests|28 guests|90 guests|34 guests|120 guests",
        ),
        A(
            "vegan",
            ("Vegan food at {e}: {v}.", "{e} vegan options: {v}."),
            ("Does {e} have vegan food?", "Is there anything vegan at {e}?", "Can vegans eat at {e}?"),
            "Vegan food: {v}.",
            "two vegan mains|a separate vegan menu|tofu ramen on request|everything is vegetarian, half vegan|"
            "none|one vegan starter",
        ),
        A(
            "booking",
            ("Tables at {e} are booked on {v}.", "{e} bookings: {v}."),
            ("How do I book a table at {e}?", "What's the booking number of {e}?", "Can I reserve at {e}?"),
            "You can book on {v}.",
            "0207 311 482|0207 622 109|0207 845 336|0207 190 574|0207 433 918|0207 560 247",
        ),
        A(
            "closed",
            ("{e} is closed {v}.", "{e} closing days: {v}."),
            ("When is {e} closed?", "Which day is {e} shut?", "Is {e} open every day?"),
            "{e} is closed {v}.",
            "on Mondays|on Sundays|on Tuesdays and Wednesdays|never|in February|on Wednesdays",
        ),
        A(
            "delivery",
            ("Delivery from {e}: {v}.", "{e} delivery: {v}."),
            ("Does {e} deliver?", "Can I get {e} delivered?", "Is there delivery from {e}?"),
            "Delivery: {v}.",
            "within 3 km for $4|none, collection only|through the city courier|free over $40|"
            "lunch only|by bike within 2 km",
        ),
        A(
            "founded",
            ("{e} opened in {v}.", "{e} opened: {v}."),
            ("When did {e} open?", "How long has {e} been open?", "What year did {e} start?"),
            "{e} opened in {v}.",
            "2014|2008|2019|2022|1996|2011",
        ),
        A(
            "terrace",
            ("{e} has {v}.", "{e} outdoor seating: {v}."),
            ("Can I sit outside at {e}?", "Does {e} have a terrace?", "Is there outdoor seating at {e}?"),
            "{e} has {v}.",
            "a garden terrace for 20|no outdoor seating|four tables on the pavement|a covered courtyard|"
            "a roof terrace in summer|a canal-side deck",
        ),
        A(
            "parking",
            ("Parking near {e}: {v}.", "{e} parking: {v}."),
            ("Is there parking at {e}?", "Where can I park for {e}?", "Does {e} have a car park?"),
            "Parking: {v}.",
            "the Orchard car park, 200 m away|none nearby|6 spaces behind the building|"
            "street parking after 6 pm|a valet for $10|the station car park",
        ),
        A(
            "dessert",
            ("The best-known dessert at {e} is {v}.", "{e} dessert: {v}."),
            (
                "What's the best dessert at {e}?",
                "Which dessert is {e} known for?",
                "What should I have for dessert at {e}?",
            ),
            "The best-known dessert is {v}.",
            "burnt honey custard|sticky toffee pudding|matcha ice cream|"
            "poached pears|orange almond cake|black sesame pudding",
        ),
        A(
            "corkage",
            ("Bringing your own wine to {e}: {v}.", "{e} corkage: {v}."),
            ("Can I bring my own wine to {e}?", "What's the corkage fee at {e}?", "Is {e} BYOB?"),
            "Bringing your own wine: {v}.",
            "$12 corkage|not allowed|free corkage|$8 corkage|$20 corkage|allowed on Tuesdays only",
        ),
    ),
)

DOMAINS: tuple[Domain, ...] = (EBIKES, KITCHEN, SERVICES, PLACES, CHARACTERS, APPS, RESTAURANTS)

# Held out of every training file, even as distractors. The whole restaurant domain is never trained
# on; one entity of each of four trained domains is never trained on either.
HELD_OUT_DOMAIN = "restaurants"
HELD_OUT_ENTITIES: tuple[str, ...] = ("Kestrel Fold", "Tova Toaster", "Fernhill Park", "Pip Larkspur")
# For choosing settings: asked only by the dev set, never trained on and never in the eval sets.
DEV_ENTITIES: tuple[str, ...] = ("Quickfix Plumbing", "Routewise", "Sable Quinn")
