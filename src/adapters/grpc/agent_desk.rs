//! `AgentDesk`: presence, the offer stream and the actions on an offer.
//!
//! Converts requests to core commands (rejecting bad fields with
//! INVALID_ARGUMENT before anything changes) and answers from the router's
//! views. Routing decisions, ownership and state transitions are the core's.

use super::auth::{desk_actor, desk_or_admin_actor};
use super::offers::{Heartbeat, OfferHub, OfferStream, DESKTOP_BUFFER};
use super::{agent_id, group_id, inquiry_id};
use crate::adapters::engine::{EngineError, EngineHandle};
use crate::adapters::{codec, convert};
use crate::core::{Actor, AgentStatus, Command, CoreError, Id, Presence};
use crate::proto::{self, agent_desk_server::AgentDesk};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

/// The `AgentDesk` service.
pub struct AgentDeskService {
    engine: EngineHandle,
    hub: OfferHub,
}

impl AgentDeskService {
    /// The service over `engine`, streaming offers from `hub` (the same hub
    /// the engine delivers effects to).
    pub fn new(engine: EngineHandle, hub: OfferHub) -> AgentDeskService {
        AgentDeskService { engine, hub }
    }

    /// Runs an action command, then answers with the inquiry's new state.
    /// `in_own_name`: an admin acting for an agent does so as itself.
    async fn act(
        &self,
        request: Request<proto::InquiryAction>,
        command: fn(Actor, Id, Option<Box<str>>) -> Command,
        in_own_name: bool,
    ) -> Result<Response<proto::ActionResponse>, Status> {
        let agent_id = agent_id(&request.get_ref().agent_id)?;
        let actor =
            if in_own_name { desk_or_admin_actor(&request, agent_id)? } else { desk_actor(&request, agent_id)? };
        let inquiry: Id = inquiry_id("inquiry_id", &request.get_ref().inquiry_id)?.into();
        if *actor.id != *agent_id {
            // An admin in its own name, still held to what that agent holds.
            let (key, agent) = (inquiry.clone(), Id::from(agent_id));
            let held = move |router: &crate::core::Router, now| {
                router.inquiry(now, &key).map(|v| v.owner.as_deref() == Some(&*agent))
            };
            if self.engine.query(held).await? == Some(false) {
                return Err(Status::permission_denied(format!(
                    "inquiry `{inquiry}` is not held by agent `{agent_id}`; name the agent who holds it"
                )));
            }
        }
        let reason = Some(request.get_ref().reason.trim()).filter(|r| !r.is_empty()).map(Box::from);
        self.engine.execute(command(actor, inquiry.clone(), reason)).await?;
        action_response(&self.engine, inquiry).await
    }
}

/// The state of `inquiry` as an `ActionResponse`.
pub(super) async fn action_response(
    engine: &EngineHandle,
    inquiry: Id,
) -> Result<Response<proto::ActionResponse>, Status> {
    let state = engine.query(move |router, _| router.inquiry_state(&inquiry)).await?;
    let state = state.map_or(proto::InquiryState::Unspecified, convert::inquiry_state);
    Ok(Response::new(proto::ActionResponse { state: state as i32 }))
}

