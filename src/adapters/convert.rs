//! Core values to wire messages (and the few wire enums back), shared by the
//! NATS publisher and the gRPC services.

use crate::core::{self, AgentStatus, Band, EventKind, InquiryState, Level, Rule};
use crate::proto;
use crate::proto::{decision_trace, inquiry_event};

/// The wire form of an inquiry.
pub fn inquiry(i: &core::Inquiry) -> proto::Inquiry {
    proto::Inquiry {
        id: i.id.to_string(),
        shop_id: i.shop_id.to_string(),
        platform: i.platform.to_string(),
        customer: Some(proto::Customer {
            id: i.customer.id.to_string(),
            vip_tier: u32::from(i.customer.vip_tier),
            is_fan: i.customer.is_fan,
            lifetime_value_cents: i.customer.lifetime_value_cents,
        }),
        category: category(i.category) as i32,
        channel: match i.channel {
            core::Channel::Chat => proto::Channel::Chat,
            core::Channel::Phone => proto::Channel::Phone,
            core::Channel::Email => proto::Channel::Email,
        } as i32,
        language: i.language.to_string(),
        required_skills: i.required_skills.clone(),
        order_value_cents: i.order_value_cents,
        subject: i.subject.as_deref().unwrap_or_default().to_string(),
        created_at_ms: i.created_at_ms as i64,
        bot_attempted: i.bot_attempted,
    }
}

/// The wire category.
pub fn category(c: core::Category) -> proto::Category {
    match c {
        core::Category::PreSales => proto::Category::PreSales,
        core::Category::Order => proto::Category::Order,
        core::Category::Logistics => proto::Category::Logistics,
        core::Category::AfterSalesRefund => proto::Category::AfterSalesRefund,
        core::Category::AfterSalesExchange => proto::Category::AfterSalesExchange,
        core::Category::AfterSalesRepair => proto::Category::AfterSalesRepair,
        core::Category::Complaint => proto::Category::Complaint,
        core::Category::Other => proto::Category::Other,
    }
}

/// The wire level.
pub fn level(l: Level) -> proto::LoadLevel {
    match l {
        Level::Normal => proto::LoadLevel::Normal,
        Level::Peak => proto::LoadLevel::Peak,
        Level::Surge => proto::LoadLevel::Surge,
    }
}

/// The core level of a wire level.
pub fn level_from_proto(l: proto::LoadLevel) -> Level {
    match l {
        proto::LoadLevel::Normal => Level::Normal,
        proto::LoadLevel::Peak => Level::Peak,
        proto::LoadLevel::Surge => Level::Surge,
    }
}

/// The wire agent status.
pub fn agent_status(s: AgentStatus) -> proto::AgentStatus {
    match s {
        AgentStatus::Available => proto::AgentStatus::Available,
        AgentStatus::Away => proto::AgentStatus::Away,
        AgentStatus::Break => proto::AgentStatus::Break,
        AgentStatus::Offline => proto::AgentStatus::Offline,
    }
}

/// The core status of a wire status; `None` for UNSPECIFIED.
pub fn agent_status_from_proto(s: proto::AgentStatus) -> Option<AgentStatus> {
    match s {
        proto::AgentStatus::Unspecified => None,
        proto::AgentStatus::Available => Some(AgentStatus::Available),
        proto::AgentStatus::Away => Some(AgentStatus::Away),
        proto::AgentStatus::Break => Some(AgentStatus::Break),
        proto::AgentStatus::Offline => Some(AgentStatus::Offline),
    }
}

/// The wire inquiry state.
pub fn inquiry_state(s: InquiryState) -> proto::InquiryState {
    match s {
        InquiryState::Waiting => proto::InquiryState::Waiting,
        InquiryState::Offered => proto::InquiryState::Offered,
        InquiryState::Active => proto::InquiryState::Active,
        InquiryState::Completed => proto::InquiryState::Completed,
        InquiryState::Deflected => proto::InquiryState::Deflected,
        InquiryState::Cancelled => proto::InquiryState::Cancelled,
    }
}

/// The wire band.
pub fn band(b: Band) -> decision_trace::Band {
    match b {
        Band::High => decision_trace::Band::High,
        Band::Normal => decision_trace::Band::Normal,
        Band::Low => decision_trace::Band::Low,
    }
}

