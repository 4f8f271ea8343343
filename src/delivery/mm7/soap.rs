//! MM7 on the wire (3GPP TS 23.140, SOAP 1.1 over HTTP with MIME attachments): the SubmitReq a
//! VASP sends as `multipart/related`, the answers it reads back, the requests an MMSC sends the
//! VASP (DeliverReq, DeliveryReportReq, ReadReplyReq) and the responses and faults it writes.
//! Written from the specification's element tables; the XML is read with `roxmltree` and the
//! MIME with `mail-parser`.

use chrono::{DateTime, SecondsFormat, Utc};
use mail_parser::MimeHeaders;

/// The SOAP 1.1 envelope namespace.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// The MM7 versions this server speaks, with their schema namespace's last segment.
pub const VERSIONS: &[(&str, &str)] = &[
    ("5.3.0", "REL-5-MM7-1-0"),
    ("5.5.0", "REL-5-MM7-1-1"),
    ("5.6.0", "REL-5-MM7-1-2"),
    ("6.8.0", "REL-6-MM7-1-4"),
];

/// The schema namespace of MM7 `version`, if it is one this server speaks.
pub fn namespace(version: &str) -> Option<String> {
    VERSIONS
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, schema)| {
            format!("http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/{schema}")
        })
}

/// `text` with the five XML special characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// One content item of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub content_type: String,
    /// Its Content-ID, without angle brackets.
    pub content_id: String,
    pub bytes: Vec<u8>,
}

/// What a SubmitReq carries.
#[derive(Debug, Clone)]
pub struct SubmitReq<'a> {
    pub version: &'a str,
    pub transaction_id: &'a str,
    pub vasp_id: &'a str,
    pub vas_id: &'a str,
    pub service_code: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub expiry: DateTime<Utc>,
    pub text: &'a str,
    pub media: &'a [Item],
}

