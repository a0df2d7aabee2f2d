//! An inquiry's life: arrival (dedicated group, deflection), accept, decline,
//! complete and cancel (offers that run out and go back: `returns.rs`; who
//! may act on an inquiry: `acting.rs`).

use super::placement::sticky_key;
use super::record::{Place, Record, Step, NO_NAME};
use super::returns::Said;
use super::timeline::EventDetail;
use super::Router;
use crate::core::agents::{AgentIx, InqIx};
use crate::core::command::Actor;
use crate::core::effect::{Effect, EventKind};
use crate::core::error::CoreError;
use crate::core::matching::{primary_language, Need};
use crate::core::priority::{self, PriorityInput};
use crate::core::types::{Band, Category, Inquiry, InquiryState, Millis};

impl Router {
    /// An inquiry arrives at `now`, received (and waiting) since `received`.
    pub(super) fn arrive(
        &mut self,
        now: Millis,
        received: Millis,
        inquiry: Inquiry,
        fx: &mut Vec<Effect>,
    ) -> Result<(), CoreError> {
        if inquiry.customer.vip_tier > 5 {
            return Err(CoreError::InvalidArgument(format!(
                "customer.vip_tier {} is out of range; use 0 to 5",
                inquiry.customer.vip_tier
            )));
        }
        let (ix, back_from_bot) = match self.find_inquiry(&inquiry.id) {
            None => (self.insert_record(received, inquiry), false),
            Some(ix) if self.is_back_from_bot(ix, &inquiry) => (self.reopen_record(received, ix, inquiry), true),
            Some(_) => return Err(CoreError::Duplicate(inquiry.id)),
        };
        let primary = self.rec(ix).home;
        let landing = self.landing_group(now, ix);
        if !back_from_bot {
            // The customer was counted when the bot got the inquiry.
            self.groups[landing as usize].arrivals.record(received, now);
        }
        if landing == primary && self.should_deflect(ix) {
            self.finish(now, ix, InquiryState::Deflected);
            let group_name = self.groups[landing as usize].name;
            let step = Step {
                at: now,
                trace: None,
                rare: None,
                group: group_name,
                agent: NO_NAME,
                score: self.rec(ix).score,
                kind: EventKind::Deflected,
            };
            // Exactly one step's room: deflected inquiries are kept as long as finished ones.
            self.rec_mut(ix).timeline.reserve_exact(1);
            self.rec_mut(ix).deflection_unstored = true;
            self.push_step(ix, step);
            let rec = self.rec(ix);
            let (id, shop) = (rec.inquiry.id.clone(), rec.inquiry.shop_id.clone());
            let group = self.groups[landing as usize].id.clone();
            fx.push(Effect::Deflect { inquiry: id, shop, group, at: now, score: self.rec(ix).score });
            return Ok(());
        }
        self.groups[landing as usize].routed.record(received, now);
        let rec = self.rec_mut(ix);
        rec.home = landing;
        rec.via_dedicated = landing != primary;
        self.route(now, ix, EventKind::Queued, fx);
        Ok(())
    }

    /// Whether `inquiry` is the bot handing back the deflected inquiry `ix`
    /// (SPEC: the bot may send it back with `bot_attempted`; it is then
    /// routed and never deflected again). Any other repeat is a duplicate.
    fn is_back_from_bot(&self, ix: InqIx, inquiry: &Inquiry) -> bool {
        let rec = self.rec(ix);
        // Only from the shop the bot got it from: another shop publishing the
        // same id is a repeat, not a way to take over that shop's customer.
        inquiry.bot_attempted
            && rec.inquiry.shop_id == inquiry.shop_id
            && matches!(rec.place, Place::Finished { state: InquiryState::Deflected, .. })
    }

    /// Starts the deflected record `ix` over as a new arrival of `inquiry`,
    /// keeping its index and its timeline so far.
    fn reopen_record(&mut self, now: Millis, ix: InqIx, inquiry: Inquiry) -> InqIx {
        let mut record = self.new_record(now, inquiry);
        let old = self.rec_mut(ix);
        record.timeline = std::mem::take(&mut old.timeline);
        record.dirty = old.dirty;
        self.records[ix as usize] = Some(record);
        self.note_unknown_need(ix);
        ix
    }

