use super::*;

const NOW: Millis = 1_700_000_000_000;

fn json(body: &str) -> Result<core::Inquiry, Rejection> {
    decode_inquiry("shop-1", Format::Json, body.as_bytes(), NOW)
}

fn reason(body: &str) -> RejectReason {
    json(body).expect_err("rejected").reason
}

#[test]
fn a_full_json_inquiry_decodes_with_spec_names() {
    let inquiry = json(
        r#"{"id":"q-1","shop_id":"shop-1","platform":"douyin","customer":{"id":"c9","vip_tier":3,"is_fan":true,
            "lifetime_value_cents":"120000"},"category":"AFTER_SALES_REFUND","channel":"PHONE","language":"zh-CN",
            "required_skills":["refund"],"order_value_cents":5999,"subject":"where is my refund",
            "created_at_ms":1700000000000,"bot_attempted":true,"some_future_field":1}"#,
    )
    .unwrap();
    assert_eq!(inquiry.category, Category::AfterSalesRefund);
    assert_eq!(inquiry.channel, Channel::Phone);
    assert_eq!(inquiry.customer.vip_tier, 3);
    assert_eq!(inquiry.customer.lifetime_value_cents, 120_000);
    assert!(inquiry.bot_attempted);
    assert_eq!(&*inquiry.language, "zh-CN");
}