/// An HTTP request body and its Content-Type.
#[derive(Debug, Clone)]
pub struct Body {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The Content-ID of the SOAP part of every request this server sends.
pub const SOAP_PART_ID: &str = "mm7-soap";
/// The Content-ID of the content part (what `Content href="cid:…"` names).
pub const CONTENT_PART_ID: &str = "mm7-content";
/// The Content-ID of the text item.
pub const TEXT_ITEM_ID: &str = "text-1.txt";
/// The Content-ID of the SMIL presentation, when there is one.
pub const SMIL_ITEM_ID: &str = "presentation.smil";

impl SubmitReq<'_> {
    /// The SOAP envelope alone.
    pub fn envelope(&self) -> String {
        let ns = namespace(self.version).unwrap_or_default();
        let sender = if self.from.is_empty() {
            String::new()
        } else {
            format!(
                "<SenderAddress><Number>{}</Number></SenderAddress>",
                escape(self.from)
            )
        };
        let vas = if self.vas_id.is_empty() {
            String::new()
        } else {
            format!("<VASID>{}</VASID>", escape(self.vas_id))
        };
        let service_code = if self.service_code.is_empty() {
            String::new()
        } else {
            format!("<ServiceCode>{}</ServiceCode>", escape(self.service_code))
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
             <env:Envelope xmlns:env=\"{SOAP_ENV}\">\
             <env:Header><mm7:TransactionID xmlns:mm7=\"{ns}\" env:mustUnderstand=\"1\">{tid}</mm7:TransactionID></env:Header>\
             <env:Body><SubmitReq xmlns=\"{ns}\">\
             <MM7Version>{version}</MM7Version>\
             <SenderIdentification><VASPID>{vasp}</VASPID>{vas}{sender}</SenderIdentification>\
             <Recipients><To><Number>{to}</Number></To></Recipients>\
             {service_code}\
             <ExpiryDate>{expiry}</ExpiryDate>\
             <DeliveryReport>true</DeliveryReport>\
             <Content href=\"cid:{CONTENT_PART_ID}\" allowAdaptations=\"true\"/>\
             </SubmitReq></env:Body></env:Envelope>",
            tid = escape(self.transaction_id),
            version = escape(self.version),
            vasp = escape(self.vasp_id),
            to = escape(self.to),
            expiry = self.expiry.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
    }

    /// The content items in order: the text (when there is any), then the media.
    pub fn items(&self) -> Vec<Item> {
        let mut items = Vec::with_capacity(self.media.len() + 1);
        if !self.text.is_empty() {
            items.push(Item {
                content_type: "text/plain; charset=utf-8".into(),
                content_id: TEXT_ITEM_ID.into(),
                bytes: self.text.as_bytes().to_vec(),
            });
        }
        items.extend(self.media.iter().cloned());
        items
    }

    /// The whole request: `multipart/related`, the SOAP part first (the root), then the
    /// content — a `multipart/mixed` of the items, or with more than one item a
    /// `multipart/related` whose root is a SMIL presentation laying them out.
    pub fn body(&self, boundary: &str) -> Body {
        let outer = format!("mm7-{boundary}");
        let inner = format!("mm7c-{boundary}");
        let items = self.items();
        let smil = (items.len() > 1).then(|| smil(&items));
        let content_type = match &smil {
            Some(_) => format!(
                "multipart/related; type=\"application/smil\"; start=\"<{SMIL_ITEM_ID}>\"; boundary=\"{inner}\""
            ),
            None => format!("multipart/mixed; boundary=\"{inner}\""),
        };
        let mut bytes = Vec::new();
        let mut put = |s: &str| bytes.extend_from_slice(s.as_bytes());
        put(&format!(
            "--{outer}\r\nContent-Type: text/xml; charset=utf-8\r\nContent-ID: <{SOAP_PART_ID}>\r\n\r\n"
        ));
        put(&self.envelope());
        put(&format!(
            "\r\n--{outer}\r\nContent-Type: {content_type}\r\nContent-ID: <{CONTENT_PART_ID}>\r\n\r\n"
        ));
        let mut parts: Vec<(String, String, Vec<u8>)> = Vec::new();
        if let Some(smil) = smil {
            parts.push((
                "application/smil; charset=utf-8".into(),
                SMIL_ITEM_ID.into(),
                smil.into_bytes(),
            ));
        }
        for item in items {
            parts.push((item.content_type, item.content_id, item.bytes));
        }
        for (content_type, id, data) in parts {
            bytes.extend_from_slice(
                format!("--{inner}\r\nContent-Type: {content_type}\r\nContent-ID: <{id}>\r\n")
                    .as_bytes(),
            );
            // The text and the presentation as they are; media in base64, byte for byte.
            if id == TEXT_ITEM_ID || id == SMIL_ITEM_ID {
                bytes.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n\r\n");
                bytes.extend_from_slice(&data);
            } else {
                bytes.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
                bytes.extend_from_slice(base64_lines(&data).as_bytes());
            }
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(format!("--{inner}--\r\n\r\n--{outer}--\r\n").as_bytes());
        Body {
            content_type: format!(
                "multipart/related; type=\"text/xml\"; start=\"<{SOAP_PART_ID}>\"; boundary=\"{outer}\""
            ),
            bytes,
        }
    }
}

/// `data` in base64, in lines of 76 characters (RFC 2045).
fn base64_lines(data: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 * 2);
    for (i, chunk) in encoded.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    out
}

/// A SMIL presentation showing `items` one slide each, in order.
fn smil(items: &[Item]) -> String {
    let mut slides = String::new();
    for item in items {
        let region = if item.content_type.starts_with("text/") {
            "Text"
        } else {
            "Image"
        };
        let element = match item.content_type.split('/').next() {
            Some("text") => "text",
            Some("image") => "img",
            Some("video") => "video",
            Some("audio") => "audio",
            _ => "ref",
        };
        slides.push_str(&format!(
            "<par dur=\"5000ms\"><{element} src=\"cid:{}\" region=\"{region}\"/></par>",
            escape(&item.content_id)
        ));
    }
    format!(
        "<smil><head><layout><root-layout width=\"320\" height=\"480\"/>\
         <region id=\"Image\" top=\"0\" left=\"0\" width=\"320\" height=\"360\" fit=\"meet\"/>\
         <region id=\"Text\" top=\"360\" left=\"0\" width=\"320\" height=\"120\" fit=\"scroll\"/>\
         </layout></head><body>{slides}</body></smil>"
    )
}

/// An MM7 status: its code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: u32,
    pub text: String,
}