fn rule(r: Rule) -> decision_trace::Rule {
    match r {
        Rule::Sticky => decision_trace::Rule::Sticky,
        Rule::Dedicated => decision_trace::Rule::Dedicated,
        Rule::BestProficiency => decision_trace::Rule::BestProficiency,
        Rule::LeastOccupied => decision_trace::Rule::LeastOccupied,
        Rule::LongestIdle => decision_trace::Rule::LongestIdle,
        Rule::Overflow => decision_trace::Rule::Overflow,
        Rule::TransferTarget => decision_trace::Rule::TransferTarget,
        Rule::Escalation => decision_trace::Rule::Escalation,
    }
}

/// The wire decision trace.
pub fn trace(t: &core::DecisionTrace) -> proto::DecisionTrace {
    proto::DecisionTrace {
        rule: t.rule.map_or(decision_trace::Rule::Unspecified, rule) as i32,
        score: t.score,
        band: t.band.map_or(decision_trace::Band::Unspecified, band) as i32,
        level: level(t.level) as i32,
        group: t.group.to_string(),
        candidates_considered: t.considered,
        skipped_full: t.skipped_full,
        skipped_reserve: t.skipped_reserve,
        skipped_fatigue: t.skipped_fatigue,
        skipped_language: t.skipped_language,
        skipped_skill: t.skipped_skill,
        skipped_not_available: t.skipped_not_available,
        agent_fatigued: t.agent_fatigued,
    }
}

/// The wire handoff note.
pub fn note(n: &core::HandoffNote) -> proto::HandoffNote {
    proto::HandoffNote {
        summary: n.summary.clone(),
        attempted: n.attempted.clone(),
        customer_expectation: n.customer_expectation.clone(),
        author: n.author.clone(),
        at_ms: n.at as i64,
    }
}

/// The core note of a wire note (author and time are set by the router).
pub fn note_from_proto(n: Option<proto::HandoffNote>) -> core::HandoffNote {
    let n = n.unwrap_or_default();
    core::HandoffNote {
        summary: n.summary,
        attempted: n.attempted,
        customer_expectation: n.customer_expectation,
        ..core::HandoffNote::default()
    }
}

/// The wire event kind.
pub fn event_kind(k: EventKind) -> inquiry_event::Kind {
    match k {
        EventKind::Queued => inquiry_event::Kind::Queued,
        EventKind::Offered => inquiry_event::Kind::Offered,
        EventKind::Accepted => inquiry_event::Kind::Accepted,
        EventKind::TimedOut => inquiry_event::Kind::TimedOut,
        EventKind::Requeued => inquiry_event::Kind::Requeued,
        EventKind::Transferred => inquiry_event::Kind::Transferred,
        EventKind::Escalated => inquiry_event::Kind::Escalated,
        EventKind::Deflected => inquiry_event::Kind::Deflected,
        EventKind::Completed => inquiry_event::Kind::Completed,
        EventKind::Cancelled => inquiry_event::Kind::Cancelled,
        EventKind::Declined => inquiry_event::Kind::Declined,
    }
}

/// The offer `agent` holds for inquiry `id`, as sent when it was made but
/// with its current deadline: for desktops that (re)subscribe and for
/// offers whose deadline moved.
pub fn open_offer(router: &core::Router, now: core::Millis, agent: &str, id: &str) -> Option<proto::Assignment> {
    let v = router.inquiry(now, id)?;
    if v.state != InquiryState::Offered || v.owner.as_deref() != Some(agent) {
        return None;
    }
    let offered = v.timeline.iter().rev().find(|t| t.kind == EventKind::Offered)?;
    let offer = core::Offer {
        inquiry: v.inquiry.id.clone(),
        shop: v.inquiry.shop_id.clone(),
        agent: agent.into(),
        group: v.group.clone(),
        at: offered.at,
        expires_at: v.offer_expires_at?,
        attempt: v.attempts,
        trace: offered.trace.as_deref().cloned().unwrap_or_default(),
        note: v.note.cloned().map(Box::new),
    };
    Some(assignment(&offer, Some(v.inquiry)))
}

/// An offer as sent to the desktop and on `assignments.<agent>`.
pub fn assignment(offer: &core::Offer, inquiry_data: Option<&core::Inquiry>) -> proto::Assignment {
    proto::Assignment {
        inquiry: inquiry_data.map(inquiry),
        agent_id: offer.agent.to_string(),
        group: offer.group.to_string(),
        offered_at_ms: offer.at as i64,
        expires_at_ms: offer.expires_at as i64,
        attempt: offer.attempt,
        trace: Some(trace(&offer.trace)),
        note: offer.note.as_deref().map(note),
        withdrawn: false,
        active: false,
        caught_up: false,
        status: 0,
    }
}

