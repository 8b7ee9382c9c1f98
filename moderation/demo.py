"""A demo newspaper, The Millbrook Courier: its site, articles, people and comments.

``flask demo seed`` builds it. The Courier, its town and everyone in it are fictional, written
for this project. Comments go through ``submit_comment`` (real scores and reasons) and the
moderator's decisions through ``decide_comment``, so the demo shows every status a comment can
have and a queue with work in it.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from auth.models import ApiToken, SiteMembership, SiteRole, User
from moderation import service
from moderation.extensions import db
from moderation.models import Comment, Site
from moderation.policy import SiteSettings
from moderation.status import Action, Status

__all__ = [
    "ARTICLES",
    "DEMO_SITE_KEY",
    "DemoArticle",
    "article_for",
    "demo_origins",
    "seed",
]

DEMO_SITE_KEY = "millbrook-courier"
DEMO_SITE_NAME = "The Millbrook Courier"
DEMO_EMAIL_DOMAIN = "millbrook.example"
DEFAULT_PORT = 5000
DEMO_IP = "127.0.0.1"
DEMO_USER_AGENT = "flask demo seed"


@dataclass(frozen=True)
class DemoArticle:
    """A demo article: what the article page shows above its comments."""

    slug: str
    title: str
    author: str
    date: str  # ISO date
    paragraphs: tuple[str, ...]


ARTICLES: dict[str, DemoArticle] = {
    article.slug: article
    for article in (
        DemoArticle(
            slug="council-backs-mill-race-footbridge",
            title="Council backs new footbridge over the Mill Race after late-night vote",
            author="Harriet Okafor",
            date="2026-11-18",
            paragraphs=(
                "Millbrook's town council voted seven to four on Tuesday night to build a "
                "pedestrian and cycle bridge across the Mill Race, ending a decade of argument "
                "over how people on the east bank should reach the station without walking "
                "along the busy Quay Road.",
                "The £2.4 million bridge will land beside the old tannery steps and join the "
                "towpath near Wharf Lane. Around a third of the budget goes on foundations "
                "designed to stand up to the floods that swept away the last crossing in 1987, "
                "according to the engineers' report presented to councillors.",
                "Councillor Bea Lindqvist, who proposed the motion, said the vote was about "
                "safety as much as convenience. “Every morning I watch children squeeze past "
                "lorries on a pavement barely wider than a buggy,” she told the chamber. “We "
                "can fix that, and tonight we chose to.”",
                "Opponents questioned the price at a time when the library's opening hours have "
                "been cut. Councillor Derek Samms asked why the scheme could not wait for a "
                "regional transport grant expected next spring, and warned that contingency "
                "funds on similar projects had been spent within months.",
                "Construction is due to begin in March and to pause during the autumn salmon "
                "run, when work in the river is restricted. The council expects the bridge to "
                "open the following summer, and says the full plans and cost breakdown are in "
                "the appendix to Tuesday's meeting papers.",
            ),
        ),
        DemoArticle(
            slug="harbour-festival-record-crowds",
            title="Harbour festival draws record crowds despite the drizzle",
            author="Tomás Reyes",
            date="2026-11-21",
            paragraphs=(
                "More than eighteen thousand people packed Millbrook harbour over the weekend "
                "for the thirty-second Harbour Festival, the largest attendance since the event "
                "began as a single afternoon of boat races in 1994.",
                "Steady drizzle on Saturday did little to dampen the lantern parade, led this "
                "year by pupils from St Brigid's Primary with a six-metre paper herring that "
                "took the school three weeks to build. The procession wound from the fish "
                "market to the lifeboat station as the harbour lights came on.",
                "The food stalls along the north quay sold out of crab rolls by mid-afternoon on "
                "both days, and the Millbrook Sea Shanty Choir drew a crowd of several hundred "
                "to the bandstand for a set that finished, by tradition, in the rain.",
                "Organisers said the new shuttle bus from the railway station carried fewer "
                "passengers than hoped, and acknowledged that parking on the harbour approach "
                "roads had been difficult. A review of transport arrangements is planned before "
                "next year's festival.",
                "Festival chair Morwenna Tait thanked the two hundred volunteers who marshalled, "
                "cleaned and sold programmes. “The town turned up, wet and cheerful, and that is "
                "all a festival needs,” she said. Lost property can be collected from the "
                "harbour master's office until the end of the month.",
            ),
        ),
        DemoArticle(
            slug="millbrook-high-robotics-nationals",
            title="Millbrook High robotics team heads to the national finals",
            author="Priya Nandakumar",
            date="2026-11-24",
            paragraphs=(
                "A team of eleven students from Millbrook High School has qualified for the "
                "national schools robotics finals in Birmingham next month, after finishing "
                "second of forty-two teams at the regional round on Saturday.",
                "Their robot, nicknamed Gull, was built over eight months in a converted "
                "science storeroom. It scored the highest marks of the day in the "
                "drone-retrieval challenge, in which robots must find and recover a small "
                "package from an obstacle course without any help from their operators.",
                "The club is run by physics teacher Ms Ada Adeyemi-Clarke, who started it six "
                "years ago with a borrowed soldering iron and a box of parts from a closing "
                "electronics shop. “They design, they break things, they fix them,” she said. "
                "“That is the whole of engineering, really.”",
                "The team now needs to raise around three thousand pounds for travel, "
                "accommodation and spare parts. The school's parent-teacher association is "
                "collecting donations at the school office, and a hardware shop on Quay Street "
                "has offered to match every pound given before the end of the month.",
            ),
        ),
    )
}


@dataclass(frozen=True)
class DemoPerson:
    """A demo account."""

    key: str
    name: str
    role: SiteRole | None = None  # owner or moderator of the demo site; None: a commenter
    token: bool = False

    @property
    def email(self) -> str:
        """The person's demo e-mail address."""
        return f"{self.key}@{DEMO_EMAIL_DOMAIN}"


PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson("editor", "Margaret Hale", SiteRole.OWNER, token=True),
    DemoPerson("moderator", "Sam Whitlock", SiteRole.MODERATOR, token=True),
    DemoPerson("joan", "Joan Pemberton", token=True),
    DemoPerson("dev", "Dev Malhotra"),
    DemoPerson("ruth", "Ruth Abernethy"),
    DemoPerson("kwame", "Kwame Mensah"),
    DemoPerson("lena", "Lena Fischer"),
    DemoPerson("marcus", "Marcus Bell"),
    DemoPerson("olu", "Olu Adeyemi"),
    DemoPerson("tess", "Tess Marlow"),
    DemoPerson("cashfast", "Cash Fast Online"),
)


@dataclass(frozen=True)
class DemoComment:
    """A scripted comment and what the moderator does with it once it is posted."""

    label: str
    article: str
    author: str
    body: str
    reply_to: str | None = None
    moderator: Action | None = None
    reason: str | None = None


FOOTBRIDGE, FESTIVAL, ROBOTICS = ARTICLES

COMMENTS: tuple[DemoComment, ...] = (
    # The footbridge. Every new author's first comment is held until one is approved.
    DemoComment(
        "joan-bridge",
        FOOTBRIDGE,
        "joan",
        "Finally! I've asked for a safe crossing at the Mill Race since my kids were in primary "
        "school. Thank you to the councillors who voted yes.",
        moderator=Action.APPROVE,
    ),
    DemoComment(
        "dev-cost",
        FOOTBRIDGE,
        "dev",
        "£2.4 million seems a lot for a footbridge. Has anyone seen the full cost breakdown? "
        "The article mentions contingency but not how much.",
        moderator=Action.APPROVE,
    ),
    DemoComment(
        "ruth-appendix",
        FOOTBRIDGE,
        "ruth",
        "The breakdown is in the appendix to the council papers, page 14. About a third of it "
        "is the flood-proof foundations.",
        reply_to="dev-cost",
        moderator=Action.APPROVE,
    ),
    DemoComment(
        "kwame-width",
        FOOTBRIDGE,
        "kwame",
        "Will the bridge be wide enough for cargo bikes and wheelchairs? The old towpath gate "
        "is impossible with a buggy.",
        moderator=Action.APPROVE,
    ),
    DemoComment(
        "joan-width",
        FOOTBRIDGE,
        "joan",
        "The plans say three metres wide with no barriers at either end, so it should be fine.",
        reply_to="kwame-width",
    ),
    DemoComment(
        "marcus-moron",
        FOOTBRIDGE,
        "marcus",
        "Typical Millbrook council, wasting our money again. Anyone who voted for this is a "
        "pathetic moron and an idiot, shut up.",
        moderator=Action.REJECT,
        reason="Personal insult; the point about cost is made above.",
    ),
    DemoComment(
        "lena-corrupt",
        FOOTBRIDGE,
        "lena",
        "The council is corrupt, they gave the contract to the mayor's brother-in-law.",
    ),
    DemoComment(
        "dev-thanks",
        FOOTBRIDGE,
        "dev",
        "Thanks Ruth, that appendix answers my question. Still pricey, but the flood "
        "defences make sense.",
        reply_to="ruth-appendix",
    ),
    DemoComment(
        "cash-bridge",
        FOOTBRIDGE,
        "cashfast",
        "Make $5000 a week from home!!! Visit http://bit.ly/cash-now http://cash.example.biz "
        "subscribe now",
    ),
    DemoComment("marcus-banned", FOOTBRIDGE, "marcus", "Only a scumbag would defend this vote."),
    DemoComment(
        "kwame-salmon",
        FOOTBRIDGE,
        "kwame",
        "Good to see the construction will avoid the salmon run in October. Someone at the "
        "council did their homework.",
    ),
    # The harbour festival.
    DemoComment(
        "ruth-lanterns",
        FESTIVAL,
        "ruth",
        "The lantern parade was the best I've seen in twenty years. Well done to the "
        "volunteers who kept it going in the rain.",
    ),
    DemoComment(
        "olu-choir",
        FESTIVAL,
        "olu",
        "First time at the festival after moving here in the summer. What a welcome! Does "
        "anyone know if the shanty choir takes new members?",
    ),
    DemoComment(
        "joan-herring",
        FESTIVAL,
        "joan",
        "Agreed, and the paper herring from St Brigid's was wonderful.",
        reply_to="ruth-lanterns",
    ),
    DemoComment(
        "lena-parking",
        FESTIVAL,
        "lena",
        "Parking was a nightmare. Could the council run a park and ride from the leisure "
        "centre next year?",
        moderator=Action.APPROVE,
    ),
    DemoComment(
        "dev-shuttle",
        FESTIVAL,
        "dev",
        "There was a shuttle bus from the station, but hardly anyone knew about it. Better "
        "signs would help.",
        reply_to="lena-parking",
    ),
    DemoComment(
        "tess-cupcakes",
        FESTIVAL,
        "tess",
        "Loved the festival! Visit my shop for 20% off cupcakes all week, order online at "
        "http://tesstreats.example http://tesstreats.example/offers http://bit.ly/tess-deal",
        moderator=Action.SPAM,
        reason="Advertising.",
    ),
    DemoComment(
        "kwame-crab",
        FESTIVAL,
        "kwame",
        "The queue at the fish stall was an hour long but the crab rolls were worth every minute.",
    ),
    DemoComment(
        "marcus-lanterns",
        FESTIVAL,
        "marcus",
        "Shut up about your stupid lanterns, you idiots. Festival was rubbish and so is "
        "everyone who went.",
    ),
    DemoComment(
        "ruth-platform",
        FESTIVAL,
        "ruth",
        "A note for next year: the accessible viewing platform by the lifeboat station filled "
        "up early. More space there would be appreciated.",
    ),
    DemoComment(
        "cash-watches",
        FESTIVAL,
        "cashfast",
        "Cheap watches and handbags, best prices!!! http://replica-deals.example "
        "http://bit.ly/replica-now buy now",
    ),
    DemoComment(
        "dev-rucksack",
        FESTIVAL,
        "dev",
        "Lost a blue rucksack near the bandstand on Saturday. If anyone found it please call "
        "me on 07700 900123.",
        moderator=Action.DELETE,
        reason="Removed at the author's request: a phone number.",
    ),
    # The robotics team.
    DemoComment(
        "joan-nephew",
        ROBOTICS,
        "joan",
        "Congratulations to the whole team! My nephew is on the build crew and hasn't stopped "
        "talking about the gearbox.",
    ),
    DemoComment(
        "kwame-sponsor",
        ROBOTICS,
        "kwame",
        "Brilliant to see our school competing with the big academies. Is there a way for "
        "local businesses to sponsor the trip?",
    ),
    DemoComment(
        "ruth-donations",
        ROBOTICS,
        "ruth",
        "The article says the PTA is collecting donations at the school office, and the "
        "hardware shop on Quay Street is matching them.",
        reply_to="kwame-sponsor",
    ),
    DemoComment(
        "lena-drone",
        ROBOTICS,
        "lena",
        "Great achievement. The drone-retrieval challenge sounds fiendishly hard.",
    ),
    DemoComment(
        "dev-teacher",
        ROBOTICS,
        "dev",
        "Ms Adeyemi-Clarke deserves a medal for running this club on a shoestring for six years.",
    ),
    DemoComment(
        "marcus-robots",
        ROBOTICS,
        "marcus",
        "Robots won't get these kids jobs. Waste of school time if you ask me.",
        moderator=Action.APPROVE,
        reason="Blunt, but a fair opinion.",
    ),
    DemoComment(
        "cash-easy",
        ROBOTICS,
        "cashfast",
        "Work from home and earn $$$ fast, no experience needed! Click "
        "http://bit.ly/easy-money-now",
        moderator=Action.SPAM,
    ),
    DemoComment(
        "joan-solder",
        ROBOTICS,
        "joan",
        "Hear, hear. She taught my daughter to solder in Year 8.",
        reply_to="dev-teacher",
    ),
    DemoComment(
        "kwame-stream",
        ROBOTICS,
        "kwame",
        "What time is the livestream of the finals? It would be great to watch it together at "
        "the community centre.",
    ),
)

