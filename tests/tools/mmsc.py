#!/usr/bin/env python3
"""An MMS centre (MMSC) for AgentMessage's tests: the MM7 relay/server side of 3GPP TS 23.140
(SOAP 1.1 over HTTP with MIME attachments), written from the specification's element tables
with the standard library only (http.server, email, xml.etree).

It checks every SubmitReq field by field -- HTTP headers, the multipart/related structure, the
SOAP envelope and header, the SubmitReq's elements and their order, Content-IDs, the SMIL
presentation -- and reports each one as a JSON line on stdout, with the problems it found and a
SHA-256 of every content item's bytes (the tests compare them with the source media). It answers
as scripted on stdin.

    python3 mmsc.py [--port N] [--username U --password P] [--vasp-id V]
                    [--tls-cert PEM --tls-key PEM]

stdout, one JSON object per line:
    {"event": "listening", "port": N}
    {"event": "submit", "n": 1, "transaction_id": ..., "fields": {...}, "items": [...],
     "problems": [...], "answer": "1000", "message_id": "mmsc-1"}

stdin, one JSON object per line:
    {"answers": ["1000", "2002", "3001", "fault", "hang", "http503", "slow:500"]}
        the answers to the next submissions, in order (after them: the default)
    {"default": "1000"}

Answers: a four-digit MM7 status (1xxx: a SubmitRsp with a MessageID; 2xxx, 3xxx, 4xxx: a SOAP
Fault whose detail is an RSErrorRsp with that status, HTTP 500 as SOAP 1.1 has it), "fault" (a
SOAP Fault "Server" without an MM7 status), "hang" (the request is read and never answered),
"http503" (HTTP 503 with an HTML body), "slow:MS" (1000 after MS milliseconds).
"""

import argparse
import base64
import email
import email.policy
import hashlib
import json
import re
import ssl
import sys
import threading
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SCHEMA = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/"
# TS 23.140: the MM7 version and the namespace of its schema.
VERSIONS = {
    "5.3.0": "REL-5-MM7-1-0",
    "5.5.0": "REL-5-MM7-1-1",
    "5.6.0": "REL-5-MM7-1-2",
    "6.8.0": "REL-6-MM7-1-4",
}
# The SubmitReq's elements in the order of the schema's sequence (REL-6-MM7-1-4).
SUBMIT_ORDER = [
    "MM7Version", "SenderIdentification", "Recipients", "PreferredChannels", "ServiceCode",
    "LinkedID", "MessageClass", "TimeStamp", "ReplyCharging", "EarliestDeliveryTime",
    "ExpiryDate", "DeliveryReport", "ReadReply", "Priority", "Subject", "ChargedParty",
    "ChargedPartyID", "ThirdPartyPayer", "DistributionIndicator", "DeliveryCondition",
    "ApplicID", "ReplyApplicID", "AuxApplicInfo", "ContentClass", "DRMContent", "Content",
]
REQUIRED = ["MM7Version", "SenderIdentification", "Recipients", "Content"]
SENDER_ORDER = ["VASPID", "VASID", "SenderAddress"]

lock = threading.Lock()
answers = []
state = {"default": "1000", "n": 0}