/// A presence request as the core's `Presence`, or INVALID_ARGUMENT.
pub fn presence_from_proto(req: &proto::SetPresenceRequest) -> Result<Presence, Status> {
    let agent = agent_id(&req.agent_id)?;
    let wire = proto::AgentStatus::try_from(req.status)
        .map_err(|_| Status::invalid_argument(format!("status {} is not a known AgentStatus", req.status)))?;
    let status = convert::agent_status_from_proto(wire)
        .ok_or_else(|| Status::invalid_argument("status is required: AVAILABLE, AWAY, BREAK or OFFLINE"))?;
    // Checked first: a request listing a huge number would cost the check
    // below (and the engine) dearly before being refused anyway.
    if req.groups.len() > MAX_GROUPS {
        return Err(Status::invalid_argument(format!(
            "`groups` lists {} groups; an agent works in at most {MAX_GROUPS}",
            req.groups.len()
        )));
    }
    let mut groups = Vec::with_capacity(req.groups.len());
    for m in &req.groups {
        let group = group_id("groups.group", &m.group)?;
        let proficiency = u8::try_from(m.proficiency).ok().filter(|p| (1..=5).contains(p)).ok_or_else(|| {
            Status::invalid_argument(format!(
                "proficiency {} in group `{group}` is out of range; use 1 (learning) to 5 (expert)",
                m.proficiency
            ))
        })?;
        if groups.iter().any(|(g, _)| g == group) {
            return Err(Status::invalid_argument(format!(
                "group `{group}` is listed twice in `groups`; list each group once, with one proficiency"
            )));
        }
        groups.push((group.to_string(), proficiency));
    }
    if status == AgentStatus::Available && groups.is_empty() {
        return Err(Status::invalid_argument(
            "an AVAILABLE agent needs at least one group in `groups` (group id and proficiency 1-5)",
        ));
    }
    Ok(Presence {
        agent: agent.into(),
        status,
        groups,
        max_concurrent: (req.max_concurrent != 0).then_some(req.max_concurrent),
        languages: names("languages", &req.languages, MAX_LANGUAGES)?,
        skills: names("skills", &req.skills, MAX_SKILLS)?,
    })
}

/// Most groups one agent may work in.
const MAX_GROUPS: usize = 64;

/// Most languages and skills one agent may list. The router tells at most
/// 63 distinct languages and 63 distinct skills of agents apart, for as
/// long as it runs (names only inquiries bring take no room).
const MAX_LANGUAGES: usize = 8;
const MAX_SKILLS: usize = 16;

/// Language or skill names: at most `most`, each 1-64 letters, digits, `_`,
/// `-`, `.` or `:` (inquiries name skills the same way).
fn names(field: &str, values: &[String], most: usize) -> Result<Vec<String>, Status> {
    if values.len() > most {
        return Err(Status::invalid_argument(format!("`{field}` lists {} names; at most {most}", values.len())));
    }
    if let Some(bad) = values.iter().find(|v| !codec::is_usable_name(v)) {
        return Err(Status::invalid_argument(format!(
            "`{field}` entry `{}` is not usable: use 1-64 letters, digits, `_`, `-`, `.` or `:`",
            bad.chars().take(70).collect::<String>()
        )));
    }
    Ok(values.to_vec())
}

#[tonic::async_trait]
impl AgentDesk for AgentDeskService {
    async fn set_presence(
        &self,
        request: Request<proto::SetPresenceRequest>,
    ) -> Result<Response<proto::SetPresenceResponse>, Status> {
        let presence = presence_from_proto(request.get_ref())?;
        let actor = desk_or_admin_actor(&request, &presence.agent)?;
        let agent = presence.agent.clone();
        self.engine.execute(Command::SetPresence { actor, presence }).await?;
        let view = self.engine.query(move |router, _| router.agent(&agent)).await?;
        let view = view.ok_or_else(|| Status::internal("agent vanished right after SetPresence"))?;
        Ok(Response::new(proto::SetPresenceResponse {
            status: convert::agent_status(view.status) as i32,
            load: view.load,
            capacity: view.capacity,
        }))
    }

    type SubscribeStream = OfferStream;

    async fn subscribe(&self, request: Request<proto::SubscribeRequest>) -> Result<Response<OfferStream>, Status> {
        let agent_id = agent_id(&request.get_ref().agent_id)?;
        desk_actor(&request, agent_id)?;
        let agent: Id = agent_id.into();
        let id = agent.clone();
        if !self.engine.query(move |router, _| router.agent(&id).is_some()).await? {
            return Err(EngineError::Core(CoreError::UnknownAgent(agent.clone())).into());
        }
        // Queued rather than awaited, and the guard made right after with no
        // await between: the client may drop this call at any await, and a
        // connect counted without its guard would keep the agent "connected"
        // (never AWAY) for good.
        self.engine.submit(Command::DesktopConnected { agent: agent.clone() }).await?;
        // From here on, dropping the stream (or failing below) reports the disconnect.
        let heartbeat = Heartbeat { agent: agent.clone(), engine: self.engine.clone(), hub: self.hub.clone() };
        let (tx, rx) = mpsc::channel(DESKTOP_BUFFER);
        let (hub, id) = (self.hub.clone(), agent.clone());
        // Registered on the engine task: offers held now are re-sent first,
        // later ones arrive through the hub, none twice.
        let registered = self.engine.query(move |router, now| hub.register(router, now, &id, tx)).await?;
        if !registered {
            return Err(Status::unavailable("the server is shutting down; reconnect to a running instance"));
        }
        tracing::info!(agent_id = %crate::adapters::redact::Redacted(&agent), "desktop subscribed");
        Ok(Response::new(OfferStream::new(rx, heartbeat)))
    }