# The Courier's moderation settings: its lawyers want accusations reviewed before they appear.
DEMO_SETTINGS = SiteSettings(
    banned_words=("scumbag",),
    suspect_words=("corrupt", "fraud"),
)


def demo_origins(port: str | int | None = None) -> list[str]:
    """The demo site's origins: the dev server on 5000, and on ``PORT`` if that is set."""
    ports = [DEFAULT_PORT]
    chosen = port if port is not None else os.environ.get("PORT", "").strip()
    if chosen and str(chosen).isdigit() and int(chosen) not in ports:
        ports.insert(0, int(chosen))
    return [f"http://{host}:{number}" for number in ports for host in ("127.0.0.1", "localhost")]


def article_for(site_key: str, slug: str) -> DemoArticle | None:
    """The demo article for an article page, if the page is one of the demo site's."""
    return ARTICLES.get(slug) if site_key == DEMO_SITE_KEY else None


def _remove_demo() -> None:
    # The database cascades: threads, comments, decisions, memberships and tokens go too.
    db.session.execute(sa.delete(Site).where(Site.key == DEMO_SITE_KEY))
    db.session.execute(sa.delete(User).where(User.email.like(f"%@{DEMO_EMAIL_DOMAIN}")))
    db.session.commit()


def _create_people(site: Site) -> tuple[dict[str, User], dict[str, str]]:
    users: dict[str, User] = {}
    tokens: dict[str, str] = {}
    for person in PEOPLE:
        user = db.session.scalar(sa.select(User).where(User.email == person.email))
        if user is None:
            user = User(email=person.email, display_name=person.name)
            db.session.add(user)
        if person.role is not None:
            db.session.add(SiteMembership(user=user, site=site, role=person.role))
        if person.token:
            token, plain = ApiToken.issue(user, name="demo")
            db.session.add(token)
            tokens[person.key] = plain
        users[person.key] = user
    db.session.commit()
    return users, tokens