/// What the MMSC answered a SubmitReq with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitAnswer {
    /// `SubmitRsp` with its status, and the MessageID when it gave one.
    Submitted {
        status: Status,
        message_id: Option<String>,
    },
    /// `RSErrorRsp`, or a SOAP Fault whose detail carries an MM7 status.
    Error(Status),
    /// A SOAP Fault without an MM7 status: its `faultcode` (`Client`, `Server`, …) and string.
    Fault { fault_code: String, text: String },
}

/// Reads an answer to a SubmitReq (a bare SOAP envelope, or one inside `multipart/related`).
pub fn read_submit_answer(content_type: &str, body: &[u8]) -> Result<SubmitAnswer, String> {
    let xml = soap_part(content_type, body)?;
    let doc = roxmltree::Document::parse(&xml).map_err(|e| format!("not XML: {e}"))?;
    let body = soap_body(&doc)?;
    let answer = body
        .children()
        .find(|n| n.is_element())
        .ok_or("an empty SOAP Body")?;
    match answer.tag_name().name() {
        "SubmitRsp" => Ok(SubmitAnswer::Submitted {
            status: status_of(answer)?,
            message_id: child_text(answer, "MessageID"),
        }),
        "RSErrorRsp" | "VASPErrorRsp" => Ok(SubmitAnswer::Error(status_of(answer)?)),
        "Fault" => {
            let detail_status = answer
                .descendants()
                .find(|n| n.is_element() && n.tag_name().name() == "Status")
                .and_then(|status| status_of_node(status).ok());
            if let Some(status) = detail_status {
                return Ok(SubmitAnswer::Error(status));
            }
            let fault_code = child_text(answer, "faultcode").unwrap_or_default();
            let fault_code = fault_code
                .rsplit_once(':')
                .map_or(fault_code.as_str(), |(_, local)| local)
                .to_owned();
            Ok(SubmitAnswer::Fault {
                fault_code,
                text: child_text(answer, "faultstring").unwrap_or_default(),
            })
        }
        other => Err(format!("an unexpected answer element {other}")),
    }
}

/// The text of `node`'s first child element named `name` (any namespace), trimmed.
fn child_text(node: roxmltree::Node, name: &str) -> Option<String> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
        .map(|n| n.text().unwrap_or_default().trim().to_owned())
}

/// The `Status` child of `node`.
fn status_of(node: roxmltree::Node) -> Result<Status, String> {
    let status = node
        .children()
        .find(|n| n.is_element() && n.tag_name().name() == "Status")
        .ok_or("no Status")?;
    status_of_node(status)
}

fn status_of_node(status: roxmltree::Node) -> Result<Status, String> {
    let code = child_text(status, "StatusCode").ok_or("no StatusCode")?;
    let code = code
        .parse()
        .map_err(|_| format!("StatusCode {code:?} is not a number"))?;
    Ok(Status {
        code,
        text: child_text(status, "StatusText").unwrap_or_default(),
    })
}

/// The SOAP Body element of `doc`.
fn soap_body<'a>(doc: &'a roxmltree::Document) -> Result<roxmltree::Node<'a, 'a>, String> {
    let root = doc.root_element();
    if root.tag_name().name() != "Envelope" || root.tag_name().namespace() != Some(SOAP_ENV) {
        return Err("the root element is not a SOAP 1.1 Envelope".into());
    }
    root.children()
        .find(|n| n.is_element() && n.tag_name().name() == "Body")
        .ok_or_else(|| "the Envelope has no Body".into())
}

