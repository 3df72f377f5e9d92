"""New campaign: the form (every SPEC §2 field, errors next to the field, the domain's validation) and the file."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from herald.store.tenancy import agents
from herald.web import campaign_form as cf

from .conftest import Console, csrf_of

EXAMPLES = Path(__file__).parents[2] / "src" / "herald" / "examples"


def _errors(html: str) -> dict[str, str]:
    return {key: unescape(text) for key, text in re.findall(r'<p class="error" id="e-([^"]+)">([^<]*)</p>', html)}


def _post(client: TestClient, **fields: Any) -> Any:
    token = csrf_of(client.get("/campaigns/new").text)
    return client.post("/campaigns/new", data={**cf.DEFAULTS, "csrf_token": token, **fields})


def _created_id(response: Any) -> int:
    assert response.status_code == 303, _errors(response.text)
    found = re.fullmatch(r"/campaigns/(\d+)/contacts/upload\?created=1", response.headers["location"])
    assert found is not None
    return int(found.group(1))


def test_the_form_has_a_labelled_input_for_every_campaign_field(console: Console) -> None:
    page = console.sign_in(console.acme).get("/campaigns/new").text
    labels = set(re.findall(r"<label for=\"f-([^\"]+)\">", page))
    for name in (
        "name", "description", "channel", "timezone", "default_region", "agent", "provider", "provider_options",
        "retries", "retry_delay_minutes", "failed_retry_limit", "concurrency_limit", "message_limit",
        "response_timeout_hours", "first_message", "template", "template_alt", "cycles.mode",
        "cycles.max_iterations", "cycles.cooldown_minutes", "cycles.filter_tags", "cycles.schedule_start_date",
        "cycles.schedule_end_date", "billing.machine_cap_seconds", "billing.unknown_as", "agent.tags",
        "agent.conversion.tag", "agent.conversion.field", "agent.follow_ups.startTime", "campaign_file",
    ):  # fmt: skip
        assert name in labels, name
    for weekday in ("Monday", "Sunday"):
        assert f'aria-label="{weekday} start time"' in page
    assert 'name="scheduling.enabled"' in page and 'name="cycles.enabled"' in page
    assert 'name="local_time"' in page and 'name="agent.fields.0.name"' in page


def test_a_campaign_with_its_own_agent_hours_and_cycles(console: Console) -> None:
    client = console.sign_in(console.acme)
    response = _post(
        client,
        name="Cobranza web",
        description="From the browser",
        retries="3",
        retry_delay_minutes="30",
        concurrency_limit="4",
        first_message="Hola {name}",
        **{
            "scheduling.enabled": "1",
            "scheduling.sat.active": "1",
            "scheduling.sat.startTime": "10:00",
            "scheduling.sat.stopTime": "",
            "agent.name": "Sofía",
            "agent.tags": "promise, wrong_number",
            "agent.fields.0.name": "payment_date",
            "agent.fields.0.type": "date",
            "agent.fields.2.name": "method",
            "agent.fields.2.type": "enum",
            "agent.fields.2.options": "app, cash",
            "agent.conversion.field": "payment_date",
            "cycles.enabled": "1",
            "cycles.max_iterations": "3",
            "cycles.cooldown_minutes": "120",
            "cycles.filter_statuses": ["answered", "voicemail"],
            "cycles.filter_tags": "wrong_number",
        },
    )
    campaign_id = _created_id(response)
    with console.store.read() as tx:
        campaign = tx.campaign(campaign_id)
    config = campaign.config
    assert campaign.business_id == console.acme.business_id and campaign.status.value == "pending"
    assert (config.name, config.description, config.retries, config.retry_delay_minutes) == (
        "Cobranza web", "From the browser", 3, 30
    )  # fmt: skip
    assert config.concurrency_limit == 4 and config.first_message == "Hola {name}"
    assert config.scheduling is not None and config.scheduling.sat is not None
    assert (config.scheduling.sat.startTime, config.scheduling.sat.stopTime) == ("10:00", "24:00")
    assert config.scheduling.sun is not None and not config.scheduling.sun.active
    assert config.agent.name == "Sofía" and config.agent.tags == ("promise", "wrong_number")
    assert [(f.name, f.type, f.options) for f in config.agent.fields] == [
        ("payment_date", "date", ()), ("method", "enum", ("app", "cash"))
    ]  # fmt: skip
    assert config.agent.conversion.field == "payment_date"
    assert config.cycles.enabled and config.cycles.max_iterations == 3 and config.cycles.cooldown_minutes == 120
    assert [str(s) for s in config.cycles.filter_statuses] == ["answered", "voicemail"]
    assert config.cycles.filter_tags == ("wrong_number",)
    assert "Cobranza web" in client.get("/").text


def test_a_campaign_on_one_of_the_business_agents_goes_through_the_api_service(console: Console) -> None:
    with console.store.read() as tx:
        agent = agents(tx, console.acme.business_id)[0]
    client = console.sign_in(console.acme)
    campaign_id = _created_id(_post(client, name="On my agent", agent=agent.public_id, channel="whatsapp",
                                    template="reminder_v1", message_limit="500"))  # fmt: skip
    with console.store.read() as tx:
        campaign = tx.campaign(campaign_id)
    assert campaign.agent_id == agent.id and campaign.integration_id is not None
    assert campaign.config.channel.value == "whatsapp" and campaign.config.message_limit == 500
    assert campaign.config.agent == agent.config


def test_errors_are_shown_next_to_their_fields_and_the_input_is_kept(console: Console) -> None:
    client = console.sign_in(console.acme)
    response = _post(
        client,
        name="Bad one",
        retries="9",
        timezone="Mars/Olympus",
        **{
            "scheduling.enabled": "1",
            "scheduling.mon.active": "1",
            "scheduling.mon.stopTime": "08:00",
            "agent.fields.1.name": "amount",
            "agent.fields.1.type": "enum",
            "cycles.max_iterations": "20",
        },
    )
    assert response.status_code == 400
    errors = _errors(response.text)
    assert "less than or equal to 5" in errors["retries"]
    assert "Mars/Olympus" in errors["timezone"]
    assert "must be after startTime" in errors["scheduling.mon"]
    assert "needs options" in errors["agent.fields.1.options"]  # the row it was typed in, though row 0 is blank
    assert "less than or equal to 12" in errors["cycles.max_iterations"]
    assert 'value="Bad one"' in response.text and 'value="Mars/Olympus"' in response.text
    assert 'aria-invalid="true" aria-describedby="e-retries"' in response.text
    # Rules between fields: a WhatsApp field on a phone campaign, a conversion tag the agent does not have.
    response = _post(client, name="Mixed", template="tpl", **{"agent.conversion.tag": "nope"})
    assert response.status_code == 400
    errors = _errors(response.text)
    assert "not one of the agent's tags" in errors["agent.conversion.tag"]
    response = _post(client, name="Mixed", template="tpl")
    assert "cannot be set on a phone_call campaign" in _errors(response.text)["template"]
    response = _post(client, name="Twilio texts", channel="whatsapp", template="tpl", provider="twilio")
    assert response.status_code == 400
    assert "provider 'twilio' works on phone_call campaigns only" in _errors(response.text)["provider"]
    with console.store.read() as tx:
        assert tx.connection.exec_driver_sql("SELECT count(*) FROM campaigns").scalar_one() == 0


def test_a_campaign_file_upload(console: Console) -> None:
    client = console.sign_in(console.acme)
    token = csrf_of(client.get("/campaigns/new").text)
    example = (EXAMPLES / "collections.yaml").read_bytes()
    response = client.post(
        "/campaigns/new/file",
        data={"csrf_token": token},
        files={"campaign_file": ("collections.yaml", example, "application/yaml")},
    )
    campaign_id = _created_id(response)
    with console.store.read() as tx:
        campaign = tx.campaign(campaign_id)
    assert campaign.name == "Cobranza noviembre" and campaign.business_id == console.acme.business_id
    bad = client.post(
        "/campaigns/new/file",
        data={"csrf_token": token},
        files={"campaign_file": ("bad.yaml", b"name: x\nchannel: fax\n", "application/yaml")},
    )
    assert bad.status_code == 400
    assert "channel" in _errors(bad.text)["campaign_file"]
    forged = client.post(
        "/campaigns/new/file", data={"csrf_token": "x"}, files={"campaign_file": ("c.yaml", example, "text/yaml")}
    )
    assert forged.status_code == 403


def test_creating_needs_the_csrf_token(console: Console) -> None:
    client = console.sign_in(console.acme)
    assert client.post("/campaigns/new", data={**cf.DEFAULTS, "name": "x"}).status_code == 403
    assert console.client().get("/campaigns/new").status_code == 303


def test_place_puts_a_model_error_on_the_input_it_names() -> None:
    known = cf.FORM_KEYS
    message = "template, template_alt cannot be set on a phone_call campaign"
    assert cf.place((), message, known) == ["template", "template_alt"]
    assert cf.place((), "cycles.filter_tags names tags the agent does not have: x", known) == ["cycles.filter_tags"]
    assert cf.place(("cycles",), "mode: scheduled needs a schedule", known) == ["cycles.mode"]
    assert cf.place(("scheduling", "mon"), "stopTime 08:00 must be after startTime", known) == ["scheduling.mon"]
    assert cf.place(("agent",), "conversion tag 'x' is not one of the agent's tags", known) == [
        "agent.conversion.tag", "agent.tags"
    ]  # fmt: skip
    assert cf.place(("nonsense", 3), "whatever", known) == ["form"]
