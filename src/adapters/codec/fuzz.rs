//! Fuzzing of the inbound path with proptest (stable Rust has no libFuzzer):
//! arbitrary bytes, mutated valid payloads and hostile field values go
//! through the decoders and then through the core. Nothing may panic, and
//! whatever the decoders accept must be a sound inquiry.
//!
//! `FUZZ_CASES=200000 cargo test --release --lib fuzz` runs it for longer.

use super::*;
use crate::core::testkit::{presence, Bench};
use crate::core::{Command, RoutingSettings};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

const NOW: Millis = 1_800_000_000_000;

/// A decoded inquiry satisfies every rule the decoder promises.
fn sound(inquiry: &core::Inquiry) {
    assert!(valid_id(&inquiry.id), "id {:?}", inquiry.id);
    assert!(inquiry.customer.vip_tier <= 5);
    assert!(inquiry.order_value_cents >= 0 && inquiry.customer.lifetime_value_cents >= 0);
    assert!(inquiry.created_at_ms <= NOW + MAX_CLOCK_SKEW_MS);
    assert!(inquiry.required_skills.len() <= 16);
}

/// Feeds an accepted inquiry to a router with agents; it must not panic.
fn route(inquiry: core::Inquiry) {
    let mut bench = Bench::new(RoutingSettings::default());
    bench.agent(presence("a", &[("orders", 3), ("pre_sales", 2), ("after_sales", 4)], 3));
    let _ = bench.try_apply(Command::Arrive(Box::new(inquiry)));
    bench.advance(61_000);
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        ".{0,40}".prop_map(serde_json::Value::from),
        prop::sample::select(vec!["ORDER", "COMPLAINT", "PRE_SALES", "PHONE", "zh-CN", "", "-1", "1e309"])
            .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: [&str; 13] = [
    "id",
    "shop_id",
    "platform",
    "customer",
    "category",
    "channel",
    "language",
    "required_skills",
    "order_value_cents",
    "subject",
    "created_at_ms",
    "bot_attempted",
    "vip_tier",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512), protobuf in any::<bool>()) {
        let format = if protobuf { Format::Protobuf } else { Format::Json };
        if let Ok(inquiry) = decode_inquiry("shop", format, &body, NOW) {
            sound(&inquiry);
            route(inquiry);
        }
        let _ = decode_cancellation(format, &body);
    }

    #[test]
    fn mutated_valid_json_never_panics(
        field in prop::sample::select(FIELDS.to_vec()),
        value in json_value(),
        nested in any::<bool>(),
    ) {
        let mut body = serde_json::json!({
            "id": "q-1", "category": "ORDER", "customer": {"id": "c", "vip_tier": 2, "is_fan": true},
            "language": "zh-CN", "required_skills": ["refund"], "order_value_cents": 100, "subject": "hi",
        });
        if nested {
            body["customer"][field] = value;
        } else {
            body[field] = value;
        }
        let bytes = serde_json::to_vec(&body).unwrap();
        if let Ok(inquiry) = decode_inquiry("shop", Format::Json, &bytes, NOW) {
            sound(&inquiry);
            route(inquiry);
        }
    }

    #[test]
    fn hostile_field_values_in_protobuf_never_panic(
        id in ".{0,140}",
        language in ".{0,40}",
        skills in prop::collection::vec(".{0,70}", 0..20),
        category in -3i32..12,
        channel in -2i32..5,
        vip_tier in 0u32..10,
        money in any::<i64>(),
        created in any::<i64>(),
    ) {
        let wire = proto::Inquiry {
            id,
            category,
            channel,
            language,
            required_skills: skills,
            order_value_cents: money,
            created_at_ms: created,
            customer: Some(proto::Customer { id: "c".into(), vip_tier, is_fan: false, lifetime_value_cents: money }),
            ..Default::default()
        };
        if let Ok(inquiry) = decode_inquiry("shop", Format::Protobuf, &wire.encode_to_vec(), NOW) {
            sound(&inquiry);
            route(inquiry);
        }
    }
}