/// The SOAP envelope of a request or answer: the body itself when it is XML, else the root part
/// (`start`, or the first) of its `multipart/related`.
fn soap_part(content_type: &str, body: &[u8]) -> Result<String, String> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence.starts_with("multipart/") {
        let message = Mime::parse(content_type, body)?;
        let root = message.root().ok_or("the multipart has no parts")?;
        return String::from_utf8(root.bytes.clone())
            .map_err(|_| "the SOAP part is not UTF-8".to_owned());
    }
    String::from_utf8(body.to_vec()).map_err(|_| "the body is not UTF-8".to_owned())
}

/// A MIME part, flattened: its type, its Content-ID (no angle brackets) and decoded bytes.
#[derive(Debug, Clone)]
pub struct MimePart {
    pub content_type: String,
    pub content_id: Option<String>,
    pub bytes: Vec<u8>,
    /// The leaf parts under it when it is itself a multipart.
    pub children: Vec<MimePart>,
}

/// A `multipart/related` body: its root part's Content-ID (`start`) and its top-level parts.
#[derive(Debug, Clone)]
pub struct Mime {
    pub start: Option<String>,
    pub parts: Vec<MimePart>,
}

impl Mime {
    /// Parses `body` under its HTTP `content_type` (which must name a boundary).
    pub fn parse(content_type: &str, body: &[u8]) -> Result<Mime, String> {
        if content_type.contains(['\r', '\n']) {
            return Err("the Content-Type holds a line break".into());
        }
        let mut raw = format!("Content-Type: {content_type}\r\n\r\n").into_bytes();
        raw.extend_from_slice(body);
        let message = mail_parser::MessageParser::default()
            .parse(&raw[..])
            .ok_or("the body is not MIME")?;
        let root = message.part(0).ok_or("the body is not MIME")?;
        let mail_parser::PartType::Multipart(children) = &root.body else {
            return Err("the body is not a multipart".into());
        };
        if children.is_empty() {
            return Err("the multipart has no parts".into());
        }
        let parts = children
            .iter()
            .filter_map(|id| mime_part(&message, *id as usize))
            .collect::<Vec<_>>();
        let start = root
            .content_type()
            .and_then(|ct| ct.attribute("start"))
            .map(strip_brackets);
        Ok(Mime { start, parts })
    }

    /// The root part: the one `start` names, else the first.
    pub fn root(&self) -> Option<&MimePart> {
        self.start
            .as_deref()
            .and_then(|start| {
                self.parts
                    .iter()
                    .find(|p| p.content_id.as_deref() == Some(start))
            })
            .or_else(|| self.parts.first())
    }
}

fn strip_brackets(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

fn mime_part(message: &mail_parser::Message, id: usize) -> Option<MimePart> {
    let part = message.part(id as u32)?;
    let content_type = part
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_owned(),
        })
        .unwrap_or_else(|| "text/plain".into())
        .to_ascii_lowercase();
    let content_id = part.content_id().map(strip_brackets);
    let (bytes, children) = match &part.body {
        mail_parser::PartType::Multipart(ids) => (
            Vec::new(),
            ids.iter()
                .filter_map(|child| mime_part(message, *child as usize))
                .collect(),
        ),
        mail_parser::PartType::Text(text) | mail_parser::PartType::Html(text) => {
            (text.as_bytes().to_vec(), Vec::new())
        }
        mail_parser::PartType::Binary(data) | mail_parser::PartType::InlineBinary(data) => {
            (data.to_vec(), Vec::new())
        }
        mail_parser::PartType::Message(_) => (part.contents().to_vec(), Vec::new()),
    };
    Some(MimePart {
        content_type,
        content_id,
        bytes,
        children,
    })
}

