#!/usr/bin/env python3
"""Writes the seed inputs of each fuzz target into corpus/<target>/, from the shapes the
integration tests send (tests/integration/webhooks_*.rs, activation_api.rs) and the fixtures.
Run once to start a corpus; scripts/fuzz then grows and minimizes it."""
import hashlib, json, os, pathlib, shutil

here = pathlib.Path(__file__).resolve().parent
root = here.parent.parent
corpus = here.parent / "corpus"

def put(target, data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)

for address in ["jane.doe@acme.com", "  Jane.Doe@Acme.COM ", "<jane.doe@acme.com>", "mailto:jane.doe@acme.com",
                "MAILTO:<jane.doe@acme.com>", "Jane Doe <jane.doe@acme.com>", "jane.doe@acme.com.,;",
                "anna@Bücher.de", "anna@xn--bcher-kva.de", "jane@@acme.com", "ja\u200bne@acme.com",
                "jane@[10.0.0.1]", "jane@-acme.com", "a+tag@sub.school.example", "jane@acme.com" + " ." * 40]:
    put("email_address", address)

def pm_bounce(kind, record="Bounce"):
    return {"RecordType": record, "ID": 42, "Type": kind, "TypeCode": 1, "Name": "Hard bounce",
            "MessageID": "msg-ada", "ServerID": 23, "MessageStream": "outbound",
            "Description": "The server was unable to deliver your message.",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Email": "Ada@School.example", "From": "noreply@example.com",
            "BouncedAt": "2026-11-26T04:00:00.123456Z", "Subject": "Your invitation",
            "Metadata": {"invite_ref": "<inv-1@invite-bot>"}}
for kind in ["HardBounce", "SoftBounce", "Blocked", "SpamComplaint"]:
    put("webhook_postmark", pm_bounce(kind))
put("webhook_postmark", pm_bounce("", "SpamComplaint"))
put("webhook_postmark", {"RecordType": "Delivery", "MessageID": "<msg-bob@host>", "Recipient": "bob@school.example",
                         "DeliveredAt": "2026-11-26T04:00:00Z", "Details": "Test delivery webhook details"})
put("webhook_postmark", {"RecordType": "Open", "MessageID": "msg-bob", "Recipient": "bob@school.example"})

def sg(kind, email="bob@school.example", **extra):
    event = {"email": email, "timestamp": 1795000000, "event": kind, "sg_event_id": "sg-1",
             "sg_message_id": "msg-bob.filterdrecv-5bd4b6dd4-abcde-1-5F2A-3.0",
             "smtp-id": "<msg-bob@ismtpd0001p1lon1.sendgrid.net>", "invite_ref": "inv-1@invite-bot"}
    event.update(extra)
    return event
put("webhook_sendgrid", [sg("processed"), sg("delivered"), sg("bounce", reason="550 5.1.1 no such user", type="bounce"),
                         sg("bounce", type="blocked"), sg("open")])
put("webhook_sendgrid", [sg("deferred", response="400 try again later"), sg("dropped", reason="Bounced Address"),
                         sg("spamreport", "cyd@school.example")])
put("webhook_sendgrid", [sg("dropped", reason="Unsubscribed Address", timestamp=1795000000.5)])

def mg(kind, severity=None):
    data = {"event": kind, "id": "ev-1", "timestamp": 1795000000.25, "recipient": "ada@school.example",
            "log-level": "error", "message": {"headers": {"message-id": "<msg-ada>", "to": "ada@school.example"}},
            "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist", "description": ""},
            "user-variables": {"invite_ref": "inv-1@invite-bot"}}
    if severity:
        data["severity"] = severity
    return {"signature": {"timestamp": "1795000000", "token": "0123456789abcdef0123456789abcdef",
                          "signature": "00" * 32}, "event-data": data}