#[test]
fn defaults_fill_optional_fields_and_the_shop_comes_from_the_subject() {
    let inquiry = json(r#"{"id":"q1","category":"ORDER"}"#).unwrap();
    assert_eq!((&*inquiry.shop_id, &*inquiry.language, inquiry.channel), ("shop-1", "zh", Channel::Chat));
}

#[test]
fn protobuf_round_trips() {
    let wire = proto::Inquiry { id: "q1".into(), category: proto::Category::Complaint as i32, ..Default::default() };
    let inquiry = decode_inquiry("s", Format::Protobuf, &wire.encode_to_vec(), NOW).unwrap();
    assert_eq!(inquiry.category, Category::Complaint);
    let bad = decode_inquiry("s", Format::Protobuf, b"\xff\xff\xff", NOW).unwrap_err();
    assert_eq!(bad.reason, RejectReason::NotDecodable);
}

#[test]
fn every_bad_input_has_its_own_reason() {
    assert_eq!(reason(""), RejectReason::Empty);
    assert_eq!(reason("not json"), RejectReason::NotDecodable);
    assert_eq!(reason(r#"{"category":"ORDER"}"#), RejectReason::MissingId);
    assert_eq!(reason(r#"{"id":"a b","category":"ORDER"}"#), RejectReason::InvalidId);
    assert_eq!(reason(&format!(r#"{{"id":"{}","category":"ORDER"}}"#, "x".repeat(129))), RejectReason::InvalidId);
    assert_eq!(reason(r#"{"id":"q","category":"BANANA"}"#), RejectReason::UnknownEnum);
    let numbered = json(r#"{"id":"q","category":99}"#).expect_err("rejected");
    assert_eq!(numbered.reason, RejectReason::UnknownEnum, "{}", numbered.message);
    assert!(!numbered.message.contains("expected expected"), "{}", numbered.message);
    assert_eq!(reason(r#"{"id":"q"}"#), RejectReason::MissingCategory);
    assert_eq!(reason(r#"{"id":"q","category":"ORDER","customer":{"vip_tier":6}}"#), RejectReason::OutOfRange);
    assert_eq!(reason(r#"{"id":"q","category":"ORDER","order_value_cents":-1}"#), RejectReason::NegativeMoney);
    let future = format!(r#"{{"id":"q","category":"ORDER","created_at_ms":{}}}"#, NOW + 3_600_000);
    assert_eq!(reason(&future), RejectReason::FutureTimestamp);
    assert_eq!(reason(r#"{"id":"q","shop_id":"other","category":"ORDER"}"#), RejectReason::ShopMismatch);
    assert_eq!(reason(r#"{"id":"q","category":"ORDER","language":"zh CN"}"#), RejectReason::InvalidField);
    let big = format!(r#"{{"id":"q","category":"ORDER","subject":"{}"}}"#, "x".repeat(MAX_PAYLOAD));
    assert_eq!(reason(&big), RejectReason::Oversized);
}

#[test]
fn content_types_choose_the_format() {
    assert_eq!(format_of(None), Format::Json);
    assert_eq!(format_of(Some("application/json; charset=utf-8")), Format::Json);
    assert_eq!(format_of(Some("Application/Protobuf")), Format::Protobuf);
    assert_eq!(format_of(Some("text/plain")), Format::Json, "anything but protobuf is read as JSON");
}

#[test]
fn subjects_must_name_one_shop() {
    assert_eq!(shop_of_subject("support.inquiries.shop-7", "support", "inquiries"), Ok("shop-7"));
    assert_eq!(shop_of_subject("acme.support.inquiries.s", "acme.support", "inquiries"), Ok("s"));
    for bad in ["support.inquiries", "support.inquiries.", "support.inquiries.a.b", "other.inquiries.s"] {
        assert_eq!(shop_of_subject(bad, "support", "inquiries").unwrap_err().reason, RejectReason::BadSubject, "{bad}");
    }
}

#[test]
fn cancellations_need_a_valid_id() {
    assert_eq!(decode_cancellation(Format::Json, br#"{"inquiry_id":"q1"}"#), Ok("q1".to_string()));
    assert_eq!(decode_cancellation(Format::Json, b"{}").unwrap_err().reason, RejectReason::MissingId);
}

#[test]
fn the_header_value_names_the_reason_first() {
    let r = json("{").unwrap_err();
    assert!(r.to_string().starts_with("not_decodable: "), "{r}");
}

#[test]
fn a_number_a_field_cannot_hold_is_out_of_range_and_named() {
    let cases = [
        (r#"{"id":"q","category":"ORDER","customer":{"vip_tier":-1}}"#, "customer.vip_tier is -1"),
        (
            r#"{"id":"q","category":"ORDER","customer":{"vip_tier":1099511627776}}"#,
            "customer.vip_tier is 1099511627776",
        ),
        (r#"{"id":"q","category":"ORDER","order_value_cents":1e23}"#, "order_value_cents is 1e+23"),
        (r#"{"id":"q","category":"ORDER","order_value_cents":100.5}"#, "order_value_cents is 100.5"),
    ];
    for (body, said) in cases {
        let rejected = json(body).expect_err("rejected");
        assert_eq!(rejected.reason, RejectReason::OutOfRange, "{body}: {}", rejected.message);
        assert!(rejected.message.starts_with(said), "{body}: {}", rejected.message);
    }
    // Not a number at all, or a number where something else belongs:
    // undecodable, but the field is still named.
    let wrong_type = [
        (r#"{"id":"q","category":"ORDER","customer":{"vip_tier":"three"}}"#, "customer.vip_tier:"),
        (r#"{"id":"q","category":"ORDER","customer":{"is_fan":1}}"#, "customer.is_fan:"),
        (r#"{"id":"q","category":"ORDER","customer":{"id":13800138000}}"#, "customer.id:"),
        (r#"{"id":"q","category":"ORDER","required_skills":[1]}"#, "required_skills[0]:"),
    ];
    for (body, said) in wrong_type {
        let rejected = json(body).expect_err("rejected");
        assert_eq!(rejected.reason, RejectReason::NotDecodable, "{body}: {}", rejected.message);
        assert!(rejected.message.contains(said), "{body}: {}", rejected.message);
    }
}

#[test]
fn a_null_field_reads_as_its_default_as_proto3_json_says() {
    let inquiry = json(
        r#"{"id":"q","category":"ORDER","subject":null,"required_skills":null,"channel":null,
            "customer":{"id":"c1","vip_tier":null},"language":null}"#,
    )
    .unwrap();
    assert_eq!((inquiry.subject, inquiry.required_skills.len(), inquiry.channel), (None, 0, Channel::Chat));
    assert_eq!((inquiry.customer.vip_tier, &*inquiry.language, &*inquiry.customer.id), (0, "zh", "c1"));
    assert_eq!(reason(r#"{"id":null,"category":"ORDER"}"#), RejectReason::MissingId);
    // A null does not hide what else is wrong, nor make room for a repeated key.
    assert_eq!(reason(r#"{"id":"q","subject":null,"category":"ORDERS"}"#), RejectReason::UnknownEnum);
    assert_eq!(
        reason(r#"{"id":"q","subject":null,"category":"ORDER","customer":{"vip_tier":-1}}"#),
        RejectReason::OutOfRange
    );
    assert_eq!(reason(r#"{"id":"q","id":"r","category":"ORDER","subject":null}"#), RejectReason::NotDecodable);
    assert_eq!(reason(r#"{"id":"q","category":"ORDER","required_skills":["a",null]}"#), RejectReason::NotDecodable);
}

#[test]
fn skills_no_agent_could_name_are_refused_and_protobuf_without_its_header_is_pointed_out() {
    for skills in [r#"["退款"]"#, r#"["has space"]"#, r#"[""]"#] {
        let body = format!(r#"{{"id":"q","category":"ORDER","required_skills":{skills}}}"#);
        let rejected = json(&body).expect_err("refused");
        assert_eq!(rejected.reason, RejectReason::InvalidField, "{skills}");
        assert!(rejected.message.contains("as agents name them"), "{}", rejected.message);
    }
    assert!(json(r#"{"id":"q","category":"ORDER","required_skills":["after-sales:refund.v2"]}"#).is_ok());
    let wire = proto::Inquiry { id: "pb1".into(), category: proto::Category::Order as i32, ..Default::default() };
    let as_json = decode_inquiry("s", Format::Json, &wire.encode_to_vec(), NOW).unwrap_err();
    assert!(as_json.message.contains("Content-Type: application/protobuf"), "{}", as_json.message);
    assert!(!json("{ not json").unwrap_err().message.contains("protobuf"));
}