/// A request from the MMSC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A delivery report for a message this server submitted.
    DeliveryReport {
        message_id: String,
        recipient: Option<String>,
        mm_status: String,
        status_text: Option<String>,
        date: Option<String>,
    },
    /// A message a phone sent to one of the VASP's numbers.
    Deliver {
        sender: String,
        recipient: String,
        linked_id: Option<String>,
        subject: Option<String>,
        /// The text items, joined by newlines.
        text: String,
        /// The other items, in order.
        media: Vec<Item>,
    },
    /// The recipient read (or deleted unread) a message this server submitted.
    ReadReply {
        message_id: String,
        recipient: Option<String>,
        read_status: String,
        status_text: Option<String>,
    },
}

impl Request {
    /// The name of the response element that answers it.
    pub fn response_name(&self) -> &'static str {
        match self {
            Request::DeliveryReport { .. } => "DeliveryReportRsp",
            Request::Deliver { .. } => "DeliverRsp",
            Request::ReadReply { .. } => "ReadReplyRsp",
        }
    }
}

/// A request as read: its transaction id and version (for the answer), and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub transaction_id: Option<String>,
    /// The namespace the request used (the answer uses it too).
    pub namespace: Option<String>,
    pub version: Option<String>,
    pub request: Result<Request, Refusal>,
}

/// Why a request is refused: an MM7 status (4xxx: the request is at fault) and a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u32,
    pub text: String,
}

impl Refusal {
    /// 4004, Validation error: the request is not a well-formed MM7 request.
    pub fn validation(text: impl Into<String>) -> Refusal {
        Refusal {
            code: 4004,
            text: text.into(),
        }
    }
}

