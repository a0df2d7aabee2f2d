//! `Handoff`: transfer to an agent or a group with a note, escalation to the
//! supervisors, and `GetInquiry` with the full timeline and every offer's
//! decision trace.
//!
//! Converts only; who may hand off what is decided by the core (agents their
//! own inquiries, leads their groups', admins any).

use super::agent_desk::action_response;
use super::auth::staff_actor;
use super::{agent_token, group_id, inquiry_id};
use crate::adapters::convert;
use crate::adapters::engine::{EngineError, EngineHandle};
use crate::core::router::InquiryView;
use crate::core::{Command, CoreError, EventKind, Id, Role, TransferTarget};
use crate::proto::{self, handoff_server::Handoff, transfer_request::Target};
use tonic::{Request, Response, Status};

/// The `Handoff` service.
pub struct HandoffService {
    engine: EngineHandle,
}

impl HandoffService {
    /// The service over `engine`.
    pub fn new(engine: EngineHandle) -> HandoffService {
        HandoffService { engine }
    }
}

/// The transfer target of a request, or INVALID_ARGUMENT.
pub fn transfer_target(target: Option<&Target>) -> Result<TransferTarget, Status> {
    match target {
        Some(Target::ToAgent(agent)) => Ok(TransferTarget::Agent(agent_token("to_agent", agent)?.into())),
        Some(Target::ToGroup(group)) => Ok(TransferTarget::Group(group_id("to_group", group)?.to_string())),
        None => Err(Status::invalid_argument("a transfer needs a target: set `to_agent` or `to_group`")),
    }
}

/// The wire form of an inquiry's whole record.
pub fn inquiry_detail(v: &InquiryView<'_>) -> proto::InquiryDetail {
    let (id, shop) = (&*v.inquiry.id, &*v.inquiry.shop_id);
    proto::InquiryDetail {
        inquiry: Some(convert::inquiry(v.inquiry)),
        state: convert::inquiry_state(v.state) as i32,
        owner_agent_id: v.owner.as_deref().unwrap_or_default().to_string(),
        group: v.group.to_string(),
        score: v.score,
        band: convert::band(v.band) as i32,
        escalated: v.escalated,
        attempts: v.attempts,
        timeline: v.timeline.iter().map(|t| convert::timeline_entry(id, shop, t)).collect(),
    }
}

#[tonic::async_trait]
impl Handoff for HandoffService {
    async fn transfer(
        &self,
        request: Request<proto::TransferRequest>,
    ) -> Result<Response<proto::ActionResponse>, Status> {
        let actor = staff_actor(&request)?;
        let req = request.into_inner();
        let inquiry: Id = inquiry_id("inquiry_id", &req.inquiry_id)?.into();
        let target = transfer_target(req.target.as_ref())?;
        // SPEC: a transfer carries a note, so the customer never repeats themselves.
        if req.note.as_ref().is_none_or(|n| n.summary.trim().is_empty()) {
            return Err(Status::invalid_argument(
                "a transfer carries a handoff note: set note.summary (the problem), and note.attempted and \
                 note.customer_expectation, so the customer never has to repeat themselves",
            ));
        }
        let note = convert::note_from_proto(req.note);
        self.engine.execute(Command::Transfer { actor, inquiry: inquiry.clone(), target, note }).await?;
        action_response(&self.engine, inquiry).await
    }

    async fn escalate(
        &self,
        request: Request<proto::EscalateRequest>,
    ) -> Result<Response<proto::ActionResponse>, Status> {
        let actor = staff_actor(&request)?;
        let req = request.into_inner();
        let inquiry: Id = inquiry_id("inquiry_id", &req.inquiry_id)?.into();
        let note = convert::note_from_proto(req.note);
        self.engine.execute(Command::Escalate { actor, inquiry: inquiry.clone(), note }).await?;
        action_response(&self.engine, inquiry).await
    }

    async fn get_inquiry(
        &self,
        request: Request<proto::GetInquiryRequest>,
    ) -> Result<Response<proto::InquiryDetail>, Status> {
        let actor = staff_actor(&request)?;
        let id: Id = inquiry_id("inquiry_id", &request.get_ref().inquiry_id)?.into();
        let key = id.clone();
        let reader = actor.clone();
        let detail = self
            .engine
            .query(move |router, now| {
                router.inquiry(now, &key).map(|v| {
                    // Least data necessary: an agent reads what it holds now or
                    // served (accepted) once, not what it only declined or let
                    // time out; leads and admins read any inquiry.
                    let own = |agent: &Option<Id>| agent.as_deref() == Some(&*reader.id);
                    // (A record cut to fit the journal may keep only the first
                    // acceptance: what the agent did with the chat shows too.)
                    let served = v.timeline.iter().any(|t| {
                        matches!(
                            t.kind,
                            EventKind::Accepted | EventKind::Transferred | EventKind::Escalated | EventKind::Completed
                        ) && own(&t.agent)
                    });
                    let readable = reader.role != Role::Agent || own(&v.owner) || served;
                    readable.then(|| inquiry_detail(&v))
                })
            })
            .await?;
        let detail = detail.ok_or_else(|| EngineError::from(CoreError::UnknownInquiry(id.clone())))?;
        let detail = detail.ok_or_else(|| {
            Status::permission_denied(format!(
                "`{}` may read only inquiries it holds or served, not `{id}`; a lead or admin can read any",
                actor.id
            ))
        })?;
        Ok(Response::new(detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn a_transfer_needs_a_non_empty_target() {
        assert_eq!(transfer_target(None).unwrap_err().code(), Code::InvalidArgument);
        assert_eq!(transfer_target(Some(&Target::ToGroup(String::new()))).unwrap_err().code(), Code::InvalidArgument);
        assert_eq!(transfer_target(Some(&Target::ToAgent("a2".into()))).unwrap(), TransferTarget::Agent("a2".into()));
        let bad = transfer_target(Some(&Target::ToAgent("ann.lee".into()))).unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert!(bad.message().starts_with("to_agent `ann.lee` is not usable"), "{}", bad.message());
        assert_eq!(
            transfer_target(Some(&Target::ToGroup("orders".into()))).unwrap(),
            TransferTarget::Group("orders".into())
        );
    }
}
