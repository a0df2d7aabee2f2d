//! Inbound payloads to core inquiries and cancellations, with every check of
//! SPEC section 5 ("Bad input"). Pure: bytes, headers and `now` in, a value or
//! a [`Rejection`] with a bounded reason out — so it can be fuzzed and the
//! dead-letter counter stays low-cardinality.

use crate::core::{self, Category, Channel, Customer, Millis};
use crate::proto;
use prost::Message;
use std::fmt;

/// Largest payload accepted (SPEC section 5).
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// How far in the future `created_at_ms` may be (clock skew allowance).
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// Why a message was rejected; the `reason` label of the dead-letter counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    Empty,
    Oversized,
    NotDecodable,
    MissingId,
    InvalidId,
    UnknownEnum,
    MissingCategory,
    OutOfRange,
    NegativeMoney,
    FutureTimestamp,
    InvalidField,
    BadSubject,
    ShopMismatch,
    UnknownInquiry,
}

impl RejectReason {
    /// Every reason, for pre-registering metrics.
    pub const ALL: [RejectReason; 14] = [
        RejectReason::Empty,
        RejectReason::Oversized,
        RejectReason::NotDecodable,
        RejectReason::MissingId,
        RejectReason::InvalidId,
        RejectReason::UnknownEnum,
        RejectReason::MissingCategory,
        RejectReason::OutOfRange,
        RejectReason::NegativeMoney,
        RejectReason::FutureTimestamp,
        RejectReason::InvalidField,
        RejectReason::BadSubject,
        RejectReason::ShopMismatch,
        RejectReason::UnknownInquiry,
    ];

    /// The metric label and header prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Empty => "empty",
            RejectReason::Oversized => "oversized",
            RejectReason::NotDecodable => "not_decodable",
            RejectReason::MissingId => "missing_id",
            RejectReason::InvalidId => "invalid_id",
            RejectReason::UnknownEnum => "unknown_enum",
            RejectReason::MissingCategory => "missing_category",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::NegativeMoney => "negative_money",
            RejectReason::FutureTimestamp => "future_timestamp",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::BadSubject => "bad_subject",
            RejectReason::ShopMismatch => "shop_mismatch",
            RejectReason::UnknownInquiry => "unknown_inquiry",
        }
    }
}

/// A rejected message: the reason and a sentence for the publisher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
}

impl Rejection {
    fn new(reason: RejectReason, message: impl Into<String>) -> Rejection {
        Rejection { reason, message: message.into() }
    }
}

impl fmt::Display for Rejection {
    /// The `Ticket-Router-Error` header value: `reason: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.message)
    }
}

/// The payload format named by a `Content-Type` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Protobuf,
}

/// Protobuf when the header says so, JSON otherwise (SPEC section 5: a
/// missing, JSON or any other type is read as JSON).
pub fn format_of(content_type: Option<&str>) -> Format {
    let essence = content_type.and_then(|raw| raw.split(';').next()).unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/protobuf" | "application/x-protobuf" => Format::Protobuf,
        _ => Format::Json,
    }
}

/// Whether `name` can be a language or skill name, for agents and
/// inquiries alike: 1-64 letters, digits, `_`, `-`, `.` or `:`.
pub fn is_usable_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
}