/// The address inside a `Sender`, `Recipient` or `To` element (`Number`, `ShortCode` or
/// `RFC2822Address`), or its own text.
fn address_of(node: roxmltree::Node) -> Option<String> {
    let inner = node.children().find(|n| {
        n.is_element()
            && matches!(
                n.tag_name().name(),
                "Number" | "ShortCode" | "RFC2822Address"
            )
    });
    let text = match inner {
        Some(inner) => inner.text(),
        None => node.text(),
    };
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

fn child<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<roxmltree::Node<'a, 'a>> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

/// Reads a request from the MMSC (its HTTP Content-Type and body). Whatever it is, the answer
/// can be written from the result: a refusal becomes a SOAP Fault.
pub fn read_request(content_type: &str, body: &[u8]) -> Incoming {
    let mut incoming = Incoming {
        transaction_id: None,
        namespace: None,
        version: None,
        request: Err(Refusal::validation("not read")),
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let (xml, content) = if essence.starts_with("multipart/") {
        match Mime::parse(content_type, body) {
            Ok(mime) => {
                let Some(root) = mime.root() else {
                    incoming.request = Err(Refusal::validation("the multipart has no parts"));
                    return incoming;
                };
                let others: Vec<MimePart> = mime
                    .parts
                    .iter()
                    .filter(|p| !std::ptr::eq(*p, root))
                    .cloned()
                    .collect();
                (String::from_utf8(root.bytes.clone()).ok(), others)
            }
            Err(why) => {
                incoming.request = Err(Refusal::validation(format!("malformed MIME: {why}")));
                return incoming;
            }
        }
    } else if matches!(
        essence.as_str(),
        "text/xml" | "application/xml" | "application/soap+xml"
    ) {
        (String::from_utf8(body.to_vec()).ok(), Vec::new())
    } else {
        incoming.request = Err(Refusal::validation(format!(
            "the Content-Type {essence:?} is neither multipart/related nor text/xml"
        )));
        return incoming;
    };
    let Some(xml) = xml else {
        incoming.request = Err(Refusal::validation("the SOAP part is not UTF-8"));
        return incoming;
    };
    let doc = match roxmltree::Document::parse(&xml) {
        Ok(doc) => doc,
        Err(e) => {
            incoming.request = Err(Refusal::validation(format!("malformed XML: {e}")));
            return incoming;
        }
    };
    let root = doc.root_element();
    if let Some(header) = child(root, "Header") {
        incoming.transaction_id = child_text(header, "TransactionID").filter(|t| !t.is_empty());
    }
    let body = match soap_body(&doc) {
        Ok(body) => body,
        Err(why) => {
            incoming.request = Err(Refusal::validation(why));
            return incoming;
        }
    };
    let Some(req) = body.children().find(|n| n.is_element()) else {
        incoming.request = Err(Refusal::validation("an empty SOAP Body"));
        return incoming;
    };
    incoming.namespace = req.tag_name().namespace().map(str::to_owned);
    incoming.version = child_text(req, "MM7Version");
    incoming.request = read_body(req, &content);
    incoming
}

fn read_body(req: roxmltree::Node, content: &[MimePart]) -> Result<Request, Refusal> {
    let required = |name: &str| {
        child_text(req, name)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Refusal::validation(format!("{} has no {name}", req.tag_name().name())))
    };
    match req.tag_name().name() {
        "DeliveryReportReq" => Ok(Request::DeliveryReport {
            message_id: required("MessageID")?,
            recipient: child(req, "Recipient").and_then(address_of),
            mm_status: required("MMStatus")?,
            status_text: child_text(req, "StatusText"),
            date: child_text(req, "Date"),
        }),
        "ReadReplyReq" => Ok(Request::ReadReply {
            message_id: required("MessageID")?,
            recipient: child(req, "Recipient").and_then(address_of),
            read_status: required("MMStatus")?,
            status_text: child_text(req, "StatusText"),
        }),
        "DeliverReq" => {
            let sender = child(req, "Sender")
                .and_then(address_of)
                .ok_or_else(|| Refusal::validation("DeliverReq has no Sender"))?;
            let recipient = child(req, "Recipients")
                .and_then(|r| r.children().filter(|n| n.is_element()).find_map(address_of))
                .ok_or_else(|| Refusal::validation("DeliverReq has no recipient"))?;
            let href = child(req, "Content").and_then(|c| c.attribute("href"));
            let (text, media) = content_items(content, href)?;
            Ok(Request::Deliver {
                sender,
                recipient,
                linked_id: child_text(req, "LinkedID"),
                subject: child_text(req, "Subject"),
                text,
                media,
            })
        }
        other => Err(Refusal {
            code: 4003,
            text: format!("{other} is not an operation this server takes"),
        }),
    }
}

/// The text and media of a DeliverReq's content (the part `href` names, else every part after
/// the SOAP part), a SMIL presentation left out.
fn content_items(content: &[MimePart], href: Option<&str>) -> Result<(String, Vec<Item>), Refusal> {
    let wanted = href.map(|h| strip_brackets(h.trim_start_matches("cid:")));
    let chosen: Vec<&MimePart> = match &wanted {
        Some(id) => match content.iter().find(|p| p.content_id.as_deref() == Some(id)) {
            Some(part) => vec![part],
            None if content.is_empty() => {
                return Err(Refusal::validation(format!(
                    "the Content names cid:{id}, and the request has no content part"
                )))
            }
            None => content.iter().collect(),
        },
        None => content.iter().collect(),
    };
    let mut leaves = Vec::new();
    fn flatten<'a>(part: &'a MimePart, into: &mut Vec<&'a MimePart>) {
        if part.content_type.starts_with("multipart/") {
            for child in &part.children {
                flatten(child, into);
            }
        } else {
            into.push(part);
        }
    }
    for part in chosen {
        flatten(part, &mut leaves);
    }
    let mut texts = Vec::new();
    let mut media = Vec::new();
    for (n, leaf) in leaves.into_iter().enumerate() {
        match leaf.content_type.as_str() {
            "application/smil" => {}
            "text/plain" => texts.push(String::from_utf8_lossy(&leaf.bytes).trim().to_owned()),
            other => media.push(Item {
                content_type: other.to_owned(),
                content_id: leaf
                    .content_id
                    .clone()
                    .unwrap_or_else(|| format!("item-{}", n + 1)),
                bytes: leaf.bytes.clone(),
            }),
        }
    }
    Ok((texts.join("\n"), media))
}

