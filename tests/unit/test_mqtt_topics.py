"""The MQTT topic <-> NATS subject mapping of ``autarky.messaging.mqtt``: round trips, escaping, refusals.

The mapping is pure, so everything is checked here without a broker: every valid name survives both
ways, no escaped token can hold a NATS separator or wildcard, the bridge's subscriptions catch every
topic and subject the mapping writes, and wildcards, empty levels and non-canonical escapes are refused.
"""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from autarky.messaging.mqtt import (
    MAX_NAME_BYTES,
    Kind,
    Route,
    TopicError,
    TopicMap,
    check_name,
    escape_token,
    unescape_token,
)

TOPICS = TopicMap()


def _valid(name: str) -> bool:
    try:
        check_name(name)
    except TopicError:
        return False
    return True


names = st.text(min_size=1, max_size=40).filter(_valid)
routes = st.builds(Route, site=names, device=names, kind=st.sampled_from(list(Kind)))


def _nats_matches(subject: str, pattern: str) -> bool:
    """NATS subject matching (``*`` one token, ``>`` the rest), to check the bridge's subscriptions."""
    tokens, wanted = subject.split("."), pattern.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(tokens) == len(wanted)


# -- the documented examples -------------------------------------------------------------------------


def test_documented_mapping() -> None:
    route = Route("plant.north", "pump-7", Kind.READINGS)
    assert TOPICS.mqtt_topic(route) == "autarky/plant.north/pump-7/readings"
    assert TOPICS.nats_subject(route) == "autarky.m2m.plant%2Enorth.pump-7.readings"
    assert TOPICS.mqtt_to_nats("autarky/plant.north/pump-7/readings") == (
        "autarky.m2m.plant%2Enorth.pump-7.readings"
    )
    assert TOPICS.nats_to_mqtt("autarky.m2m.site-1.valve-7.commands") == "autarky/site-1/valve-7/commands"


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("pump-7", "pump-7"),
        ("a_b:c@d~e", "a_b:c@d~e"),
        ("plant.north", "plant%2Enorth"),
        ("Halle Süd", "Halle%20S%C3%BCd"),
        ("*", "%2A"),
        (">", "%3E"),
        ("100%", "100%25"),
        ("$SYS", "%24SYS"),
        (
            "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
            "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        ),
        ("tab\u00a0nbsp", "tab%C2%A0nbsp"),
    ],
)
def test_escape_examples(name: str, token: str) -> None:
    assert escape_token(name) == token
    assert unescape_token(token) == name


def test_filters() -> None:
    assert TOPICS.mqtt_filter(Kind.READINGS) == "autarky/+/+/readings"
    assert TOPICS.mqtt_filter(Kind.REPLIES, site="plant.north") == "autarky/plant.north/+/replies"
    assert TOPICS.nats_filter(Kind.COMMANDS) == "autarky.m2m.*.*.commands"
    assert TOPICS.nats_filter(Kind.COMMANDS, site="plant.north") == "autarky.m2m.plant%2Enorth.*.commands"


def test_custom_roots() -> None:
    topics = TopicMap(mqtt_root="factory/7/autarky", nats_root="factory7.m2m")
    route = Route("hall", "press", Kind.COMMANDS)
    assert topics.mqtt_topic(route) == "factory/7/autarky/hall/press/commands"
    assert topics.nats_subject(route) == "factory7.m2m.hall.press.commands"
    assert topics.parse_mqtt_topic("factory/7/autarky/hall/press/commands") == route
    with pytest.raises(TopicError, match="not under"):
        topics.parse_mqtt_topic("autarky/hall/press/commands")
    with pytest.raises(TopicError, match="not under"):
        topics.parse_nats_subject("autarky.m2m.hall.press.commands")


# -- properties ----------------------------------------------------------------------------------------


@given(names)
def test_escape_round_trips_and_is_a_single_safe_token(name: str) -> None:
    token = escape_token(name)
    assert unescape_token(token) == name
    assert token
    assert not any(char in token for char in ".*>/+#") and not any(char.isspace() for char in token)
    assert all(char in string.ascii_letters + string.digits + "-_:@~%" for char in token)


