//! Keeps every stored inquiry record within one journal message.
//!
//! A record grows with its timeline: an inquiry transferred 20 times (the
//! most allowed) and escalated, with full notes is ~260 KiB, one offered and timed out all
//! night grows without end, and a server's `max_payload` may be set lower
//! than the default 1 MiB. A journal append that can never succeed would
//! hold every decision after it. Such a record is stored with its
//! first step and its latest steps; if that is still too large, older steps
//! lose their notes and traces, and at last long texts are cut. The routing
//! state (place, holder, deadlines, rank) is always whole, and so are the
//! steps routing reads back (handoffs, the first acceptance); only the
//! history people read is shortened, and the log says so.

use crate::core::effect::EventKind;
use crate::core::snapshot::InquiryRecord;
use bytes::Bytes;

/// Latest steps kept when a timeline is shortened.
const LATEST_STEPS: usize = 16;
/// Longest text kept in a note or subject of a record cut at last resort.
const TEXT_KEPT: usize = 1024;

fn encode(record: &InquiryRecord) -> Vec<u8> {
    serde_json::to_vec(record).expect("records always serialise")
}

/// The record's JSON, at most `limit` bytes when shortening can get it there.
pub fn inquiry_json(record: &InquiryRecord, limit: usize) -> Bytes {
    let full = encode(record);
    if full.len() <= limit {
        return full.into();
    }
    let mut cut = record.clone();
    let steps = cut.timeline.len();
    if steps > LATEST_STEPS + 1 {
        // Steps routing reads back are kept: handoffs (counted against the
        // most an inquiry may have) and the first acceptance (its wait).
        let first_accepted = cut.timeline.iter().position(|s| s.kind == EventKind::Accepted);
        let mut index = 0;
        cut.timeline.retain(|step| {
            let keep = index == 0
                || index >= steps - LATEST_STEPS
                || Some(index) == first_accepted
                || matches!(step.kind, EventKind::Transferred | EventKind::Escalated);
            index += 1;
            keep
        });
    }
    let mut bytes = encode(&cut);
    if bytes.len() > limit {
        let last = cut.timeline.len().saturating_sub(1);
        for step in &mut cut.timeline[..last] {
            (step.note, step.trace, step.detail) = (None, None, None);
        }
        bytes = encode(&cut);
    }
    if bytes.len() > limit {
        let texts = cut.note.iter_mut().chain(cut.timeline.iter_mut().filter_map(|s| s.note.as_mut()));
        for note in texts {
            for text in [&mut note.summary, &mut note.attempted, &mut note.customer_expectation] {
                shorten(text);
            }
        }
        if let Some(subject) = cut.inquiry.subject.as_mut() {
            let mut text = subject.to_string();
            shorten(&mut text);
            *subject = text.into_boxed_str();
        }
        bytes = encode(&cut);
    }
    tracing::warn!(
        inquiry = %crate::adapters::redact::Redacted(&record.inquiry.id),
        steps,
        bytes = full.len(),
        stored_bytes = bytes.len(),
        limit,
        "an inquiry's record outgrew a journal message; it is stored with its first and latest timeline steps"
    );
    bytes.into()
}

fn shorten(text: &mut String) {
    if text.len() > TEXT_KEPT {
        let mut end = TEXT_KEPT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::command::{Actor, Command, TransferTarget};
    use crate::core::testkit::{inquiry, presence, Bench};
    use crate::core::types::{Category, HandoffNote};
    use crate::core::RoutingSettings;

    /// An order transferred `n` times between two agents, each time with a
    /// full handoff note (3 texts of 4,000 bytes).
    fn transferred(n: usize) -> InquiryRecord {
        let mut b = Bench::new(RoutingSettings::default());
        b.router.track_changes();
        b.agent(presence("a", &[("orders", 3)], 3));
        b.agent(presence("b", &[("orders", 3)], 3));
        b.arrive(inquiry("o1", Category::Order));
        let mut holder = b.router.inquiry(b.now, "o1").unwrap().owner.unwrap().to_string();
        b.accept(&holder, "o1");
        for _ in 0..n {
            let other = if holder == "a" { "b" } else { "a" };
            let note = HandoffNote {
                summary: "s".repeat(4000),
                attempted: "a".repeat(4000),
                customer_expectation: "e".repeat(4000),
                ..HandoffNote::default()
            };
            b.apply(Command::Transfer {
                actor: Actor::agent(&holder),
                inquiry: "o1".into(),
                target: TransferTarget::Agent(other.into()),
                note,
            });
            b.accept(other, "o1");
            holder = other.to_string();
        }
        b.router.all_records().inquiries.into_iter().find(|r| &*r.inquiry.id == "o1").unwrap()
    }

    #[test]
    fn a_small_record_is_stored_whole() {
        let record = transferred(2);
        let bytes = inquiry_json(&record, 512 * 1024);
        assert_eq!(serde_json::from_slice::<InquiryRecord>(&bytes).unwrap(), record);
    }

    #[test]
    fn a_record_that_outgrew_a_message_keeps_its_state_and_latest_steps() {
        // 20 handoffs, the most allowed, with full notes: ~240 KiB, past a
        // server whose max_payload was set to 128 KiB.
        let record = transferred(20);
        let limit = 128 * 1024;
        assert!(encode(&record).len() > 2 * limit, "{} bytes", encode(&record).len());
        let stored: InquiryRecord = serde_json::from_slice(&inquiry_json(&record, limit)).unwrap();
        assert!(encode(&stored).len() <= limit);
        assert_eq!((&stored.state, &stored.agent, stored.attempts), (&record.state, &record.agent, record.attempts));
        let when = |r: &InquiryRecord, i: usize| r.timeline.get(i).map(|s| (s.kind, s.at));
        assert_eq!(when(&stored, 0), when(&record, 0), "how it started");
        assert_eq!(stored.timeline.last(), record.timeline.last(), "where it stands");
        assert_eq!(stored.note, record.note, "the note the holder reads now");
        let count = |r: &InquiryRecord, kind| r.timeline.iter().filter(|s| s.kind == kind).count();
        assert_eq!(count(&stored, EventKind::Transferred), 20, "handoffs still count against the most allowed");
        let accepted = |r: &InquiryRecord| r.timeline.iter().find(|s| s.kind == EventKind::Accepted).map(|s| s.at);
        assert_eq!(accepted(&stored), accepted(&record), "the first acceptance, which its wait is measured to");

        // A tight limit: older steps lose their notes, then long texts are cut.
        let tight: InquiryRecord = serde_json::from_slice(&inquiry_json(&record, 16 * 1024)).unwrap();
        assert!(encode(&tight).len() <= 16 * 1024, "{} bytes", encode(&tight).len());
        assert_eq!(tight.state, record.state);
        assert_eq!(count(&tight, EventKind::Transferred), 20);
    }
}