/// Any message of `proto/` (e.g. one the router published), in the format
/// its `Content-Type` names.
pub fn decode_as<T: Message + Default + serde::de::DeserializeOwned>(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, Rejection> {
    decode(format_of(content_type), body)
}

fn decode<T: Message + Default + serde::de::DeserializeOwned>(format: Format, body: &[u8]) -> Result<T, Rejection> {
    if body.is_empty() {
        return Err(Rejection::new(RejectReason::Empty, "the message body is empty"));
    }
    if body.len() > MAX_PAYLOAD {
        return Err(Rejection::new(
            RejectReason::Oversized,
            format!("the body has {} bytes; the limit is {MAX_PAYLOAD}", body.len()),
        ));
    }
    match format {
        Format::Protobuf => T::decode(body)
            .map_err(|e| Rejection::new(RejectReason::NotDecodable, format!("not a valid protobuf message ({e})"))),
        Format::Json => serde_json::from_slice(body).or_else(|e| {
            // Proto3 JSON reads `null` as the field's default; pbjson takes it
            // only for messages, and publishers in Python or JavaScript send
            // it for unset fields. Dropped and decoded again, on this cold
            // path; whatever else is wrong is then told of the rest.
            match without_nulls::<T>(body) {
                Some(rest) => serde_json::from_slice(&rest).map_err(|e| json_rejection::<T>(&rest, e)),
                None => Err(json_rejection::<T>(body, e)),
            }
        }),
    }
}

/// The body without its `"field": null` entries, when decoding it failed at
/// such a field (not for other faults, which stay as they were sent).
fn without_nulls<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<Vec<u8>> {
    fn strip(value: &mut serde_json::Value) {
        if let serde_json::Value::Object(fields) = value {
            fields.retain(|_, v| !v.is_null());
            fields.values_mut().for_each(strip);
        }
    }
    let path = failure_path::<T>(body)?;
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value_at(&value, &path).filter(|v| v.is_null())?;
    strip(&mut value);
    serde_json::to_vec(&value).ok()
}

/// Where decoding `body` as `T` fails, when that is inside the message.
fn failure_path<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<serde_path_to_error::Path> {
    let failed = serde_path_to_error::deserialize::<_, T>(&mut serde_json::Deserializer::from_slice(body)).err()?;
    Some(failed.path().clone()).filter(|p| p.iter().next().is_some())
}

/// Why a JSON body did not decode, naming the field when there is one. Only
/// runs for bad input, so it may decode the body twice more.
fn json_rejection<T: serde::de::DeserializeOwned>(body: &[u8], e: serde_json::Error) -> Rejection {
    // pbjson doubles the word in its message for an unknown number.
    let text = e.to_string().replace("expected expected", "expected");
    let unknown_number = text.contains("invalid value: integer") && text.contains("expected one of");
    if text.contains("unknown variant") || text.contains("invalid enum") || unknown_number {
        return Rejection::new(RejectReason::UnknownEnum, format!("not a valid JSON payload ({text})"));
    }
    let Some(path) = failure_path::<T>(body) else {
        // No JSON object at all: most likely protobuf sent without its header.
        let hint = if body.trim_ascii_start().starts_with(b"{") {
            ""
        } else {
            "; a protobuf body needs the header `Content-Type: application/protobuf`"
        };
        return Rejection::new(RejectReason::NotDecodable, format!("not a valid JSON payload ({text}){hint}"));
    };
    // A number the (numeric) field cannot hold — negative for an unsigned
    // field, too large, a fraction for an integer — is out of range, not
    // garbage; a number where text or a flag belongs is just the wrong type.
    let numeric_field = !text.contains("invalid type");
    let value = serde_json::from_slice::<serde_json::Value>(body).ok();
    if let Some(number) = value.as_ref().and_then(|v| value_at(v, &path)).filter(|v| v.is_number() && numeric_field) {
        return Rejection::new(
            RejectReason::OutOfRange,
            format!("{path} is {number}, which this field cannot hold; send a whole number in its range"),
        );
    }
    Rejection::new(RejectReason::NotDecodable, format!("not a valid JSON payload ({path}: {text})"))
}

/// The JSON value at `path` in `value`, if the path leads somewhere.
fn value_at<'v>(value: &'v serde_json::Value, path: &serde_path_to_error::Path) -> Option<&'v serde_json::Value> {
    use serde_path_to_error::Segment;
    path.iter().try_fold(value, |value, segment| match segment {
        Segment::Map { key } => value.get(key.as_str()),
        Segment::Seq { index } => value.get(*index),
        _ => None,
    })
}

/// The shop id of `<prefix>.<kind>.<shop_id>`.
pub fn shop_of_subject<'a>(subject: &'a str, prefix: &str, kind: &str) -> Result<&'a str, Rejection> {
    let shop = subject
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_prefix(kind))
        .and_then(|rest| rest.strip_prefix('.'))
        .filter(|shop| !shop.is_empty() && !shop.contains('.'));
    shop.ok_or_else(|| {
        Rejection::new(
            RejectReason::BadSubject,
            format!("subject `{subject}` has no shop id; publish on {prefix}.{kind}.<shop_id>"),
        )
    })
}

/// Whether `id` is 1-128 characters of `[A-Za-z0-9._:-]`.
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

fn check_id(id: &str, field: &str) -> Result<(), Rejection> {
    if id.is_empty() {
        return Err(Rejection::new(RejectReason::MissingId, format!("`{field}` is missing")));
    }
    if !valid_id(id) {
        return Err(Rejection::new(
            RejectReason::InvalidId,
            format!(
                "`{field}` must be 1-128 characters of A-Z a-z 0-9 . _ : - (got {} characters)",
                id.chars().count()
            ),
        ));
    }
    Ok(())
}

fn check_text(value: &str, field: &str, max: usize) -> Result<(), Rejection> {
    if value.chars().count() > max {
        return Err(Rejection::new(RejectReason::InvalidField, format!("`{field}` is longer than {max} characters")));
    }
    Ok(())
}

/// Decodes and checks an inquiry published on `subject` at `now`.
pub fn decode_inquiry(
    subject_shop: &str,
    format: Format,
    body: &[u8],
    now: Millis,
) -> Result<core::Inquiry, Rejection> {
    let wire: proto::Inquiry = decode(format, body)?;
    inquiry_from_proto(wire, subject_shop, now)
}