/// The response to a request: `name` (DeliverRsp, …) with `status`, in the request's namespace.
pub fn response(name: &str, incoming: &Incoming, default_version: &str, status: &Status) -> String {
    let ns = incoming
        .namespace
        .clone()
        .or_else(|| namespace(default_version))
        .unwrap_or_default();
    let version = incoming.version.as_deref().unwrap_or(default_version);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <env:Envelope xmlns:env=\"{SOAP_ENV}\">{header}\
         <env:Body><{name} xmlns=\"{ns}\"><MM7Version>{version}</MM7Version>\
         <Status><StatusCode>{code}</StatusCode><StatusText>{text}</StatusText></Status>\
         </{name}></env:Body></env:Envelope>",
        header = header(incoming, &ns),
        ns = escape(&ns),
        version = escape(version),
        code = status.code,
        text = escape(&status.text),
    )
}

/// A SOAP Fault carrying an MM7 `RSErrorRsp` (the refusal's status) in its detail.
pub fn fault(incoming: &Incoming, default_version: &str, refusal: &Refusal) -> String {
    let ns = incoming
        .namespace
        .clone()
        .filter(|ns| ns.contains("/23.140/schema/"))
        .or_else(|| namespace(default_version))
        .unwrap_or_default();
    let version = incoming.version.as_deref().unwrap_or(default_version);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <env:Envelope xmlns:env=\"{SOAP_ENV}\">{header}\
         <env:Body><env:Fault><faultcode>env:Client</faultcode><faultstring>{text}</faultstring>\
         <detail><RSErrorRsp xmlns=\"{ns}\"><MM7Version>{version}</MM7Version>\
         <Status><StatusCode>{code}</StatusCode><StatusText>{text}</StatusText></Status>\
         </RSErrorRsp></detail></env:Fault></env:Body></env:Envelope>",
        header = header(incoming, &ns),
        ns = escape(&ns),
        version = escape(version),
        code = refusal.code,
        text = escape(&refusal.text),
    )
}

