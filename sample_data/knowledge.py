"""The demo's knowledge base: fact types of a fictional company's support documentation.

A fact type knows how to draw its slot values, render help-centre passages that state the
fact (retrieved context), customer questions about it, and answers grounded in it. Slots
listed in ``alternatives`` are the ones a hallucinating model gets wrong: each maps to a
function that draws a different, plausible value.

The company is fictional ("Brightwave": cloud storage, video meetings, mail, home network
hardware). All text is generated locally from the templates below.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

Slots = dict[str, str]
SlotMaker = Callable[[random.Random], Slots]
Alternative = Callable[[random.Random, str], str]

PLANS = ("Starter", "Plus", "Business", "Enterprise")
PAID_PLANS = ("Plus", "Business", "Enterprise")
HARDWARE = ("Router X5", "Hub Mini", "Hub Pro", "Mesh Node M2", "Camera C3", "Doorbell D1")
APPS = ("Brightwave Drive", "Brightwave Meet", "Brightwave Mail")
COUNTRIES = (
    "Germany", "France", "Canada", "the United Kingdom", "Spain", "Italy", "the Netherlands",
    "Australia", "Japan", "Brazil", "Mexico", "Sweden", "Poland", "Ireland", "India",
    "Singapore", "the United States", "Austria", "Belgium", "Norway",
)
WAREHOUSES = ("Rotterdam", "Louisville", "Reno", "Leipzig", "Dublin", "Osaka", "Toronto")
DATA_REGIONS = ("Frankfurt", "Dublin", "Virginia", "Oregon", "Sydney", "Tokyo", "Montreal")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
LED_COLOURS = ("amber", "white", "blue", "green", "purple")
FIRST_NAMES = (
    "Daniel", "Priya", "Marco", "Aisha", "Tomasz", "Hannah", "Kenji", "Lucia", "Omar",
    "Sofia", "Liam", "Mei", "Jonas", "Fatima", "Ethan", "Ingrid", "Rafael", "Chloe",
)
LAST_NAMES = (
    "Okafor", "Sharma", "Rossi", "Haddad", "Nowak", "Becker", "Tanaka", "Fernandez",
    "Said", "Lindqvist", "Murphy", "Chen", "Weber", "Khan", "Brooks", "Dubois", "Silva",
)
PARTNERS = (
    "Northwind Telecom", "Contoso Mobile", "Fabrikam Broadband", "Tailspin Networks",
    "Litware Cloud", "Adatum Fiber", "Proseware Retail",
)
ROLES = (
    "billing specialist", "support lead", "customer success manager", "account executive",
    "network engineer", "privacy officer", "escalations manager",
)


def pick(rng: random.Random, options: Sequence[object]) -> str:
    return str(rng.choice(list(options)))


def other(options: Sequence[object]) -> Alternative:
    """A different value from the same option list."""

    def draw(rng: random.Random, current: str) -> str:
        rest = [str(o) for o in options if str(o) != current]
        return rng.choice(rest)

    return draw


def date_text(rng: random.Random, years: Sequence[int] = (2026, 2027)) -> str:
    return f"{pick(rng, MONTHS)} {rng.randint(1, 28)}, {pick(rng, years)}"


def person(rng: random.Random) -> str:
    return f"{pick(rng, FIRST_NAMES)} {pick(rng, LAST_NAMES)}"


def version(rng: random.Random) -> str:
    return f"{rng.randint(2, 6)}.{rng.randint(0, 19)}.{rng.randint(0, 9)}"


def other_version(rng: random.Random, current: str) -> str:
    while True:
        candidate = version(rng)
        if candidate != current:
            return candidate


def other_date(rng: random.Random, current: str) -> str:
    while True:
        candidate = date_text(rng)
        if candidate != current:
            return candidate


@dataclass(frozen=True)
class FactType:
    """One kind of fact in the help centre, with the ways it is asked about and answered."""

    topic: str
    name: str
    make_slots: SlotMaker
    passages: tuple[str, ...]
    questions: tuple[str, ...]
    # fits[i]: the indices (digits) of the answers that answer questions[i]
    fits: tuple[str, ...]
    answers: tuple[str, ...]
    alternatives: Mapping[str, Alternative] = field(default_factory=dict)

    def answers_for(self, question: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.fits[question])


FACTS: list[FactType] = []


def fact(topic: str, name: str, *, slots: SlotMaker, passages: Sequence[str],
         questions: Sequence[str], fits: Sequence[str], answers: Sequence[str],
         alternatives: Mapping[str, Alternative]) -> None:
    if len(fits) != len(questions) or any(int(d) >= len(answers) for f in fits for d in f):
        raise ValueError(f"fact {name}: fits must give valid answer indices for each question")
    FACTS.append(FactType(topic, name, slots, tuple(passages), tuple(questions), tuple(fits),
                          tuple(answers), dict(alternatives)))


# ------------------------------------------------------------------------------ billing

PRICES = ("6", "8", "9", "12", "14", "15", "18", "21", "24", "29", "35")
fact(
    "billing", "plan_price",
    slots=lambda r: (lambda p: {
        "plan": pick(r, PAID_PLANS), "price": p,
        "monthly_price": str(int(p) + r.choice((2, 3, 4))),
        "seats": pick(r, (3, 5, 10, 25)),
    })(pick(r, PRICES)),
    passages=(
        "Pricing: the {plan} plan costs ${price} per user per month when billed annually, "
        "or ${monthly_price} per user per month on monthly billing. Teams need at least "
        "{seats} seats.",
        "{plan} plan pricing. Annual billing: ${price} per user per month. Monthly billing: "
        "${monthly_price} per user per month. Minimum purchase: {seats} seats.",
    ),
    questions=(
        "How much does the {plan} plan cost per user?",
        "What's the price difference between annual and monthly billing on {plan}?",
        "We're thinking about moving to {plan}. What would we pay per seat?",
        "Is there a minimum number of users for the {plan} plan, and what does it cost?",
        "Can you tell me the monthly price of {plan}?",
        "quote for {plan} plan per user pls",
    ),
    fits=("012", "012", "02", "1", "01", "012"),
    answers=(
        "The {plan} plan is ${price} per user per month if you pay annually, or "
        "${monthly_price} per user per month with monthly billing.",
        "On annual billing {plan} costs ${price} per user each month; monthly billing is "
        "${monthly_price} per user. Note that {plan} requires a minimum of {seats} seats.",
        "You'd pay ${price} per seat per month on an annual {plan} contract, and "
        "${monthly_price} per seat if you prefer to be billed monthly.",
    ),
    alternatives={"price": other(PRICES), "monthly_price": other(("11", "13", "17", "19", "26")),
                  "seats": other((2, 4, 15, 20, 50))},
)

fact(
    "billing", "invoice_schedule",
    slots=lambda r: {
        "day": pick(r, ("1st", "5th", "10th", "15th", "last business day")),
        "due": pick(r, (14, 15, 30, 45)),
        "reminder": pick(r, (3, 5, 7)),
    },
    passages=(
        "Invoices are issued on the {day} of each month and are payable within {due} days. "
        "A reminder email is sent {reminder} days before the due date.",
        "Billing cycle: we generate invoices on the {day} of the month. Payment terms are "
        "net {due}. Account owners receive a reminder {reminder} days before payment is due.",
    ),
    questions=(
        "When do you send invoices, and how long do we have to pay?",
        "Our finance team is asking about your payment terms. What are they?",
        "What day of the month is the invoice generated?",
        "I haven't received this month's invoice yet — when is it issued?",
        "Do you send a reminder before an invoice is due?",
    ),
    fits=("01", "01", "02", "02", "1"),
    answers=(
        "Invoices go out on the {day} of each month and are due within {due} days.",
        "We issue invoices on the {day} of the month with net {due} payment terms, and you'll "
        "get a reminder email {reminder} days before the due date.",
        "Your invoice is generated on the {day} of every month; payment is due {due} days "
        "after that.",
    ),
    alternatives={"due": other((10, 20, 60, 90)), "reminder": other((1, 2, 10, 14)),
                  "day": other(("3rd", "20th", "25th", "first Monday"))},
)

fact(
    "billing", "failed_payment",
    slots=lambda r: {
        "retry": pick(r, (2, 3, 5)),
        "suspend": pick(r, (14, 21, 30)),
        "delete": pick(r, (60, 90, 120)),
    },
    passages=(
        "If a payment fails, we retry the charge after {retry} days. Accounts with an unpaid "
        "balance are suspended after {suspend} days, and data on suspended accounts is kept "
        "for {delete} days.",
        "Failed payments: automatic retry after {retry} days; suspension after {suspend} days "
        "overdue; suspended account data retained for {delete} days before deletion.",
    ),
    questions=(
        "My card payment failed. What happens now?",
        "How long before my account gets suspended if a payment doesn't go through?",
        "Our card expired and the charge bounced — will we lose our files?",
        "Do you retry failed payments automatically?",
        "If the invoice stays unpaid, when is the account suspended?",
    ),
    fits=("012", "02", "1", "02", "02"),
    answers=(
        "We'll retry the charge automatically after {retry} days. If the balance is still "
        "unpaid after {suspend} days the account is suspended, but your data is kept for "
        "{delete} days.",
        "Nothing is lost right away: the payment is retried after {retry} days, suspension "
        "only happens after {suspend} days overdue, and suspended accounts keep their data "
        "for {delete} days.",
        "A failed payment is retried after {retry} days; the account would be suspended "
        "after {suspend} days of non-payment.",
    ),
    alternatives={"retry": other((1, 4, 7)), "suspend": other((7, 10, 45, 60)),
                  "delete": other((30, 180, 365))},
)

# ------------------------------------------------------------------------------ refunds

fact(
    "refunds", "subscription_refund",
    slots=lambda r: {
        "plan": pick(r, PLANS), "days": pick(r, (14, 30, 45)),
        "process": pick(r, ("3-5", "5-7", "7-10")),
    },
    passages=(
        "Refund policy: subscriptions on the {plan} plan can be refunded in full within "
        "{days} days of purchase. Refunds are returned to the original payment method within "
        "{process} business days.",
        "{plan} subscriptions: full refund if requested within {days} days of the purchase "
        "date. Processing takes {process} business days. Partial months are not refunded "
        "after that period.",
    ),
    questions=(
        "Can I still get a refund on my {plan} subscription? I bought it last week.",
        "What's your refund policy for the {plan} plan?",
        "I was charged for {plan} by mistake, can I get my money back?",
        "How long does a refund take to show up on my card?",
        "I want to cancel {plan} and get a refund — is that possible?",
        "refund window for {plan}??",
    ),
    fits=("02", "12", "0", "01", "0", "12"),
    answers=(
        "Yes — {plan} subscriptions can be refunded in full within {days} days of purchase. "
        "The money goes back to your original payment method within {process} business days.",
        "You can get a full refund on {plan} if you ask within {days} days of buying it; "
        "refunds take {process} business days to arrive.",
        "Our policy allows a full refund of the {plan} plan within {days} days of the "
        "purchase date.",
    ),
    alternatives={"days": other((7, 60, 90)), "process": other(("1-2", "10-14", "2-3"))},
)

fact(
    "refunds", "hardware_return",
    slots=lambda r: {
        "product": pick(r, HARDWARE), "days": pick(r, (30, 45, 60)),
        "fee": pick(r, (10, 15, 20)),
    },
    passages=(
        "Returns: the {product} can be returned within {days} days of delivery in its "
        "original packaging. Opened items are subject to a {fee}% restocking fee; unopened "
        "items are refunded in full.",
        "Hardware return policy for {product}: {days}-day return window from the delivery "
        "date. A restocking fee of {fee}% applies if the box has been opened.",
    ),
    questions=(
        "Can I return my {product}? I opened it but it doesn't fit our setup.",
        "What's the return window for the {product}?",
        "Is there a restocking fee if I send back an opened {product}?",
        "I'd like to return the {product} I got two weeks ago. How does that work?",
        "do you take back the {product} if i already unboxed it",
    ),
    fits=("0", "12", "01", "12", "0"),
    answers=(
        "You can return the {product} within {days} days of delivery. Since it has been "
        "opened, a {fee}% restocking fee applies.",
        "Returns of the {product} are accepted for {days} days after delivery, in the "
        "original packaging; opened units carry a {fee}% restocking fee.",
        "Yes, the {product} has a {days}-day return window. Unopened items get a full "
        "refund, opened ones a refund minus {fee}%.",
    ),
    alternatives={"days": other((14, 21, 90)), "fee": other((5, 25, 30))},
)

fact(
    "refunds", "refund_status",
    slots=lambda r: {
        "hours": pick(r, (24, 48, 72)), "process": pick(r, ("3-5", "5-7", "5-10")),
        "team": pick(r, ("Billing Operations", "Payments", "Customer Accounts")),
    },
    passages=(
        "Once a refund is approved, a confirmation email is sent within {hours} hours. Banks "
        "usually post the credit within {process} business days. Questions about pending "
        "refunds are handled by the {team} team.",
        "Refund tracking: approval confirmation within {hours} hours; funds appear in "
        "{process} business days depending on the bank. Escalations go to {team}.",
    ),
    questions=(
        "My refund was approved but I don't see the money yet. When will it arrive?",
        "When will I get my refund after it's approved?",
        "It's been a few days since my refund was approved, is that normal?",
        "Who can I talk to about a refund that hasn't arrived?",
        "When will I get the confirmation for my refund?",
    ),
    fits=("02", "02", "1", "1", "02"),
    answers=(
        "After approval you should get a confirmation email within {hours} hours, and the "
        "credit usually shows up within {process} business days depending on your bank.",
        "That's normal — banks typically take {process} business days to post a refund. If "
        "it takes longer, our {team} team can look into it.",
        "Refunds appear within {process} business days of approval; the confirmation email "
        "arrives within {hours} hours.",
    ),
    alternatives={"hours": other((2, 12, 96)), "process": other(("1-2", "10-15", "14-21")),
                  "team": other(("Finance Desk", "Trust & Safety", "Partner Support"))},
)

# ----------------------------------------------------------------------------- shipping

fact(
    "shipping", "delivery_time",
    slots=lambda r: (lambda a: {
        "country": pick(r, COUNTRIES), "low": str(a), "high": str(a + r.choice((2, 3, 4))),
        "express": pick(r, (1, 2, 3)), "warehouse": pick(r, WAREHOUSES),
    })(r.choice((2, 3, 4, 5))),
    passages=(
        "Shipping to {country}: standard delivery takes {low}-{high} business days and "
        "express delivery {express} business days. Orders ship from our {warehouse} "
        "warehouse.",
        "Delivery estimates ({country}). Standard: {low} to {high} business days. Express: "
        "{express} business day(s). Fulfilment centre: {warehouse}.",
    ),
    questions=(
        "How long does shipping to {country} take?",
        "If I order today, when will it arrive in {country}?",
        "Do you offer express shipping to {country}?",
        "What's the delivery estimate for {country}? I need it before the end of the month.",
        "Where do you ship from, and how long does it take to {country}?",
        "shipping time {country}",
    ),
    fits=("02", "02", "02", "02", "1", "012"),
    answers=(
        "Standard delivery to {country} takes {low}-{high} business days, or {express} "
        "business days with express shipping.",
        "Orders to {country} ship from our {warehouse} warehouse and arrive in {low}-{high} "
        "business days with standard shipping.",
        "You can expect your order in {country} within {low} to {high} business days; "
        "express gets it there in {express}.",
    ),
    alternatives={"high": other((7, 8, 10, 12)), "express": other((4, 5)),
                  "warehouse": other(("Memphis", "Lyon", "Gdansk", "Kobe"))},
)

fact(
    "shipping", "free_shipping",
    slots=lambda r: {
        "threshold": pick(r, (49, 75, 99, 150)), "fee": pick(r, ("4.99", "6.95", "9.99")),
        "country": pick(r, COUNTRIES),
    },
    passages=(
        "Orders over ${threshold} ship free within {country}. Below that, a flat standard "
        "shipping fee of ${fee} applies.",
        "Free standard shipping in {country} on orders above ${threshold}; otherwise "
        "shipping costs ${fee} per order.",
    ),
    questions=(
        "Is shipping free to {country}?",
        "How much do I need to spend for free shipping?",
        "What does shipping cost for a small order to {country}?",
        "Do you have a free delivery threshold?",
        "Why was I charged for shipping on my order?",
    ),
    fits=("0", "01", "02", "01", "2"),
    answers=(
        "Shipping is free in {country} for orders over ${threshold}; smaller orders have a "
        "flat ${fee} shipping fee.",
        "You get free standard shipping once your order is above ${threshold}. Otherwise it's "
        "${fee} per order.",
        "Orders under ${threshold} are charged a flat ${fee} for standard shipping to "
        "{country}.",
    ),
    alternatives={"threshold": other((25, 35, 50, 200)), "fee": other(("2.99", "12.50", "14.99"))},
)

fact(
    "shipping", "order_tracking",
    slots=lambda r: {
        "hours": pick(r, (12, 24, 48)), "carrier": pick(r, ("DHL", "UPS", "FedEx", "DPD", "GLS")),
        "cutoff": pick(r, ("1 pm", "2 pm", "3 pm", "noon")),
    },
    passages=(
        "Tracking numbers are emailed within {hours} hours of dispatch. We ship with {carrier}. "
        "Orders placed before {cutoff} local time on a business day are dispatched the same "
        "day.",
        "Order tracking: you receive a {carrier} tracking link by email within {hours} hours "
        "after your parcel leaves the warehouse. Same-day dispatch cut-off: {cutoff}.",
    ),
    questions=(
        "I placed an order yesterday but have no tracking number. When will I get it?",
        "Which carrier do you use?",
        "Where's my order? I can't find any tracking info.",
        "What's the cut-off time for same-day dispatch?",
        "How do I track my package?",
    ),
    fits=("01", "1", "01", "2", "1"),
    answers=(
        "You'll get a {carrier} tracking number by email within {hours} hours of dispatch.",
        "We ship with {carrier}, and the tracking link is emailed within {hours} hours after "
        "the parcel leaves the warehouse. Orders before {cutoff} go out the same day.",
        "Orders placed before {cutoff} on a business day are dispatched the same day, and the "
        "tracking email follows within {hours} hours.",
    ),
    alternatives={"hours": other((2, 6, 72)), "carrier": other(("USPS", "Royal Mail", "TNT")),
                  "cutoff": other(("10 am", "5 pm", "6 pm"))},
)

# ------------------------------------------------------------------------------ account

fact(
    "account", "password_reset",
    slots=lambda r: {
        "minutes": pick(r, (15, 30, 60)), "attempts": pick(r, (3, 5)),
        "lock": pick(r, (15, 30, 60)),
    },
    passages=(
        "Password reset links expire after {minutes} minutes. After {attempts} failed "
        "sign-in attempts the account is locked for {lock} minutes.",
        "Security settings: reset links are valid for {minutes} minutes and can be used once. "
        "{attempts} consecutive failed logins trigger a {lock}-minute lockout.",
    ),
    questions=(
        "My password reset link says it expired. How long is it valid?",
        "I'm locked out after typing the wrong password. How long do I have to wait?",
        "how many login attempts before lockout",
        "I never got to use the reset email in time — what now?",
        "Why can't I sign in? It says my account is temporarily locked.",
    ),
    fits=("02", "1", "1", "0", "1"),
    answers=(
        "Reset links are valid for {minutes} minutes and can only be used once, so just "
        "request a new one.",
        "After {attempts} failed sign-in attempts the account is locked for {lock} minutes; "
        "you can try again after that or reset your password.",
        "The link expires after {minutes} minutes. Also note that {attempts} failed logins "
        "lock the account for {lock} minutes.",
    ),
    alternatives={"minutes": other((5, 10, 120, 1440)), "attempts": other((4, 6, 10)),
                  "lock": other((5, 10, 120))},
)

fact(
    "account", "two_factor",
    slots=lambda r: {
        "codes": pick(r, (8, 10, 12)),
        "methods": pick(r, ("authenticator apps and hardware security keys",
                            "authenticator apps, SMS and security keys",
                            "passkeys and authenticator apps")),
        "plan": pick(r, PAID_PLANS),
    },
    passages=(
        "Two-factor authentication supports {methods}. When you turn it on you get {codes} "
        "single-use backup codes. Admins on the {plan} plan can require 2FA for all users.",
        "2FA options: {methods}. {codes} backup codes are generated at enrolment; store them "
        "safely. Enforcing 2FA organisation-wide is available on {plan}.",
    ),
    questions=(
        "Which two-factor methods do you support?",
        "I lost my phone and can't get my 2FA code. What can I do?",
        "Can I force everyone in my company to use 2FA?",
        "How many backup codes do I get?",
        "Do you support security keys for 2FA?",
    ),
    fits=("0", "0", "1", "2", "0"),
    answers=(
        "We support {methods}. If you lost your device, sign in with one of the {codes} "
        "backup codes you got when you enabled 2FA.",
        "Yes — admins on the {plan} plan can require two-factor authentication for every user "
        "in the organisation.",
        "You receive {codes} single-use backup codes when you turn on 2FA.",
    ),
    alternatives={"codes": other((5, 6, 16, 20)), "plan": other(PLANS),
                  "methods": other(("email codes and SMS", "SMS only", "voice calls and SMS"))},
)

fact(
    "account", "account_deletion",
    slots=lambda r: {"days": pick(r, (14, 30)), "export": pick(r, (7, 14, 30))},
    passages=(
        "When you close your account it enters a {days}-day grace period during which it can "
        "be restored. Data exports stay available for download for {export} days.",
        "Account closure: restorable for {days} days, then permanently deleted. Export "
        "archives can be downloaded for {export} days after you request them.",
    ),
    questions=(
        "I closed my account by accident. Can I get it back?",
        "How long do you keep my data after I delete my account?",
        "I want to download everything before closing my account. How long is the export "
        "available?",
        "Is account deletion immediate?",
        "what happens to my files if i close my account",
    ),
    fits=("0", "12", "1", "1", "12"),
    answers=(
        "Closed accounts can be restored during a {days}-day grace period, so you still have "
        "time to get it back.",
        "Deletion isn't immediate: there's a {days}-day grace period, and your export archive "
        "stays downloadable for {export} days.",
        "Your data is permanently deleted {days} days after you close the account.",
    ),
    alternatives={"days": other((7, 60, 90)), "export": other((3, 45, 90))},
)

# ------------------------------------------------------------------------------ storage

fact(
    "storage", "storage_quota",
    slots=lambda r: {
        "plan": pick(r, PLANS), "gb": pick(r, (100, 200, 500, 1000, 2000)),
        "upload": pick(r, (5, 10, 50, 100)),
    },
    passages=(
        "Brightwave Drive storage: the {plan} plan includes {gb} GB per user. The maximum size "
        "of a single uploaded file is {upload} GB.",
        "Storage limits ({plan}): {gb} GB of pooled storage per licensed user; individual "
        "file uploads up to {upload} GB.",
    ),
    questions=(
        "How much storage do I get on {plan}?",
        "What's the biggest file I can upload to Brightwave Drive?",
        "We keep running out of space. What's the storage limit per user on {plan}?",
        "Can I upload a 40 GB video file?",
        "storage per user {plan} plan",
    ),
    fits=("01", "2", "01", "02", "01"),
    answers=(
        "The {plan} plan includes {gb} GB of storage per user, and single files can be up to "
        "{upload} GB.",
        "Each licensed user on {plan} gets {gb} GB of pooled storage.",
        "Uploads are limited to {upload} GB per file on Brightwave Drive.",
    ),
    alternatives={"gb": other((50, 250, 750, 5000)), "upload": other((2, 20, 250))},
)

fact(
    "storage", "version_history",
    slots=lambda r: {
        "plan": pick(r, PLANS), "days": pick(r, (30, 90, 180, 365)),
        "trash": pick(r, (30, 60)),
    },
    passages=(
        "Version history: on the {plan} plan, previous versions of files are kept for "
        "{days} days. Deleted files stay in the trash for {trash} days before they are "
        "removed permanently.",
        "File recovery ({plan}): restore earlier versions for up to {days} days; the trash "
        "keeps deleted items for {trash} days.",
    ),
    questions=(
        "I overwrote a spreadsheet last month. Can I restore the old version?",
        "How long is version history kept on {plan}?",
        "I emptied a folder by mistake — how long do deleted files stay in the trash?",
        "Can I get back a file I deleted a few weeks ago?",
        "Does {plan} keep old versions of documents?",
    ),
    fits=("0", "12", "1", "1", "2"),
    answers=(
        "On {plan}, earlier versions are kept for {days} days, so you can restore the "
        "spreadsheet from its version history.",
        "Deleted files remain in the trash for {trash} days, and version history on {plan} "
        "goes back {days} days.",
        "Yes — {plan} keeps previous file versions for {days} days.",
    ),
    alternatives={"days": other((7, 14, 60, 730)), "trash": other((7, 14, 90))},
)

fact(
    "storage", "sync_client",
    slots=lambda r: {
        "version": version(r), "os": pick(r, ("Windows 10", "macOS 12", "Ubuntu 20.04")),
        "devices": pick(r, (3, 5, 10)),
    },
    passages=(
        "The Brightwave Drive desktop app (current version {version}) supports {os} and "
        "later. Each user can connect up to {devices} devices.",
        "Desktop sync client {version}: minimum OS {os}. Device limit: {devices} devices per "
        "user; remove an old device under Settings > Devices to add a new one.",
    ),
    questions=(
        "Does the Drive desktop app still work on {os}?",
        "How many computers can I sync with one account?",
        "What's the latest version of the sync client?",
        "I can't add my new laptop — it says I've reached the device limit.",
        "which OS versions does the desktop sync support",
    ),
    fits=("2", "1", "0", "1", "0"),
    answers=(
        "The current desktop app is version {version} and it supports {os} and later.",
        "Each user can connect up to {devices} devices. Remove an old one under Settings > "
        "Devices and then add your new laptop.",
        "Yes, {os} is still supported by the sync client {version}.",
    ),
    alternatives={"version": other_version, "devices": other((2, 4, 25)),
                  "os": other(("Windows 8", "macOS 10.13", "Ubuntu 18.04"))},
)

# ------------------------------------------------------------------------------ meetings

fact(
    "meetings", "participant_limit",
    slots=lambda r: {
        "plan": pick(r, PLANS), "people": pick(r, (50, 100, 300, 500)),
        "minutes": pick(r, (40, 60)),
    },
    passages=(
        "Brightwave Meet on the {plan} plan allows up to {people} participants per meeting. "
        "Meetings on the free tier end after {minutes} minutes.",
        "Meet limits ({plan}): {people} participants per call. Free accounts: {minutes}-minute "
        "cap per meeting.",
    ),
    questions=(
        "How many people can join a Meet call on {plan}?",
        "Our all-hands has 250 people. Will {plan} support that?",
        "Why did my meeting end after {minutes} minutes?",
        "What's the participant limit for Brightwave Meet?",
        "max attendees meet {plan}",
    ),
    fits=("02", "02", "1", "02", "02"),
    answers=(
        "On {plan}, Brightwave Meet supports up to {people} participants per meeting.",
        "{plan} allows {people} participants per call. Meetings on free accounts end after "
        "{minutes} minutes.",
        "The participant limit on your plan is {people} people per meeting.",
    ),
    alternatives={"people": other((25, 150, 1000, 2500)), "minutes": other((30, 45, 90))},
)

fact(
    "meetings", "recordings",
    slots=lambda r: {
        "plan": pick(r, PAID_PLANS), "days": pick(r, (30, 90, 180)),
        "hours": pick(r, (1, 2, 4)),
    },
    passages=(
        "Cloud recordings are available on the {plan} plan and are kept for {days} days. "
        "Transcripts are ready within {hours} hours after the meeting ends.",
        "Recording retention ({plan}): {days} days, after which recordings are deleted "
        "unless downloaded. Automatic transcripts arrive within {hours} hours.",
    ),
    questions=(
        "How long are meeting recordings stored?",
        "Where's the transcript of yesterday's meeting?",
        "Can I record meetings on {plan}?",
        "Our recordings from last quarter disappeared. Why?",
        "When is the transcript available after a call?",
    ),
    fits=("0", "1", "0", "2", "1"),
    answers=(
        "On {plan}, cloud recordings are kept for {days} days; download anything you need to "
        "keep longer.",
        "Transcripts are usually ready within {hours} hours after the meeting ends.",
        "Recordings are retained for {days} days on {plan} and then deleted, which is likely "
        "what happened to last quarter's files.",
    ),
    alternatives={"days": other((7, 14, 365)), "hours": other((6, 12, 24))},
)

fact(
    "meetings", "meeting_quality",
    slots=lambda r: {
        "mbps": pick(r, ("1.5", "2", "3.8")), "res": pick(r, ("720p", "1080p")),
        "browser": pick(r, ("Chrome", "Edge", "Firefox")),
    },
    passages=(
        "For HD video Brightwave Meet needs {mbps} Mbps up and down. Video is sent at up to "
        "{res}. The web client works best in current versions of {browser}.",
        "Meet network requirements: {mbps} Mbps symmetric for HD ({res}). Recommended "
        "browser: latest {browser}.",
    ),
    questions=(
        "My video keeps freezing in Meet calls. What bandwidth do I need?",
        "What resolution does Brightwave Meet support?",
        "Which browser should I use for Meet?",
        "Calls look blurry on my laptop, is that normal?",
        "network requirements for meet HD",
    ),
    fits=("0", "1", "1", "02", "02"),
    answers=(
        "HD video needs about {mbps} Mbps both up and down; below that Meet lowers the quality.",
        "Meet sends video at up to {res}, and the web client works best in a current {browser}.",
        "Make sure you have at least {mbps} Mbps upload and download for {res} video.",
    ),
    alternatives={"mbps": other(("0.5", "5", "10", "25")), "res": other(("480p", "4K")),
                  "browser": other(("Safari", "Opera", "Brave"))},
)

# ----------------------------------------------------------------------------- hardware

fact(
    "hardware", "factory_reset",
    slots=lambda r: {
        "product": pick(r, ("Router X5", "Hub Mini", "Hub Pro", "Mesh Node M2")),
        "seconds": pick(r, (5, 10, 15, 20)), "colour": pick(r, LED_COLOURS),
        "minutes": pick(r, (2, 3, 5)),
    },
    passages=(
        "To factory-reset the {product}, press and hold the reset button for {seconds} seconds "
        "until the status light blinks {colour}. The device restarts and is ready to set up "
        "again in about {minutes} minutes.",
        "{product} factory reset: hold the recessed reset button {seconds} s; LED flashes "
        "{colour}; reboot takes ~{minutes} min. All settings are erased.",
    ),
    questions=(
        "How do I factory reset my {product}?",
        "My {product} is unresponsive. How do I reset it?",
        "How long do I hold the reset button on the {product}?",
        "The light on my {product} is blinking {colour} — what does that mean?",
        "reset {product} to factory settings",
    ),
    fits=("02", "02", "02", "1", "012"),
    answers=(
        "Press and hold the reset button on the {product} for {seconds} seconds until the "
        "light blinks {colour}. It will restart and be ready in about {minutes} minutes.",
        "Hold the reset button for {seconds} seconds; a blinking {colour} light means the "
        "{product} is resetting. Note that all settings are erased.",
        "A factory reset of the {product} takes holding the reset button for {seconds} "
        "seconds, then waiting about {minutes} minutes for the reboot.",
    ),
    alternatives={"seconds": other((3, 30, 45)), "colour": other(("red", "orange", "cyan")),
                  "minutes": other((1, 10, 15))},
)

fact(
    "hardware", "firmware",
    slots=lambda r: {
        "product": pick(r, HARDWARE), "version": version(r), "date": date_text(r, (2026,)),
        "fix": pick(r, ("Wi-Fi drops on 5 GHz", "slow reconnects after power loss",
                        "Bluetooth pairing failures", "a battery drain issue",
                        "mesh handover delays")),
    },
    passages=(
        "Firmware {version} for the {product} was released on {date}. It fixes {fix}. "
        "Devices update automatically overnight when auto-update is on.",
        "Release notes — {product} firmware {version} ({date}): resolves {fix}; security "
        "patches. Rolled out automatically to devices with auto-update enabled.",
    ),
    questions=(
        "Is there a firmware update for the {product}? I'm having {fix}.",
        "What's the latest firmware for my {product}?",
        "How do I update my {product}?",
        "Has the {fix} problem on the {product} been fixed?",
        "{product} firmware release notes?",
    ),
    fits=("0", "1", "1", "2", "0"),
    answers=(
        "Yes — firmware {version} for the {product}, released on {date}, fixes {fix}.",
        "The latest {product} firmware is {version}. With auto-update on it installs itself "
        "overnight.",
        "That issue was fixed in firmware {version} ({date}); make sure auto-update is "
        "enabled on your {product}.",
    ),
    alternatives={"version": other_version, "date": other_date},
)

fact(
    "hardware", "warranty",
    slots=lambda r: {
        "product": pick(r, HARDWARE), "years": pick(r, (1, 2, 3)),
        "extended": pick(r, (2, 3, 5)), "price": pick(r, ("19", "29", "39", "49")),
    },
    passages=(
        "The {product} comes with a {years}-year limited warranty. Brightwave Care extends "
        "coverage to {extended} years for ${price}.",
        "Warranty: {years} year(s) standard on {product}. Optional Brightwave Care plan: "
        "{extended} years total coverage, ${price} one-time.",
    ),
    questions=(
        "How long is the warranty on the {product}?",
        "My {product} stopped working after a year and a half. Is it still covered?",
        "Can I extend the warranty on my {product}?",
        "What does Brightwave Care cost?",
        "warranty {product}",
    ),
    fits=("01", "1", "2", "2", "0"),
    answers=(
        "The {product} has a {years}-year limited warranty, and Brightwave Care extends it to "
        "{extended} years for ${price}.",
        "Standard coverage is {years} year(s); if you bought Brightwave Care it's covered for "
        "{extended} years.",
        "You can extend coverage to {extended} years with Brightwave Care, which costs "
        "${price}.",
    ),
    alternatives={"years": other((4, 5)), "extended": other((4, 6, 7)),
                  "price": other(("9", "59", "79", "99"))},
)

# ---------------------------------------------------------------------------------- api

fact(
    "developer", "rate_limits",
    slots=lambda r: {
        "plan": pick(r, PAID_PLANS), "rpm": pick(r, (60, 300, 600, 1200)),
        "burst": pick(r, (10, 20, 50)), "header": "Retry-After",
    },
    passages=(
        "API rate limits: the {plan} plan allows {rpm} requests per minute per API key, with "
        "bursts of up to {burst} requests per second. Requests over the limit get HTTP 429 "
        "with a {header} header.",
        "Rate limiting ({plan}): {rpm} req/min per key; burst {burst} req/s. Exceeding it "
        "returns 429 Too Many Requests; honour the {header} header.",
    ),
    questions=(
        "We're getting 429 errors from your API. What are the limits on {plan}?",
        "How many API requests per minute can I make?",
        "What's the burst limit for the REST API?",
        "How should my client handle rate limiting?",
        "api rate limit {plan}",
    ),
    fits=("0", "1", "2", "1", "01"),
    answers=(
        "On {plan} each API key can make {rpm} requests per minute, with bursts up to {burst} "
        "per second. A 429 response means you hit the limit; wait for the time given in the "
        "{header} header.",
        "The limit is {rpm} requests per minute per key on {plan}; back off when you get a "
        "429 and retry after the {header} interval.",
        "Bursts of up to {burst} requests per second are allowed, within {rpm} requests per "
        "minute.",
    ),
    alternatives={"rpm": other((100, 1000, 5000, 10000)), "burst": other((5, 100, 200))},
)

fact(
    "developer", "webhooks",
    slots=lambda r: {
        "retries": pick(r, (5, 8, 10)), "hours": pick(r, (24, 48, 72)),
        "timeout": pick(r, (5, 10, 15)),
    },
    passages=(
        "Webhook deliveries time out after {timeout} seconds. Failed deliveries are retried "
        "up to {retries} times with exponential backoff over {hours} hours. Each payload is "
        "signed with HMAC-SHA256.",
        "Webhooks: {timeout}s timeout; {retries} retries with exponential backoff spread over "
        "{hours} h; signature header uses HMAC-SHA256 with your signing secret.",
    ),
    questions=(
        "Our webhook endpoint was down for an hour. Will we miss events?",
        "How many times do you retry a failed webhook?",
        "What's the timeout for webhook deliveries?",
        "How do I verify that a webhook really came from you?",
        "webhook retry policy?",
    ),
    fits=("0", "2", "1", "1", "02"),
    answers=(
        "You won't lose them: failed deliveries are retried up to {retries} times with "
        "exponential backoff over {hours} hours.",
        "Webhooks time out after {timeout} seconds and are retried {retries} times. Verify "
        "the HMAC-SHA256 signature with your signing secret.",
        "We retry a failed webhook up to {retries} times over {hours} hours.",
    ),
    alternatives={"retries": other((3, 15, 20)), "hours": other((6, 12, 168)),
                  "timeout": other((2, 30, 60))},
)

fact(
    "developer", "api_keys",
    slots=lambda r: {
        "keys": pick(r, (5, 10, 25)), "days": pick(r, (90, 180, 365)),
        "scopes": pick(r, ("read, write and admin", "read-only and read-write",
                           "files, users and billing")),
    },
    passages=(
        "Each workspace can have up to {keys} active API keys. Keys can be restricted to "
        "{scopes} scopes and expire after {days} days unless rotated.",
        "API keys: max {keys} active per workspace; available scopes: {scopes}; default "
        "expiry {days} days. Rotate keys from the developer console.",
    ),
    questions=(
        "How many API keys can we create?",
        "Do API keys expire?",
        "Can I make a read-only API key?",
        "Our integration stopped working with 401s. Could the key have expired?",
        "how do i rotate an api key",
    ),
    fits=("0", "0", "2", "1", "3"),
    answers=(
        "A workspace can have up to {keys} active API keys, and keys expire after {days} days "
        "unless you rotate them.",
        "Yes, API keys expire after {days} days by default, which would explain the 401s; "
        "create a new key in the developer console.",
        "You can restrict keys to {scopes} scopes.",
        "Create a new key in the developer console and delete the old one; keys expire after "
        "{days} days unless they are rotated.",
    ),
    alternatives={"keys": other((3, 50, 100)), "days": other((30, 60, 730)),
                  "scopes": other(("owner-only", "billing and audit", "full-access"))},
)

# ----------------------------------------------------------------------------- privacy

fact(
    "privacy", "data_residency",
    slots=lambda r: {
        "region": pick(r, DATA_REGIONS), "plan": pick(r, ("Business", "Enterprise")),
        "backup": pick(r, DATA_REGIONS),
    },
    passages=(
        "Data residency: customers on the {plan} plan can choose where their data is stored. "
        "The default EU location is {region}; encrypted backups are kept in {backup}.",
        "Storage location options ({plan}): primary data centre {region}; backup copies in "
        "{backup}. Data does not leave the selected region except for backups.",
    ),
    questions=(
        "Where is our data stored?",
        "Can we keep our files in the EU for GDPR reasons?",
        "Do you offer data residency on {plan}?",
        "Where are backups kept?",
        "which data centre hosts our workspace",
    ),
    fits=("01", "1", "1", "2", "01"),
    answers=(
        "On {plan} you can choose your data location; the default EU location is {region}, "
        "with encrypted backups in {backup}.",
        "Yes — {plan} customers can select their storage region. Primary data lives in "
        "{region} and backup copies in {backup}.",
        "Your backups are stored encrypted in {backup}.",
    ),
    alternatives={"region": other(("Paris", "Stockholm", "Zurich", "Milan")),
                  "backup": other(("Warsaw", "Madrid", "Helsinki"))},
)

fact(
    "privacy", "certifications",
    slots=lambda r: {
        "cert": pick(r, ("SOC 2 Type II", "ISO 27001", "ISO 27701")),
        "audit": pick(r, MONTHS), "days": pick(r, (2, 3, 5)),
    },
    passages=(
        "Brightwave holds {cert} certification; the most recent audit was completed in "
        "{audit}. Enterprise customers can request the report under NDA, usually within "
        "{days} business days.",
        "Compliance: {cert} (last audit: {audit}). Reports available to customers under NDA "
        "within {days} business days of request.",
    ),
    questions=(
        "Are you {cert} certified?",
        "Our security team needs your compliance reports. How do we get them?",
        "When was your last security audit?",
        "Which certifications does Brightwave have?",
        "can we get a copy of the soc2 report",
    ),
    fits=("0", "1", "2", "0", "1"),
    answers=(
        "Yes, Brightwave holds {cert}; the latest audit was completed in {audit}.",
        "You can request the {cert} report under NDA and will usually receive it within "
        "{days} business days.",
        "Our most recent {cert} audit finished in {audit}.",
    ),
    alternatives={"audit": other(MONTHS), "days": other((1, 10, 15)),
                  "cert": other(("PCI DSS Level 1", "FedRAMP High", "HIPAA"))},
)

fact(
    "privacy", "audit_logs",
    slots=lambda r: {
        "plan": pick(r, ("Business", "Enterprise")), "days": pick(r, (90, 180, 365)),
        "format": pick(r, ("CSV", "JSON")),
    },
    passages=(
        "Audit logs on the {plan} plan record sign-ins, sharing and admin changes and are "
        "retained for {days} days. Admins can export them as {format}.",
        "{plan}: audit log retention {days} days; export formats: {format}; also available "
        "through the audit API.",
    ),
    questions=(
        "How long do you keep audit logs?",
        "Can I export the admin audit log?",
        "Do we have audit logs on {plan}?",
        "We need to see who shared a file externally three months ago. Is that logged?",
        "audit log retention",
    ),
    fits=("0", "2", "0", "1", "0"),
    answers=(
        "On {plan}, audit logs are kept for {days} days and can be exported as {format}.",
        "Sharing events are in the audit log, which {plan} retains for {days} days.",
        "Admins can export audit logs as {format} from the admin console.",
    ),
    alternatives={"days": other((30, 730, 2555)), "format": other(("PDF", "XML"))},
)

# --------------------------------------------------- topics that appear from day 5 (drift)

fact(
    "plan_migration", "price_change",
    slots=lambda r: (lambda old: {
        "old": old, "new": {"Starter": "Essentials 2027", "Plus": "Team 2027",
                            "Business": "Business Pro 2027", "Enterprise": "Enterprise 2027"}[old],
        "price": pick(r, ("10", "16", "22", "27", "32")), "date": date_text(r, (2027,)),
        "lock": pick(r, (6, 12)),
    })(pick(r, PLANS)),
    passages=(
        "2027 plan update: on {date} the {old} plan is replaced by {new} at ${price} per user "
        "per month. Existing customers keep their current price for {lock} months after the "
        "change.",
        "Plan migration notice: {old} -> {new}. Effective {date}. New list price ${price} "
        "per user/month. Price protection for existing subscriptions: {lock} months.",
    ),
    questions=(
        "Why is my {old} plan being renamed to {new}?",
        "I got an email saying my price is going up. When does that happen?",
        "What will {new} cost compared to {old}?",
        "Do existing customers have to pay the new 2027 price right away?",
        "Is the {old} plan going away? what do I need to do",
        "new pricing 2027 {old} plan??",
    ),
    fits=("0", "0", "2", "1", "1", "02"),
    answers=(
        "On {date} the {old} plan becomes {new}, priced at ${price} per user per month. As "
        "an existing customer you keep your current price for {lock} months after the "
        "change.",
        "You don't need to do anything: {old} moves to {new} on {date}, and your current "
        "price is protected for {lock} months.",
        "{new} will cost ${price} per user per month from {date}.",
    ),
    alternatives={"price": other(("12", "19", "25", "39")), "date": other_date,
                  "lock": other((3, 18, 24))},
)

fact(
    "plan_migration", "migration_features",
    slots=lambda r: {
        "new": pick(r, ("Team 2027", "Business Pro 2027", "Essentials 2027")),
        "gb": pick(r, (1000, 2000, 5000)), "people": pick(r, (150, 300, 500)),
        "feature": pick(r, ("Brightwave Assist", "e-signatures", "shared inboxes",
                            "advanced data loss prevention")),
    },
    passages=(
        "What's included in {new}: {gb} GB of storage per user, Meet calls with up to "
        "{people} participants, and {feature}.",
        "{new} plan features. Storage: {gb} GB/user. Meet: {people} participants. New: "
        "{feature} included at no extra cost.",
    ),
    questions=(
        "What do we get with {new} that we don't have now?",
        "Does {new} include more storage?",
        "Is {feature} part of {new}?",
        "Is the new plan worth the price increase?",
        "what's included in {new}",
    ),
    fits=("0", "1", "12", "0", "02"),
    answers=(
        "{new} includes {gb} GB of storage per user, Meet calls with up to {people} "
        "participants, and {feature} at no extra cost.",
        "Yes, {new} raises storage to {gb} GB per user and adds {feature}.",
        "With {new} you get {feature} and Meet calls for up to {people} people.",
    ),
    alternatives={"gb": other((500, 3000, 10000)), "people": other((100, 1000, 2000))},
)

fact(
    "ai_assistant", "assist_availability",
    slots=lambda r: {
        "plan": pick(r, PAID_PLANS), "requests": pick(r, (50, 100, 200)),
        "langs": pick(r, ("English, German, French and Spanish",
                          "English, Japanese and Portuguese",
                          "English, Italian, Dutch and Polish")),
    },
    passages=(
        "Brightwave Assist, the new AI assistant in Drive, Mail and Meet, is available on "
        "{plan} and higher plans. Each user can make {requests} Assist requests per day. "
        "Supported languages: {langs}.",
        "Assist availability: plans {plan} and above. Daily quota: {requests} requests per "
        "user. Languages: {langs}. Admins can turn Assist off for the organisation.",
    ),
    questions=(
        "How do I get the new Brightwave Assist feature?",
        "Is Assist included in my {plan} subscription?",
        "Assist stopped answering — is there a daily limit?",
        "Which languages does Brightwave Assist support?",
        "Can admins disable the AI assistant for everyone?",
        "assist not showing up in drive",
    ),
    fits=("0", "0", "1", "2", "2", "0"),
    answers=(
        "Brightwave Assist is available on {plan} and higher plans, with {requests} requests "
        "per user per day.",
        "Yes, there's a daily quota of {requests} Assist requests per user, which resets each "
        "day.",
        "Assist currently supports {langs}, and admins can turn it off for the whole "
        "organisation.",
    ),
    alternatives={"requests": other((20, 500, 1000)),
                  "langs": other(("English only", "over 40 languages"))},
)

fact(
    "ai_assistant", "assist_privacy",
    slots=lambda r: {
        "days": pick(r, (0, 7, 30)), "region": pick(r, DATA_REGIONS),
        "model": pick(r, ("a Brightwave-hosted model", "models hosted in our own data centres")),
    },
    passages=(
        "Assist and your data: prompts and files used by Brightwave Assist are never used to "
        "train models. Assist runs on {model} in {region}, and prompts are retained for "
        "{days} days for abuse monitoring.",
        "Brightwave Assist privacy: no training on customer content; processing in {region} "
        "on {model}; prompt retention {days} days.",
    ),
    questions=(
        "Does Brightwave Assist train on our documents?",
        "Where is Assist data processed?",
        "How long do you keep what we type into Assist?",
        "Is it safe to use Assist with confidential files?",
        "assist data retention policy",
    ),
    fits=("0", "2", "1", "02", "1"),
    answers=(
        "No — Assist never uses your prompts or files to train models. It runs on {model} in "
        "{region}.",
        "Prompts sent to Assist are kept for {days} days for abuse monitoring and are not used "
        "for training.",
        "Assist processes your data in {region} and does not train on customer content.",
    ),
    alternatives={"days": other((1, 14, 90, 365)),
                  "region": other(("Mumbai", "Ohio", "London", "Seoul"))},
)

fact(
    "service_credits", "sla_credits",
    slots=lambda r: {
        "uptime": pick(r, ("99.9", "99.95", "99.99")), "credit": pick(r, (10, 25)),
        "big": pick(r, (50, 100)), "days": pick(r, (30, 60)),
    },
    passages=(
        "Service level agreement: Brightwave commits to {uptime}% monthly uptime. If uptime "
        "falls below that, affected customers can claim a {credit}% service credit, rising "
        "to {big}% below 99%. Claims must be filed within {days} days.",
        "SLA credits: below {uptime}% uptime = {credit}% credit of the monthly fee; below 99% "
        "= {big}% credit. Submit claims within {days} days of the incident.",
    ),
    questions=(
        "We were affected by this week's outage. Are we entitled to a credit?",
        "What uptime does Brightwave guarantee?",
        "How do I claim a service credit for the outage?",
        "How much credit do we get if you miss the SLA?",
        "sla credit outage claim deadline",
    ),
    fits=("0", "2", "1", "0", "12"),
    answers=(
        "Brightwave commits to {uptime}% monthly uptime; if that's missed you can claim a "
        "{credit}% service credit, or {big}% if uptime fell below 99%.",
        "File the claim within {days} days of the incident; a missed {uptime}% SLA gives a "
        "{credit}% credit on the monthly fee.",
        "The SLA is {uptime}% uptime per month, and credits must be claimed within {days} "
        "days.",
    ),
    alternatives={"uptime": other(("99.5", "99.8", "99.999")), "credit": other((5, 15, 30)),
                  "days": other((7, 14, 90))},
)

fact(
    "service_credits", "status_page",
    slots=lambda r: {
        "minutes": pick(r, (5, 10, 15)), "hours": pick(r, (48, 72, 120)),
        "channel": pick(r, ("email and SMS", "email, SMS and Slack", "email and RSS")),
    },
    passages=(
        "Incidents are posted on status.brightwave.example within {minutes} minutes of "
        "detection. Subscribers are notified by {channel}. A written post-incident report is "
        "published within {hours} hours.",
        "Status page policy: initial update within {minutes} min; notifications via "
        "{channel}; root-cause report within {hours} h of resolution.",
    ),
    questions=(
        "Where can I see if Brightwave is down?",
        "Will you publish a report about the outage?",
        "How do I get notified about incidents?",
        "Why wasn't the outage on the status page right away?",
        "post mortem for the incident this week?",
    ),
    fits=("0", "1", "2", "0", "1"),
    answers=(
        "Incidents appear on status.brightwave.example within {minutes} minutes of detection, "
        "and you can subscribe to updates by {channel}.",
        "Yes, a written post-incident report is published within {hours} hours.",
        "Subscribe on the status page to get incident notifications by {channel}.",
    ),
    alternatives={"minutes": other((1, 30, 60)), "hours": other((24, 168, 240)),
                  "channel": other(("push notifications only", "phone calls"))},
)


TOPICS: tuple[str, ...] = tuple(dict.fromkeys(f.topic for f in FACTS))
FACTS_BY_TOPIC: dict[str, tuple[FactType, ...]] = {
    t: tuple(f for f in FACTS if f.topic == t) for t in TOPICS
}

# Topic mixes: before the drift, and from the drift on (weights, need not sum to 1).
TOPIC_MIX_BEFORE: dict[str, float] = {
    "billing": 0.17, "refunds": 0.12, "shipping": 0.13, "account": 0.14, "storage": 0.12,
    "meetings": 0.09, "hardware": 0.11, "developer": 0.06, "privacy": 0.06,
}
TOPIC_MIX_AFTER: dict[str, float] = {
    "billing": 0.13, "refunds": 0.06, "shipping": 0.06, "account": 0.09, "storage": 0.08,
    "meetings": 0.06, "hardware": 0.03, "developer": 0.04, "privacy": 0.05,
    "plan_migration": 0.18, "ai_assistant": 0.14, "service_credits": 0.08,
}

# Claims a hallucinating model adds: plausible, specific, and absent from any context.
INVENTED_CLAIMS: tuple[str, ...] = (
    "Our {role}, {person}, personally reviews these requests within {n} hours.",
    "This was confirmed in the {month} {year} policy update.",
    "As a goodwill gesture you'll also get a ${amount} credit on your next invoice.",
    "The same terms apply to customers who signed up through {partner}.",
    "Since release {version} this limit was raised to {big} for every plan.",
    "You can also call our {city} office on extension {ext} for faster help.",
    "{person} from our {role} team announced this change on {date}.",
    "Customers in {country} additionally receive {n} extra days at no charge.",
    "This has been our policy since {date}, when we merged with {partner}.",
    "Over {pct}% of customers resolve this within {n} minutes using the self-service portal.",
)


def invented_claim_slots(rng: random.Random) -> Slots:
    return {
        "role": pick(rng, ROLES), "person": person(rng), "n": str(rng.randint(2, 96)),
        "month": pick(rng, MONTHS), "year": pick(rng, (2023, 2024, 2025)),
        "amount": pick(rng, (15, 20, 25, 40, 50, 75)), "partner": pick(rng, PARTNERS),
        "version": version(rng), "big": pick(rng, (750, 1500, 2400, 8000)),
        "city": pick(rng, ("Lisbon", "Austin", "Krakow", "Melbourne", "Vancouver", "Leeds")),
        "ext": str(rng.randint(200, 899)), "date": date_text(rng, (2023, 2024, 2025)),
        "country": pick(rng, COUNTRIES), "pct": str(rng.randint(61, 97)),
    }