for kind, severity in [("delivered", None), ("failed", "permanent"), ("failed", "temporary"), ("complained", None), ("opened", None)]:
    put("webhook_mailgun", mg(kind, severity))

def mail(message_id):
    return {"timestamp": "2026-11-26T03:59:00.000Z", "source": "noreply@example.com", "messageId": message_id,
            "destination": ["ada@school.example"], "commonHeaders": {"messageId": f"<{message_id}@eu-west-1.amazonses.com>"},
            "tags": {"invite_ref": ["inv-1_40invite-bot"]}}
ses_events = [
    {"eventType": "Bounce", "mail": mail("msg-ada"), "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
     "timestamp": "2026-11-26T04:00:00.000Z", "bouncedRecipients": [{"emailAddress": "ada@school.example", "action": "failed",
     "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}},
    {"eventType": "Delivery", "mail": mail("ses-internal-id"), "delivery": {"timestamp": "2026-11-26T04:01:00.000Z",
     "recipients": ["bob@school.example"], "smtpResponse": "250 2.6.0 Message received"}},
    {"eventType": "DeliveryDelay", "mail": mail("msg-cyd"), "deliveryDelay": {"timestamp": "2026-11-26T04:02:00.000Z",
     "delayType": "TransientCommunicationFailure", "delayedRecipients": [{"emailAddress": "cyd@school.example", "status": "4.4.1"}]}},
    {"notificationType": "Complaint", "mail": mail("msg-bob"), "complaint": {"timestamp": "2026-11-26T04:03:00.000Z",
     "complainedRecipients": [{"emailAddress": "bob@school.example"}]}},
]
for event in ses_events:
    put("webhook_ses", event)
    put("webhook_ses", {"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events",
                        "Message": json.dumps(event), "Timestamp": "2026-11-26T04:00:00.000Z", "SignatureVersion": "2",
                        "Signature": "AAAA", "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
                        "Subject": "Amazon SES Email Event Notification"})
put("webhook_ses", {"Type": "SubscriptionConfirmation", "MessageId": "sns-2", "TopicArn": "arn:aws:sns:eu-west-1:1:t",
                    "Message": "confirm", "Timestamp": "2026-11-26T04:00:00.000Z", "SignatureVersion": "1", "Signature": "AAAA",
                    "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
                    "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription", "Token": "t"})

for body in [{"email": "ada@school.example", "workspace": "school", "code": "K7QF-9MZX-2H"},
             {"email": "Ada <ada@school.example>", "workspace": "School", "code": "tok_0123456789abcdef"},
             {"email": "ada@school.example", "workspace": "no such", "code": " "},
             {"email": "ada", "workspace": "school", "code": "x", "extra": 1}]:
    put("activation_request", body)

for toml in [root / "fixtures" / "demo.toml", root / "tests" / "integration" / "fixtures" / "verdicts.toml"]:
    put("fixture", toml.read_bytes())
put("fixture", '[[workspace]]\nslug = "acme"\nname = "Acme"\n[[member]]\nworkspace = "acme"\nemail = "a@acme.com"\n'
               'role = "learner"\nstatus = "invited"\ninvited_at = "3 days ago"\n[[invitation]]\nworkspace = "acme"\n'
               'email = "a@acme.com"\nsent_at = 2026-11-20T09:30:00Z\nexpires_at = "+7d"\nmessage_id = "<m@x>"\n'
               '[[delivery_event]]\nemail = "a@acme.com"\nevent = "bounced"\nbounce = "hard"\nat = "-90m"\n'
               '[[suppression]]\nemail = "a@acme.com"\nreason = "manual"\nat = "in 2 hours"\n')

for custom_id in ["ib:ABCDEFGHJKMNPQRSTVWXYZ23", "ib:abcdefghijklmnopqrstuvwx", "ib:resend_invite:jane@acme.com", "ib:", "xx:ABCDEFGHJKMNPQRSTVWXYZ23"]:
    put("button_reference", custom_id)