fn header(incoming: &Incoming, ns: &str) -> String {
    match &incoming.transaction_id {
        Some(tid) => format!(
            "<env:Header><mm7:TransactionID xmlns:mm7=\"{}\" env:mustUnderstand=\"1\">{}</mm7:TransactionID></env:Header>",
            escape(ns),
            escape(tid)
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit<'a>(text: &'a str, media: &'a [Item]) -> SubmitReq<'a> {
        SubmitReq {
            version: "6.8.0",
            transaction_id: "t-1",
            vasp_id: "vasp",
            vas_id: "vas",
            service_code: "code-1",
            from: "+15551112222",
            to: "+15554443333",
            expiry: DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            text,
            media,
        }
    }

    /// The SubmitReq reads back as what it was made from: envelope fields, parts, Content-IDs
    /// and the media's bytes.
    #[test]
    fn a_submit_req_reads_back_part_by_part() {
        let png = vec![0x89, b'P', b'N', b'G', 0, 1, 2, 255, b'\r', b'\n'];
        let media = [Item {
            content_type: "image/png".into(),
            content_id: "media-1.png".into(),
            bytes: png.clone(),
        }];
        let request = submit("héllo <&>", &media);
        let body = request.body("b0undary");
        let mime = Mime::parse(&body.content_type, &body.bytes).unwrap();
        assert_eq!(mime.start.as_deref(), Some(SOAP_PART_ID));
        let root = mime.root().unwrap();
        assert_eq!(root.content_type, "text/xml");
        let xml = String::from_utf8(root.bytes.clone()).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let req = soap_body(&doc).unwrap().first_element_child().unwrap();
        assert_eq!(req.tag_name().name(), "SubmitReq");
        assert_eq!(req.tag_name().namespace(), namespace("6.8.0").as_deref());
        assert_eq!(
            child_text(req, "ExpiryDate").unwrap(),
            "2026-12-07T10:00:00Z"
        );
        let content = &mime.parts[1];
        assert_eq!(content.content_id.as_deref(), Some(CONTENT_PART_ID));
        assert_eq!(content.content_type, "multipart/related");
        let ids: Vec<_> = content
            .children
            .iter()
            .map(|c| (c.content_type.as_str(), c.content_id.as_deref().unwrap()))
            .collect();
        assert_eq!(
            ids,
            [
                ("application/smil", SMIL_ITEM_ID),
                ("text/plain", TEXT_ITEM_ID),
                ("image/png", "media-1.png")
            ]
        );
        assert_eq!(content.children[1].bytes, "héllo <&>".as_bytes());
        assert_eq!(content.children[2].bytes, png);
        // One item: no SMIL.
        let single = submit("only text", &[]).body("b");
        let mime = Mime::parse(&single.content_type, &single.bytes).unwrap();
        assert_eq!(mime.parts[1].content_type, "multipart/mixed");
        assert_eq!(mime.parts[1].children.len(), 1);
    }

    #[test]
    fn answers_are_classified_by_element_and_status() {
        let ns = namespace("6.8.0").unwrap();
        let rsp = format!(
            "<env:Envelope xmlns:env=\"{SOAP_ENV}\"><env:Body><SubmitRsp xmlns=\"{ns}\"><MM7Version>6.8.0</MM7Version><Status><StatusCode>1000</StatusCode><StatusText>Success</StatusText></Status><MessageID>abc-1</MessageID></SubmitRsp></env:Body></env:Envelope>"
        );
        assert_eq!(
            read_submit_answer("text/xml", rsp.as_bytes()).unwrap(),
            SubmitAnswer::Submitted {
                status: Status {
                    code: 1000,
                    text: "Success".into()
                },
                message_id: Some("abc-1".into())
            }
        );
        let fault = format!(
            "<soap:Envelope xmlns:soap=\"{SOAP_ENV}\"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>busy</faultstring></soap:Fault></soap:Body></soap:Envelope>"
        );
        assert_eq!(
            read_submit_answer("text/xml; charset=utf-8", fault.as_bytes()).unwrap(),
            SubmitAnswer::Fault {
                fault_code: "Server".into(),
                text: "busy".into()
            }
        );
        let incoming = Incoming {
            transaction_id: Some("x".into()),
            namespace: Some(ns.clone()),
            version: Some("6.8.0".into()),
            request: Err(Refusal::validation("v")),
        };
        let detail = fault_text(&incoming);
        assert_eq!(
            read_submit_answer("text/xml", detail.as_bytes()).unwrap(),
            SubmitAnswer::Error(Status {
                code: 4004,
                text: "bad <input>".into()
            })
        );
        assert!(read_submit_answer("text/xml", b"<not-soap/>").is_err());
        assert!(read_submit_answer("text/xml", b"\xff").is_err());
    }

    fn fault_text(incoming: &Incoming) -> String {
        fault(incoming, "6.8.0", &Refusal::validation("bad <input>"))
    }

    #[test]
    fn malformed_requests_are_refusals_not_panics() {
        for (ct, body) in [
            ("text/xml", &b""[..]),
            ("text/xml", b"<a>"),
            ("multipart/related; boundary=x", b"garbage"),
            ("multipart/related", b"--x\r\n\r\n--x--"),
            ("application/json", b"{}"),
            ("text/xml", b"<Envelope/>"),
        ] {
            let incoming = read_request(ct, body);
            let refusal = incoming.request.unwrap_err();
            assert!((4000..5000).contains(&refusal.code), "{ct} {body:?}");
        }
    }
}