def emit(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def local(tag):
    return tag.rsplit("}", 1)[-1]


def ns_of(tag):
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else None


def header_params(value):
    """The parameters of a MIME header value, lower-cased names, unquoted values."""
    params = {}
    for piece in value.split(";")[1:]:
        if "=" in piece:
            name, val = piece.split("=", 1)
            params[name.strip().lower()] = val.strip().strip('"')
    return params


def bare_id(value):
    return (value or "").strip().strip("<>")


class Check:
    def __init__(self):
        self.problems = []

    def that(self, ok, text):
        if not ok:
            self.problems.append(text)
        return ok


def read_submit(handler, body, expect):
    """Checks one SubmitReq; returns the report (fields, items, problems)."""
    check = Check()
    fields = {}
    items = []
    content_type = handler.headers.get("Content-Type", "")
    check.that(handler.headers.get("SOAPAction") is not None, "no SOAPAction header")
    check.that(content_type.lower().startswith("multipart/related"),
               f"Content-Type {content_type!r} is not multipart/related")
    params = header_params(content_type)
    check.that(params.get("type") == "text/xml", f"multipart type {params.get('type')!r} is not text/xml")
    start = bare_id(params.get("start"))
    check.that(bool(start), "no start parameter naming the SOAP part")
    raw = b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if not check.that(message.is_multipart(), "the body is not a multipart"):
        return fields, items, check.problems
    parts = message.get_payload()
    check.that(len(parts) == 2, f"{len(parts)} top-level parts, not 2 (SOAP, content)")
    root = parts[0]
    check.that(bare_id(root.get("Content-ID")) == start, "the first part is not the start part")
    check.that(root.get_content_type() == "text/xml", f"the SOAP part is {root.get_content_type()}")
    xml = root.get_payload(decode=True)
    try:
        envelope = ET.fromstring(xml)
    except ET.ParseError as e:
        check.that(False, f"the SOAP part is not XML: {e}")
        return fields, items, check.problems
    check.that(envelope.tag == f"{{{SOAP_ENV}}}Envelope", f"the root is {envelope.tag}, not a SOAP 1.1 Envelope")
    header = envelope.find(f"{{{SOAP_ENV}}}Header")
    body_el = envelope.find(f"{{{SOAP_ENV}}}Body")
    if not check.that(body_el is not None and len(body_el) == 1, "the Body does not hold one element"):
        return fields, items, check.problems
    req = body_el[0]
    ns = ns_of(req.tag)
    fields["namespace"] = ns
    check.that(local(req.tag) == "SubmitReq", f"the Body holds {local(req.tag)}, not SubmitReq")
    tid = None
    if check.that(header is not None, "no SOAP Header"):
        tids = [e for e in header if local(e.tag) == "TransactionID"]
        if check.that(len(tids) == 1, "the Header has no TransactionID"):
            tid = (tids[0].text or "").strip()
            check.that(ns_of(tids[0].tag) == ns, "the TransactionID is not in the MM7 namespace")
            check.that(tids[0].get(f"{{{SOAP_ENV}}}mustUnderstand") == "1", "the TransactionID is not mustUnderstand=1")
            check.that(bool(tid), "an empty TransactionID")
    children = [local(e.tag) for e in req]
    for e in req:
        check.that(ns_of(e.tag) == ns, f"{local(e.tag)} is not in the SubmitReq's namespace")
    for name in REQUIRED:
        check.that(name in children, f"SubmitReq has no {name}")
    unknown = [c for c in children if c not in SUBMIT_ORDER]
    check.that(not unknown, f"elements the schema does not have: {unknown}")
    known = [SUBMIT_ORDER.index(c) for c in children if c in SUBMIT_ORDER]
    check.that(known == sorted(known) and len(set(known)) == len(known),
               f"elements out of the schema's order: {children}")

    def text(path):
        el = req.find(path, {"m": ns})
        return None if el is None else (el.text or "").strip()

    version = text("m:MM7Version")
    fields["version"] = version
    check.that(version in VERSIONS, f"MM7Version {version!r} is not a known version")
    if version in VERSIONS:
        check.that(ns == SCHEMA + VERSIONS[version], f"namespace {ns} does not match MM7Version {version}")
    sender = req.find("m:SenderIdentification", {"m": ns})
    if sender is not None:
        order = [local(e.tag) for e in sender]
        check.that(all(o in SENDER_ORDER for o in order) and order == sorted(order, key=SENDER_ORDER.index),
                   f"SenderIdentification's elements out of order: {order}")
    fields["vasp_id"] = text("m:SenderIdentification/m:VASPID")
    fields["vas_id"] = text("m:SenderIdentification/m:VASID")
    fields["sender"] = text("m:SenderIdentification/m:SenderAddress/m:Number")
    fields["recipient"] = text("m:Recipients/m:To/m:Number")
    fields["service_code"] = text("m:ServiceCode")
    fields["delivery_report"] = text("m:DeliveryReport")
    fields["expiry"] = text("m:ExpiryDate")
    fields["transaction_id"] = tid
    check.that(expect.get("vasp_id") is None or fields["vasp_id"] == expect["vasp_id"],
               f"VASPID {fields['vasp_id']!r}, expected {expect.get('vasp_id')!r}")
    check.that(fields["recipient"] is not None and re.fullmatch(r"\+?[0-9]{3,15}", fields["recipient"]) is not None,
               f"Recipients/To/Number {fields['recipient']!r} is not a number")
    check.that(fields["sender"] is not None, "no SenderAddress/Number")
    check.that(fields["delivery_report"] == "true", f"DeliveryReport {fields['delivery_report']!r}, not true")
    if check.that(fields["expiry"] is not None, "no ExpiryDate"):
        try:
            expiry = datetime.fromisoformat(fields["expiry"].replace("Z", "+00:00"))
            check.that(expiry.tzinfo is not None, "ExpiryDate has no offset")
            check.that(expiry > datetime.now(timezone.utc), f"ExpiryDate {fields['expiry']} is past")
        except ValueError:
            check.that(False, f"ExpiryDate {fields['expiry']!r} is not an xs:dateTime")
    content = req.find("m:Content", {"m": ns})
    href = content.get("href") if content is not None else None
    check.that(href is not None and href.startswith("cid:"), f"Content href {href!r} is not a cid: URI")
    if len(parts) < 2:
        return fields, items, check.problems
    content_part = parts[1]
    check.that(href is not None and bare_id(content_part.get("Content-ID")) == href[4:],
               f"the content part's Content-ID {content_part.get('Content-ID')!r} is not what Content href names ({href})")
    leaves = content_part.get_payload() if content_part.is_multipart() else [content_part]
    smil = None
    ids = set()
    for leaf in leaves:
        cid = bare_id(leaf.get("Content-ID"))
        check.that(bool(cid), f"a {leaf.get_content_type()} item has no Content-ID")
        check.that(cid not in ids, f"Content-ID {cid} is used twice")
        ids.add(cid)
        data = leaf.get_payload(decode=True) or b""
        if leaf.get_content_type() == "application/smil":
            smil = data.decode("utf-8", "replace")
            continue
        item = {
            "content_type": leaf.get_content_type(),
            "content_id": cid,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if leaf.get_content_type() == "text/plain":
            check.that((leaf.get_content_charset() or "") == "utf-8", "the text is not charset=utf-8")
            item["text"] = data.decode("utf-8", "replace")
        items.append(item)
    if len(items) > 1:
        if check.that(smil is not None, f"{len(items)} items and no SMIL presentation"):
            check.that(content_part.get_content_type() == "multipart/related",
                       "a content with a presentation is not multipart/related")
            check.that(bare_id(header_params(content_part.get("Content-Type", "")).get("start")) in ids,
                       "the content's start does not name the SMIL part")
            try:
                presentation = ET.fromstring(smil)
                srcs = {bare_id(e.get("src", "")[4:]) for e in presentation.iter() if e.get("src", "").startswith("cid:")}
                for item in items:
                    check.that(item["content_id"] in srcs, f"the SMIL does not show {item['content_id']}")
            except ET.ParseError as e:
                check.that(False, f"the SMIL is not XML: {e}")
    fields["smil"] = smil is not None
    return fields, items, check.problems


def envelope(ns, tid, body):
    header = ""
    if tid:
        header = (f'<env:Header><mm7:TransactionID xmlns:mm7="{ns}" env:mustUnderstand="1">'
                  f"{tid}</mm7:TransactionID></env:Header>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{SOAP_ENV}">'
            f"{header}<env:Body>{body}</env:Body></env:Envelope>").encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/xml; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        expect = self.server.expect
        if expect.get("username"):
            token = base64.b64encode(f"{expect['username']}:{expect['password']}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {token}":
                emit({"event": "unauthorized"})
                self.reply(401, b"unauthorized", "text/plain")
                return
        fields, items, problems = read_submit(self, body, expect)
        with lock:
            state["n"] += 1
            n = state["n"]
            answer = answers.pop(0) if answers else state["default"]
        ns = fields.get("namespace") or SCHEMA + VERSIONS["6.8.0"]
        version = fields.get("version") or "6.8.0"
        tid = fields.get("transaction_id")
        report = {"event": "submit", "n": n, "transaction_id": tid, "fields": fields, "items": items,
                  "problems": problems, "answer": answer}
        if answer.startswith("slow:"):
            time.sleep(int(answer[5:]) / 1000)
            answer = "1000"
        if answer == "hang":
            emit(report)
            time.sleep(3600)
            return
        if answer == "http503":
            emit(report)
            self.reply(503, b"<html><body>Service Unavailable</body></html>", "text/html")
            return
        if answer == "fault":
            emit(report)
            self.reply(500, envelope(ns, tid, "<env:Fault><faultcode>env:Server</faultcode>"
                                             "<faultstring>the relay is overloaded</faultstring></env:Fault>"))
            return
        code = int(answer)
        if 1000 <= code < 2000:
            message_id = f"mmsc-{n}"
            report["message_id"] = message_id
            emit(report)
            self.reply(200, envelope(ns, tid, f'<SubmitRsp xmlns="{ns}"><MM7Version>{version}</MM7Version>'
                                              f"<Status><StatusCode>{code}</StatusCode><StatusText>Success</StatusText></Status>"
                                              f"<MessageID>{message_id}</MessageID></SubmitRsp>"))
            return
        emit(report)
        text = {2002: "Address Error", 2007: "Message format corrupt", 3001: "Not Possible",
                3000: "Server error", 4006: "Service Unavailable"}.get(code, "Error")
        self.reply(500, envelope(ns, tid, f"<env:Fault><faultcode>env:{'Client' if code < 3000 else 'Server'}</faultcode>"
                                          f"<faultstring>{text}</faultstring><detail><RSErrorRsp xmlns=\"{ns}\">"
                                          f"<MM7Version>{version}</MM7Version><Status><StatusCode>{code}</StatusCode>"
                                          f"<StatusText>{text}</StatusText></Status></RSErrorRsp></detail></env:Fault>"))


def commands():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        command = json.loads(line)
        with lock:
            if "answers" in command:
                answers.extend(command["answers"])
            if "default" in command:
                state["default"] = command["default"]
        emit({"event": "scripted", "pending": len(answers)})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--vasp-id")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.expect = {"username": args.username, "password": args.password, "vasp_id": args.vasp_id}
    threading.Thread(target=commands, daemon=True).start()
    emit({"event": "listening", "port": server.server_address[1]})
    server.serve_forever()


if __name__ == "__main__":
    main()