    fn insert_record(&mut self, now: Millis, inquiry: Inquiry) -> InqIx {
        let record = self.new_record(now, inquiry);
        let ix = match self.free_records.pop() {
            Some(ix) => {
                self.records[ix as usize] = Some(record);
                ix
            }
            None => {
                self.records.push(record);
                (self.records.len() - 1) as InqIx
            }
        };
        self.index_inquiry(ix);
        self.rec_mut(ix);
        self.note_unknown_need(ix);
        ix
    }

    /// What inquiry `inquiry` needs, in the bits agents offer.
    pub(super) fn need_of(&self, inquiry: &Inquiry) -> Need {
        let language = self.languages.need(&primary_language(&inquiry.language));
        let skills = inquiry.required_skills.iter().fold(0u64, |acc, s| acc | 1u64 << self.skills.need(s));
        Need { language, skills }
    }

    /// Keeps `ix` for `resolve_unknown_needs` if no agent offered what it needs.
    pub(super) fn note_unknown_need(&mut self, ix: InqIx) {
        if !self.rec(ix).need.is_unknown() {
            return;
        }
        // Before the list would grow, those no longer waiting are dropped, so
        // it stays about as long as what waits on an unknown need.
        if self.unknown_needs.len() == self.unknown_needs.capacity() {
            let records = &self.records;
            let still = |&ix: &InqIx| {
                records[ix as usize].as_ref().is_some_and(|r| r.place == Place::Waiting && r.need.is_unknown())
            };
            self.unknown_needs.retain(still);
            self.unknown_needs.sort_unstable();
            self.unknown_needs.dedup();
        }
        self.unknown_needs.push(ix);
    }

    /// The record of a newly arrived inquiry, waiting since `now`.
    fn new_record(&mut self, now: Millis, mut inquiry: Inquiry) -> Record {
        inquiry.shop_id = self.shared.share(inquiry.shop_id);
        inquiry.platform = self.shared.share(inquiry.platform);
        inquiry.language = self.shared.share(inquiry.language);
        let need = self.need_of(&inquiry);
        let standing = priority::standing(
            &self.settings.priority,
            PriorityInput {
                category: inquiry.category,
                vip_tier: inquiry.customer.vip_tier,
                is_fan: inquiry.customer.is_fan,
                escalated: false,
            },
        );
        let seq = self.next_seq;
        self.next_seq += 1;
        Record {
            home: self.primary[inquiry.category as usize],
            inquiry,
            place: Place::Waiting,
            need,
            score: standing.score,
            band: standing.band,
            escalated: false,
            since: now,
            received_at: now,
            seq,
            rank: priority::rank(standing.score, now, self.aging_ms()),
            attempts: 0,
            overflowed: false,
            via_dedicated: false,
            next_rule: None,
            excluded: None,
            excluded_until: 0,
            handed_on_by: super::record::NO_AGENT,
            note: None,
            timeline: Vec::new(),
            queued_untold: false,
            deflection_unstored: false,
            dirty: false,
        }
    }

    /// The dedicated group for fans and high-tier VIPs when it has an eligible
    /// agent, or a short queue and someone available; else the primary group.
    fn landing_group(&self, now: Millis, ix: InqIx) -> crate::core::agents::GroupIx {
        let rec = self.rec(ix);
        let primary = rec.home;
        let rules = &self.settings.dedicated;
        let Some(dedicated) = self.dedicated else { return primary };
        let customer = &rec.inquiry.customer;
        let qualifies =
            (rules.fans && customer.is_fan) || (rules.min_vip_tier > 0 && customer.vip_tier >= rules.min_vip_tier);
        if !qualifies || dedicated == primary {
            return primary;
        }
        let group = &self.groups[dedicated as usize];
        // Someone there who could serve this customer once a slot frees (the
        // language and skills it needs, not fatigued).
        let someone_could = group.agents.someone_working_could_serve(rec.need);
        let short_queue = group.queue.len() < rules.short_queue;
        if self.offerable_agent(now, dedicated, ix).is_some() || (short_queue && someone_could) {
            dedicated
        } else {
            primary
        }
    }