    async fn accept(&self, request: Request<proto::InquiryAction>) -> Result<Response<proto::ActionResponse>, Status> {
        self.act(request, |actor, inquiry, _| Command::Accept { actor, inquiry }, false).await
    }

    async fn decline(&self, request: Request<proto::InquiryAction>) -> Result<Response<proto::ActionResponse>, Status> {
        // The reason goes on the DECLINED step and event, for the lead.
        self.act(request, |actor, inquiry, reason| Command::Decline { actor, inquiry, reason }, false).await
    }

    async fn complete(
        &self,
        request: Request<proto::InquiryAction>,
    ) -> Result<Response<proto::ActionResponse>, Status> {
        self.act(request, |actor, inquiry, _| Command::Complete { actor, inquiry }, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn request(status: proto::AgentStatus, groups: &[(&str, u32)]) -> proto::SetPresenceRequest {
        proto::SetPresenceRequest {
            agent_id: "a1".into(),
            status: status as i32,
            groups: groups.iter().map(|&(g, p)| proto::GroupMembership { group: g.into(), proficiency: p }).collect(),
            ..proto::SetPresenceRequest::default()
        }
    }

    #[test]
    fn presence_converts_and_zero_max_concurrent_means_default() {
        let p = presence_from_proto(&request(proto::AgentStatus::Available, &[("orders", 4)])).unwrap();
        assert_eq!(p.groups, vec![("orders".to_string(), 4)]);
        assert_eq!(p.max_concurrent, None);
        assert_eq!(p.status, AgentStatus::Available);
    }

    #[test]
    fn bad_presence_fields_are_invalid_arguments() {
        let cases = [
            request(proto::AgentStatus::Unspecified, &[("orders", 3)]),
            request(proto::AgentStatus::Available, &[]),
            request(proto::AgentStatus::Available, &[("orders", 0)]),
            request(proto::AgentStatus::Available, &[("orders", 6)]),
            request(proto::AgentStatus::Available, &[("", 3)]),
            request(proto::AgentStatus::Available, &[("fans", 1), ("orders", 3), ("fans", 5)]),
            proto::SetPresenceRequest { status: 42, ..request(proto::AgentStatus::Away, &[]) },
            proto::SetPresenceRequest { agent_id: String::new(), ..request(proto::AgentStatus::Away, &[]) },
            proto::SetPresenceRequest { agent_id: "ann.lee".into(), ..request(proto::AgentStatus::Away, &[]) },
            proto::SetPresenceRequest { agent_id: "ann lee".into(), ..request(proto::AgentStatus::Away, &[]) },
            proto::SetPresenceRequest { agent_id: "a>".into(), ..request(proto::AgentStatus::Away, &[]) },
            proto::SetPresenceRequest { agent_id: "a".repeat(129), ..request(proto::AgentStatus::Away, &[]) },
        ];
        for case in cases {
            let err = presence_from_proto(&case).unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{case:?}: {}", err.message());
        }
        assert!(presence_from_proto(&request(proto::AgentStatus::Away, &[])).is_ok());
        let usable =
            proto::SetPresenceRequest { agent_id: "shop_7:ann-lee".into(), ..request(proto::AgentStatus::Away, &[]) };
        assert!(presence_from_proto(&usable).is_ok());
        // A flood of groups is refused before any is looked at.
        let flood: Vec<(String, u32)> = (0..300_000).map(|i| (format!("g{i}"), 3)).collect();
        let flood: Vec<(&str, u32)> = flood.iter().map(|(g, p)| (g.as_str(), *p)).collect();
        let err = presence_from_proto(&request(proto::AgentStatus::Available, &flood)).unwrap_err();
        assert!(err.message().contains("at most 64"), "{}", err.message());
    }
}