/// The message that takes back an earlier offer or chat: on NATS and on the
/// desktop's `Subscribe` stream alike, its note says why, from the system.
pub fn withdrawal(inquiry: &str, agent: &str, reason: &str, now: core::Millis) -> proto::Assignment {
    proto::Assignment {
        inquiry: Some(proto::Inquiry { id: inquiry.to_string(), ..proto::Inquiry::default() }),
        agent_id: agent.to_string(),
        withdrawn: true,
        note: Some(system_note(reason, now)),
        ..proto::Assignment::default()
    }
}

/// The message that tells an agent's desktops its status changed, and why.
pub fn status_notice(agent: &str, status: AgentStatus, reason: &str, now: core::Millis) -> proto::Assignment {
    proto::Assignment {
        agent_id: agent.to_string(),
        status: agent_status(status) as i32,
        note: Some(system_note(reason, now)),
        ..proto::Assignment::default()
    }
}

fn system_note(summary: &str, now: core::Millis) -> proto::HandoffNote {
    proto::HandoffNote {
        summary: summary.to_string(),
        author: "system".to_string(),
        at_ms: now as i64,
        ..proto::HandoffNote::default()
    }
}

/// The OFFERED event that an offer stands for.
pub fn offered_event(offer: &core::Offer) -> proto::InquiryEvent {
    proto::InquiryEvent {
        inquiry_id: offer.inquiry.to_string(),
        shop_id: offer.shop.to_string(),
        kind: inquiry_event::Kind::Offered as i32,
        group: offer.group.to_string(),
        agent_id: offer.agent.to_string(),
        at_ms: offer.at as i64,
        score: offer.trace.score,
        trace: Some(trace(&offer.trace)),
        note: offer.note.as_deref().map(note),
        detail: format!("attempt {}", offer.attempt),
    }
}

/// A lifecycle event.
pub fn event(e: &core::Event) -> proto::InquiryEvent {
    let detail = match (&e.detail, &e.from_group) {
        (Some(d), Some(from)) => format!("{d} (from {from})"),
        (Some(d), None) => d.clone(),
        (None, _) => String::new(),
    };
    proto::InquiryEvent {
        inquiry_id: e.inquiry.to_string(),
        shop_id: e.shop.to_string(),
        kind: event_kind(e.kind) as i32,
        group: e.group.to_string(),
        agent_id: e.agent.as_deref().unwrap_or_default().to_string(),
        at_ms: e.at as i64,
        score: e.score,
        trace: None,
        note: e.note.as_deref().map(note),
        detail,
    }
}

/// A timeline entry as `GetInquiry` shows it.
pub fn timeline_entry(inquiry_id: &str, shop: &str, t: &core::router::TimelineEntry) -> proto::InquiryEvent {
    proto::InquiryEvent {
        inquiry_id: inquiry_id.to_string(),
        shop_id: shop.to_string(),
        kind: event_kind(t.kind) as i32,
        group: t.group.to_string(),
        agent_id: t.agent.as_deref().unwrap_or_default().to_string(),
        at_ms: t.at as i64,
        score: t.score,
        trace: t.trace.as_deref().map(trace),
        note: t.note.as_deref().map(note),
        detail: t.detail.as_deref().unwrap_or_default().to_string(),
    }
}

/// A level change.
pub fn level_changed(c: &core::LevelChange) -> proto::LevelChanged {
    proto::LevelChanged {
        scope: c.scope.to_string(),
        from: level(c.from) as i32,
        to: level(c.to) as i32,
        reason: c.reason.clone(),
        at: c.at as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_json_carries_every_field_with_the_contracts_names_defaults_included() {
        let back = core::LevelChange {
            scope: core::Scope::Group("orders".into()),
            from: Level::Peak,
            to: Level::Normal,
            reason: "calm again".into(),
            at: 1_700_000_000_000,
        };
        let json = serde_json::to_value(level_changed(&back)).unwrap();
        let want = serde_json::json!({
            "scope": "group:orders", "from": "PEAK", "to": "NORMAL", "reason": "calm again", "at": "1700000000000"
        });
        assert_eq!(json, want);
    }
}