    /// LOW band pre-sales go to the bot first when the playbook says so.
    fn should_deflect(&self, ix: InqIx) -> bool {
        let rec = self.rec(ix);
        let level = self.groups[rec.home as usize].level;
        self.playbook(level).deflect_low_pre_sales
            && rec.band == Band::Low
            && rec.inquiry.category == Category::PreSales
            && !rec.inquiry.bot_attempted
    }

    /// The bot's copy of a deflected inquiry is stored; forgotten or handed
    /// back meanwhile, there is nothing to note.
    pub(super) fn deflection_stored(&mut self, id: &str) {
        let Some(ix) = self.find_inquiry(id) else { return };
        if self.rec(ix).deflection_unstored {
            self.rec_mut(ix).deflection_unstored = false;
        }
    }

    /// Marks an inquiry finished; it stays queryable for `retain_finished`.
    pub(super) fn finish(&mut self, now: Millis, ix: InqIx, state: InquiryState) {
        let rec = self.rec_mut(ix);
        // A finished inquiry is shown in the group that last had it, not in
        // the queue it would have gone back to.
        if let Place::Offered { group, .. } | Place::Active { group, .. } = rec.place {
            rec.home = group;
        }
        rec.place = Place::Finished { state, at: now };
        self.finished.push_back((now, ix));
    }

    pub(super) fn accept(
        &mut self,
        now: Millis,
        actor: &Actor,
        id: &str,
        fx: &mut Vec<Effect>,
    ) -> Result<(), CoreError> {
        let (ix, ax) = self.held_by_actor(actor, id, false, "accept")?;
        let Place::Offered { group, deadline, .. } = self.rec(ix).place else { unreachable!() };
        self.offer_deadlines.remove(&(deadline, ix));
        self.answered_an_offer(ax);
        let rec = self.rec_mut(ix);
        rec.place = Place::Active { agent: ax, group, accepted_at: now };
        // The wait is receipt to the first acceptance; a chat handed off and
        // taken again is not a new customer.
        let first = !rec.timeline.iter().any(|step| step.kind == EventKind::Accepted);
        let waited = first.then(|| now.saturating_sub(rec.received_at));
        // An anonymous customer (no id) has no previous agent to come back to.
        if !rec.inquiry.customer.id.is_empty() {
            let key = sticky_key(&rec.inquiry.shop_id, &rec.inquiry.customer.id);
            self.sticky.insert(key, (ax, now));
            self.sticky_expiry.push_back((now, key));
        }
        let detail = EventDetail { agent: Some(ax), waited_ms: waited, ..EventDetail::default() };
        self.emit(now, ix, EventKind::Accepted, Some(detail), fx);
        Ok(())
    }

    /// Any answer to an offer, accept or decline, shows the agent at the
    /// desk: it breaks a run of timeouts.
    fn answered_an_offer(&mut self, ax: AgentIx) {
        if self.agents[ax as usize].consecutive_timeouts != 0 {
            self.agents[ax as usize].consecutive_timeouts = 0;
            self.touch_agent(ax);
        }
    }

    pub(super) fn decline(
        &mut self,
        now: Millis,
        actor: &Actor,
        id: &str,
        reason: Option<Box<str>>,
        fx: &mut Vec<Effect>,
    ) -> Result<(), CoreError> {
        let reason = reason.filter(|r| !r.trim().is_empty());
        if let Some(reason) = &reason {
            check_decline_reason(reason)?;
        }
        let (ix, ax) = self.held_by_actor(actor, id, false, "decline")?;
        self.answered_an_offer(ax);
        let said = Said { note: None, reason: reason.map(String::from) };
        self.take_back(now, ix, ax, EventKind::Declined, said, fx);
        self.fill_agent(now, ax, Some(ix), fx);
        Ok(())
    }