/// Checks a wire inquiry and turns it into the core's.
pub fn inquiry_from_proto(wire: proto::Inquiry, subject_shop: &str, now: Millis) -> Result<core::Inquiry, Rejection> {
    check_id(&wire.id, "id")?;
    if !wire.shop_id.is_empty() && wire.shop_id != subject_shop {
        return Err(Rejection::new(
            RejectReason::ShopMismatch,
            format!("shop_id `{}` differs from the subject's shop `{subject_shop}`", wire.shop_id),
        ));
    }
    let category = match proto::Category::try_from(wire.category) {
        Ok(proto::Category::Unspecified) => {
            return Err(Rejection::new(RejectReason::MissingCategory, "`category` is missing; use e.g. \"ORDER\""))
        }
        Ok(c) => category_from_proto(c),
        Err(_) => {
            return Err(Rejection::new(RejectReason::UnknownEnum, format!("category {} is unknown", wire.category)))
        }
    };
    let channel = match proto::Channel::try_from(wire.channel) {
        Ok(proto::Channel::Chat) => Channel::Chat,
        Ok(proto::Channel::Phone) => Channel::Phone,
        Ok(proto::Channel::Email) => Channel::Email,
        Err(_) => {
            return Err(Rejection::new(RejectReason::UnknownEnum, format!("channel {} is unknown", wire.channel)))
        }
    };
    let customer = wire.customer.unwrap_or_default();
    if customer.vip_tier > 5 {
        return Err(Rejection::new(
            RejectReason::OutOfRange,
            format!("customer.vip_tier {} is not 0-5", customer.vip_tier),
        ));
    }
    if customer.lifetime_value_cents < 0 || wire.order_value_cents < 0 {
        return Err(Rejection::new(RejectReason::NegativeMoney, "money amounts (…_cents) must not be negative"));
    }
    if wire.created_at_ms < 0 || wire.created_at_ms as u64 > now + MAX_CLOCK_SKEW_MS {
        return Err(Rejection::new(
            RejectReason::FutureTimestamp,
            "created_at_ms is negative or more than 5 minutes in the future; send milliseconds since the epoch",
        ));
    }
    check_text(&customer.id, "customer.id", 128)?;
    check_text(&wire.platform, "platform", 64)?;
    check_text(&wire.subject, "subject", 1024)?;
    if wire.language.len() > 35 || !wire.language.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(Rejection::new(RejectReason::InvalidField, "`language` must be a BCP-47 tag such as \"zh-CN\""));
    }
    // Named as agents name their skills (SetPresence), or no agent could ever match.
    if wire.required_skills.len() > 16 || !wire.required_skills.iter().all(|s| is_usable_name(s)) {
        return Err(Rejection::new(
            RejectReason::InvalidField,
            "`required_skills`: at most 16 names of 1-64 letters, digits, `_`, `-`, `.` or `:`, as agents name them",
        ));
    }
    Ok(core::Inquiry {
        id: wire.id.into(),
        shop_id: subject_shop.into(),
        platform: wire.platform.into(),
        customer: Customer {
            id: customer.id.into(),
            vip_tier: customer.vip_tier as u8,
            is_fan: customer.is_fan,
            lifetime_value_cents: customer.lifetime_value_cents,
        },
        category,
        channel,
        language: if wire.language.is_empty() { "zh".into() } else { wire.language.into() },
        required_skills: wire.required_skills,
        order_value_cents: wire.order_value_cents,
        subject: (!wire.subject.is_empty()).then(|| wire.subject.into_boxed_str()),
        created_at_ms: wire.created_at_ms as u64,
        bot_attempted: wire.bot_attempted,
    })
}

/// Decodes and checks a cancellation; returns the inquiry id.
pub fn decode_cancellation(format: Format, body: &[u8]) -> Result<String, Rejection> {
    let wire: proto::Cancellation = decode(format, body)?;
    check_id(&wire.inquiry_id, "inquiry_id")?;
    Ok(wire.inquiry_id)
}

/// The core category of a wire category (not `Unspecified`).
pub fn category_from_proto(c: proto::Category) -> Category {
    match c {
        proto::Category::PreSales | proto::Category::Unspecified => Category::PreSales,
        proto::Category::Order => Category::Order,
        proto::Category::Logistics => Category::Logistics,
        proto::Category::AfterSalesRefund => Category::AfterSalesRefund,
        proto::Category::AfterSalesExchange => Category::AfterSalesExchange,
        proto::Category::AfterSalesRepair => Category::AfterSalesRepair,
        proto::Category::Complaint => Category::Complaint,
        proto::Category::Other => Category::Other,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