def _post(
    item: DemoComment, urls: dict[str, str], users: dict[str, User], posted: dict[str, Comment]
) -> None:
    parent = posted.get(item.reply_to) if item.reply_to else None
    # A reply goes under its parent only if the parent is visible (the model may hold it).
    parent_id = parent.id if parent is not None and parent.status == Status.PUBLISHED else None
    comment, _ = service.submit_comment(
        service.NewComment(
            site_key=DEMO_SITE_KEY,
            url=urls[item.article],
            title=ARTICLES[item.article].title,
            body=item.body,
            parent_id=parent_id,
            author=users[item.author],
            ip=DEMO_IP,
            user_agent=DEMO_USER_AGENT,
        )
    )
    posted[item.label] = comment


def seed(reset: bool = False, port: str | int | None = None) -> dict[str, Any]:
    """Create the demo site, people and comments (nothing if it exists, unless ``reset``)."""
    existing = db.session.scalar(sa.select(Site).where(Site.key == DEMO_SITE_KEY))
    if existing is not None and not reset:
        return {
            "created": False,
            "site": DEMO_SITE_KEY,
            "message": "The demo site exists already; run `flask demo seed --reset` to rebuild "
            "it (API tokens are shown only when they are created).",
        }
    _remove_demo()

    origins = demo_origins(port)
    # The flood limit is off while the script posts, then set back for people trying the demo.
    seeding = DEMO_SETTINGS.with_updates({"flood_seconds": 0})
    site = Site(key=DEMO_SITE_KEY, name=DEMO_SITE_NAME, origins=origins)
    site.moderation_settings = seeding
    db.session.add(site)
    db.session.commit()
    users, tokens = _create_people(site)
    moderator = users["moderator"]

    urls = {slug: f"{origins[0]}/articles/{slug}" for slug in ARTICLES}
    posted: dict[str, Comment] = {}
    for item in COMMENTS:
        _post(item, urls, users, posted)
        if item.moderator is not None:
            posted[item.label] = service.decide_comment(
                posted[item.label].id, item.moderator, moderator, reason=item.reason
            )

    site = db.session.scalar(sa.select(Site).where(Site.key == DEMO_SITE_KEY))
    site.moderation_settings = DEMO_SETTINGS
    db.session.commit()

    statuses = Counter(
        str(status)
        for status in db.session.scalars(
            sa.select(Comment.status).where(Comment.site_id == site.id)
        )
    )
    accounts = []
    for person in PEOPLE:
        if person.role is not None or person.token:
            account = {
                "role": str(person.role or "commenter"),
                "email": person.email,
                "name": person.name,
                "user_id": users[person.key].id,
            }
            if person.key in tokens:
                account["token"] = tokens[person.key]
            accounts.append(account)
    return {
        "created": True,
        "site": DEMO_SITE_KEY,
        "name": DEMO_SITE_NAME,
        "origins": origins,
        "articles": [
            {"title": article.title, "url": urls[slug], "path": f"/articles/{slug}"}
            for slug, article in ARTICLES.items()
        ],
        "accounts": accounts,
        "comments": {str(status): statuses.get(str(status), 0) for status in Status},
        # The review desk: moderators log in by e-mail; without MAIL_SERVER the login link is
        # written to the console of the running app.
        "desk": {
            "path": "/moderate",
            "login": f"Open /auth/login?next=/moderate and ask for a link for "
            f"moderator@{DEMO_EMAIL_DOMAIN}; without MAIL_SERVER the link appears in this console.",
        },
    }