    pub(super) fn complete(
        &mut self,
        now: Millis,
        actor: &Actor,
        id: &str,
        fx: &mut Vec<Effect>,
    ) -> Result<(), CoreError> {
        let (ix, ax) = self.held_by_actor(actor, id, true, "complete")?;
        let Place::Active { group, .. } = self.rec(ix).place else { unreachable!() };
        // The release and the offers that refill the slot re-key the agent
        // once instead of each time.
        self.hold_index(ax);
        self.release(ax, ix);
        let handled = now.saturating_sub(self.rec(ix).accepted_at().unwrap_or(now));
        let avg = &mut self.groups[group as usize].handle_ms_avg;
        *avg = 0.9 * *avg + 0.1 * handled as f64; // EWMA: recent handle times weigh most
        self.handle_avg_moved = true;
        let detail = EventDetail { agent: Some(ax), handled_ms: Some(handled), ..EventDetail::default() };
        self.emit(now, ix, EventKind::Completed, Some(detail), fx);
        // Someone else closed the agent's chat (an admin signing off a
        // desktop left on): its desktop must drop it.
        if *self.agents[ax as usize].id != *actor.id {
            let (inquiry, agent) = (self.rec(ix).inquiry.id.clone(), self.agents[ax as usize].id.clone());
            fx.push(Effect::Withdraw { inquiry, agent, reason: "completed by an admin" });
        }
        self.finish(now, ix, InquiryState::Completed);
        self.fill_agent(now, ax, None, fx);
        self.release_index(ax);
        Ok(())
    }

    pub(super) fn cancel(
        &mut self,
        now: Millis,
        id: &str,
        shop: Option<&str>,
        fx: &mut Vec<Effect>,
    ) -> Result<(), CoreError> {
        let ix = self.inquiry_by_id(id)?;
        if shop.is_some_and(|shop| *self.rec(ix).inquiry.shop_id != *shop) {
            // As unknown as any id the shop never published.
            return Err(CoreError::UnknownInquiry(id.into()));
        }
        let place = self.rec(ix).place;
        let holder = match place {
            // The customer left while the bot had them: the bot's hand-back,
            // should it come, is then refused like any repeat.
            Place::Finished { state: InquiryState::Deflected, at } => {
                self.emit(now, ix, EventKind::Cancelled, None, fx);
                self.rec_mut(ix).place = Place::Finished { state: InquiryState::Cancelled, at };
                return Ok(());
            }
            Place::Finished { state, .. } => return Err(CoreError::AlreadyFinished(id.into(), state)),
            Place::Waiting => {
                self.dequeue(ix);
                None
            }
            Place::Offered { agent, deadline, .. } => {
                self.offer_deadlines.remove(&(deadline, ix));
                Some(agent)
            }
            Place::Active { agent, .. } => Some(agent),
        };
        if let Some(ax) = holder {
            self.release(ax, ix);
            let agent = self.agents[ax as usize].id.clone();
            fx.push(Effect::Withdraw { inquiry: id.into(), agent, reason: "cancelled by the customer" });
        }
        let detail = EventDetail { agent: holder, ..EventDetail::default() };
        self.emit(now, ix, EventKind::Cancelled, Some(detail), fx);
        self.finish(now, ix, InquiryState::Cancelled);
        if let Some(ax) = holder {
            self.fill_agent(now, ax, None, fx);
        }
        Ok(())
    }
}

/// Longest decline reason, in bytes: a line for the lead, not a transcript
/// (every decline adds a step to the inquiry's record).
pub const MAX_DECLINE_REASON: usize = 512;

fn check_decline_reason(reason: &str) -> Result<(), CoreError> {
    if reason.len() > MAX_DECLINE_REASON {
        return Err(CoreError::InvalidArgument(format!(
            "reason is {} bytes; keep a decline reason within {MAX_DECLINE_REASON} bytes",
            reason.len()
        )));
    }
    if reason.chars().any(char::is_control) {
        return Err(CoreError::InvalidArgument(
            "reason contains control characters; send one line of plain text".to_string(),
        ));
    }
    Ok(())
}
