"""Done when: booking a session queues the confirmation and delivers it through the
clinic's own provider, and a second clinic's emails go through its own provider."""

from __future__ import annotations

from tests.notifications.conftest import MailApp


async def test_booking_confirmation_goes_through_each_clinic_own_provider(mail: MailApp) -> None:
    a, b = mail.world.a, mail.world.b
    await mail.book(a)
    await mail.book(b)
    # Queued in the booking's transaction, not yet sent.
    assert [m["status"] for m in await mail.messages(a.admin)] == ["QUEUED"]
    assert not mail.providers.sendgrid.accepted and not mail.providers.mailgun.accepted

    stats = await mail.deliver()
    assert stats.delivered == 2

    sent_a = mail.providers.sendgrid.accepted
    sent_b = mail.providers.mailgun.accepted
    assert [m["to"] for m in sent_a] == [[a.own_patient.email]]
    assert [m["to"] for m in sent_b] == [[b.own_patient.email]]
    assert sent_a[0]["mail"]["subject"] == "Your session is booked"
    assert sent_b[0]["subject"] == "Your session is booked"
    # The clinic's name is the sender name; the From address is the plugin's.
    assert sent_a[0]["mail"]["from"] == {"email": "care@clinic-a.example", "name": a.clinic.name}
    assert sent_b[0]["from"] == f'"{b.clinic.name}" <care@mg.clinic-b.example>'

    listed_a = await mail.messages(a.admin)
    listed_b = await mail.messages(b.admin)
    assert [(m["notification"], m["status"], m["provider"]) for m in listed_a] == [
        ("session_booked", "SENT", "mail_sendgrid")
    ]
    assert [(m["notification"], m["status"], m["provider"]) for m in listed_b] == [
        ("session_booked", "SENT", "mail_mailgun")
    ]
    assert listed_a[0]["providerMessageId"] == sent_a[0]["id"]
    assert listed_b[0]["providerMessageId"] == sent_b[0]["id"]
    # Each admin sees only their own clinic's messages.
    assert {m["id"] for m in listed_a}.isdisjoint({m["id"] for m in listed_b})


async def test_email_carries_no_clinical_detail(mail: MailApp) -> None:
    a = mail.world.a
    await mail.book(a)
    await mail.deliver()
    mail_json = mail.providers.sendgrid.accepted[0]["mail"]
    text = " ".join(c["value"] for c in mail_json["content"])
    assert a.own_patient.first_name in text
    # Not the surname, birth date, or the private notes of any session.
    assert a.own_patient.last_name not in text
    assert "private notes" not in text and "1990" not in text
    # Custom args carry identifiers only.
    assert set(mail_json["custom_args"]) == {"santana_message", "santana_clinic", "notification"}


async def test_clinic_without_a_provider_still_books_and_records_not_sent(mail: MailApp) -> None:
    b = mail.world.b
    disable = """mutation { disableIntegration(plugin: "mail_mailgun") { plugin status } }"""
    await mail.gql.data(disable, user=b.admin)
    await mail.book(b)
    [message] = await mail.messages(b.admin)
    assert message["status"] == "NOT_SENT"
    assert message["statusReason"] == "No email provider is enabled for this clinic."
    assert await mail.outbox(b.clinic.id) == []
    # The development mailbox captured it for the developer.
    box = await mail.gql.data("{ devMailbox { via to subject } }", user=b.admin)
    assert box["devMailbox"] == [
        {"via": "no provider", "to": [b.own_patient.email], "subject": "Your session is booked"}
    ]
    # Another clinic's admin does not see it.
    assert (await mail.gql.data("{ devMailbox { id } }", user=mail.world.a.admin))[
        "devMailbox"
    ] == []