@given(names, names)
def test_escape_is_injective(first: str, second: str) -> None:
    assert (escape_token(first) == escape_token(second)) == (first == second)


@given(routes)
def test_routes_round_trip_both_ways(route: Route) -> None:
    topic, subject = TOPICS.mqtt_topic(route), TOPICS.nats_subject(route)
    assert TOPICS.parse_mqtt_topic(topic) == route
    assert TOPICS.parse_nats_subject(subject) == route
    assert TOPICS.mqtt_to_nats(topic) == subject
    assert TOPICS.nats_to_mqtt(subject) == topic
    assert len(subject.split(".")) == len(TOPICS.nats_root.split(".")) + 3
    assert len(topic.split("/")) == len(TOPICS.mqtt_root.split("/")) + 3


@given(routes)
def test_subscriptions_catch_every_route(route: Route) -> None:
    topic, subject = TOPICS.mqtt_topic(route), TOPICS.nats_subject(route)
    assert topic_matches_sub(TOPICS.mqtt_filter(route.kind), topic)
    assert topic_matches_sub(TOPICS.mqtt_filter(route.kind, site=route.site), topic)
    assert _nats_matches(subject, TOPICS.nats_filter(route.kind))
    assert _nats_matches(subject, TOPICS.nats_filter(route.kind, site=route.site))
    for other in Kind:
        if other is not route.kind:
            assert not topic_matches_sub(TOPICS.mqtt_filter(other), topic)
            assert not _nats_matches(subject, TOPICS.nats_filter(other))


@given(routes, names)
def test_a_site_filter_catches_only_its_site(route: Route, other_site: str) -> None:
    if other_site == route.site:
        return
    assert not topic_matches_sub(TOPICS.mqtt_filter(route.kind, site=other_site), TOPICS.mqtt_topic(route))
    assert not _nats_matches(TOPICS.nats_subject(route), TOPICS.nats_filter(route.kind, site=other_site))


@given(st.text(max_size=12))
def test_unescape_never_raises_anything_but_topic_error(token: str) -> None:
    try:
        name = unescape_token(token)
    except TopicError:
        return
    assert escape_token(name) == token


# -- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a/b",
        "+",
        "a+b",
        "#",
        "a#",
        "nul\x00",
        "line\nbreak",
        "del\x7f",
        "c1\x85",
        "x" * (MAX_NAME_BYTES + 1),
        "é" * (MAX_NAME_BYTES // 2 + 1),
        "lone\ud800",
    ],
)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(TopicError):
        check_name(name)
    with pytest.raises(TopicError):
        escape_token(name)
    with pytest.raises(TopicError):
        Route(name, "device", Kind.READINGS)
    with pytest.raises(TopicError):
        Route("site", name, Kind.READINGS)


def test_longest_name_is_accepted() -> None:
    name = "x" * MAX_NAME_BYTES
    assert unescape_token(escape_token(name)) == name


@pytest.mark.parametrize("value", [None, 7, b"site"])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(TopicError):
        check_name(value)  # type: ignore[arg-type]
    with pytest.raises(TopicError):
        unescape_token(value)  # type: ignore[arg-type]
    with pytest.raises(TopicError):
        TOPICS.parse_mqtt_topic(value)  # type: ignore[arg-type]
    with pytest.raises(TopicError):
        TOPICS.parse_nats_subject(value)  # type: ignore[arg-type]


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(TopicError):
        Route("site", "device", "events")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "topic",
    [
        "autarky/+/pump/readings",  # wildcard levels are filters, never topic names
        "autarky/site/+/readings",
        "autarky/#",
        "autarky/site/#",
        "autarky/site/pump/#",
        "autarky//pump/readings",  # empty level
        "autarky/site//readings",
        "autarky/site/pump/",
        "autarky/site/pump",  # too few levels
        "autarky/site/pump/readings/extra",  # too many
        "autarky/site/pump/events",  # unknown kind
        "autarky/site/pump/Readings",
        "other/site/pump/readings",  # another root
        "autarkyx/site/pump/readings",
        "/autarky/site/pump/readings",
        "autarky/site\x00/pump/readings",
        "",
    ],
)
def test_bad_mqtt_topics_are_refused(topic: str) -> None:
    with pytest.raises(TopicError):
        TOPICS.parse_mqtt_topic(topic)
    with pytest.raises(TopicError):
        TOPICS.mqtt_to_nats(topic)


@pytest.mark.parametrize(
    "subject",
    [
        "autarky.m2m.*.pump.commands",  # NATS wildcards
        "autarky.m2m.site.*.commands",
        "autarky.m2m.site.pump.>",
        "autarky.m2m.>",
        "autarky.m2m..pump.commands",  # empty token
        "autarky.m2m.site.pump",  # too few tokens
        "autarky.m2m.site.pump.commands.extra",
        "autarky.m2m.site.pump.orders",  # unknown kind
        "autarky.m2m.si te.pump.commands",  # whitespace
        "autarky.m2m.a/b.pump.commands",  # '/' is never written unescaped (and never a name)
        "autarky.m2m.plant%2enorth.pump.commands",  # lower-case hex is not canonical
        "autarky.m2m.%41.pump.commands",  # an escaped plain character is not canonical
        "autarky.m2m.%2F.pump.commands",  # decodes to '/', which no name holds
        "autarky.m2m.%2B.pump.commands",  # '+'
        "autarky.m2m.%00.pump.commands",  # a control character
        "autarky.m2m.%FF.pump.commands",  # not UTF-8
        "autarky.m2m.%C3.pump.commands",  # truncated UTF-8
        "autarky.m2m.%4.pump.commands",  # truncated escape
        "autarky.m2m.100%.pump.commands",
        "autarky.other.site.pump.commands",
        "autarky.m2mx.site.pump.commands",
        "",
    ],
)
def test_bad_nats_subjects_are_refused(subject: str) -> None:
    with pytest.raises(TopicError):
        TOPICS.parse_nats_subject(subject)
    with pytest.raises(TopicError):
        TOPICS.nats_to_mqtt(subject)


@pytest.mark.parametrize(
    ("mqtt_root", "nats_root"),
    [
        ("", "autarky.m2m"),
        ("autarky/+", "autarky.m2m"),
        ("autarky/#", "autarky.m2m"),
        ("autarky/", "autarky.m2m"),
        ("$SYS/autarky", "autarky.m2m"),
        ("autarky", ""),
        ("autarky", "autarky.*"),
        ("autarky", "autarky.>"),
        ("autarky", "autarky..m2m"),
        ("autarky", "autarky m2m"),
    ],
)
def test_bad_roots_are_refused(mqtt_root: str, nats_root: str) -> None:
    with pytest.raises(TopicError):
        TopicMap(mqtt_root=mqtt_root, nats_root=nats_root)


def test_filter_site_is_checked() -> None:
    with pytest.raises(TopicError):
        TOPICS.mqtt_filter(Kind.READINGS, site="+")
    with pytest.raises(TopicError):
        TOPICS.nats_filter(Kind.READINGS, site="a/b")


# -- `autarky mqtt map` ----------------------------------------------------------------------------------


def test_map_command_shows_both_sides() -> None:
    from typer.testing import CliRunner

    from autarky.cli import mqtt
    from autarky.cli.errors import UsageProblem

    runner = CliRunner()
    done = runner.invoke(mqtt.app, ["map", "autarky/plant.north/pump-7/readings", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {
        "mqtt": "autarky/plant.north/pump-7/readings",
        "nats": "autarky.m2m.plant%2Enorth.pump-7.readings",
        "site": "plant.north",
        "device": "pump-7",
        "kind": "readings",
    }
    done = runner.invoke(mqtt.app, ["map", "autarky.m2m.plant%2Enorth.pump-7.commands"])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [
        "MQTT autarky/plant.north/pump-7/commands",
        "NATS autarky.m2m.plant%2Enorth.pump-7.commands",
    ]
    done = runner.invoke(mqtt.app, ["map", "hall/press/commands", "--mqtt-root", "f7", "--nats-root", "f7"])
    # Outside the root group (which prints it as one line with exit code 2), the typed problem surfaces.
    assert isinstance(done.exception, UsageProblem)
    assert done.exception.code == "cli.mqtt_topic" and "not under 'f7/'" in done.exception.message
