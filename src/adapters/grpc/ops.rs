//! `Ops`: queues and staffing advice per group, and the level overrides ops
//! pin for a promotion.
//!
//! Reads are open to every authenticated caller; the override writes are
//! for admins only (checked here first, and again by the core). Converts
//! only: levels, reserves and advice are computed by the core.

use super::auth::staff_actor;
use crate::adapters::convert;
use crate::adapters::engine::{now_ms, EngineHandle};
use crate::core::router::GroupView;
use crate::core::{Actor, AgentStatus, Command, Millis, Role};
use crate::proto::{self, ops_server::Ops};
use tonic::{Request, Response, Status};

/// The `Ops` service.
pub struct OpsService {
    engine: EngineHandle,
}

impl OpsService {
    /// The service over `engine`.
    pub fn new(engine: EngineHandle) -> OpsService {
        OpsService { engine }
    }
}

fn require_admin(actor: &Actor, what: &str) -> Result<(), Status> {
    match actor.role {
        Role::Admin | Role::System => Ok(()),
        _ => Err(Status::permission_denied(format!("`{}` may not {what}: only admins may", actor.id))),
    }
}

/// `""` is the whole router.
fn scope(group: &str) -> Option<String> {
    (!group.is_empty()).then(|| group.to_string())
}

/// One group's queue as `GetQueues` shows it.
pub fn group_queue(g: &GroupView) -> proto::GroupQueue {
    proto::GroupQueue {
        group: g.id.to_string(),
        waiting_high: g.waiting[0],
        waiting_normal: g.waiting[1],
        waiting_low: g.waiting[2],
        oldest_wait_seconds: g.oldest_wait_ms as f64 / 1000.0,
        agents: AgentStatus::ALL
            .iter()
            .zip(g.agents)
            .map(|(&s, count)| proto::AgentCount { status: convert::agent_status(s) as i32, count })
            .collect(),
        occupancy: g.occupancy,
        level: convert::level(g.level) as i32,
        reserved_capacity_ratio: g.reserve_held(),
        reserved_slots: g.reserved_slots,
        recommended_agents: g.recommended_agents,
    }
}

/// One group's staffing advice. `agents_online` counts the AVAILABLE agents,
/// the ones taking work now.
pub fn group_staffing(g: &GroupView) -> proto::GroupStaffing {
    proto::GroupStaffing {
        group: g.id.to_string(),
        arrivals_per_minute: g.arrivals_per_min,
        average_handle_seconds: g.handle_secs,
        concurrency: g.concurrency,
        erlang_agents: g.erlang_agents,
        standby_reserve: g.standby_reserve,
        recommended_agents: g.recommended_agents,
        agents_online: g.agents[0],
        level: convert::level(g.level) as i32,
        routed_per_minute: g.routed_per_min,
    }
}

/// The override window of a request, `from_ms = 0` resolved to `now`; or
/// INVALID_ARGUMENT.
pub fn override_window(req: &proto::SetLevelOverrideRequest, now: Millis) -> Result<(Millis, Millis), Status> {
    let from = match Millis::try_from(req.from_ms) {
        Ok(0) => now,
        Ok(from) => from,
        Err(_) => return Err(Status::invalid_argument("from_ms must be 0 (now) or a time in ms since the epoch")),
    };
    let until = Millis::try_from(req.until_ms).unwrap_or(0);
    // Before 1973 in ms but a date of today in seconds: the commonest slip.
    let in_seconds = |ms: i64| now >= 1_000_000_000_000 && (1..100_000_000_000).contains(&ms);
    for (name, value) in [("from_ms", req.from_ms), ("until_ms", req.until_ms)] {
        if in_seconds(value) {
            return Err(Status::invalid_argument(format!(
                "{name} ({value}) looks like seconds since the epoch; send milliseconds ({}000)",
                value
            )));
        }
    }
    if until <= from {
        return Err(Status::invalid_argument(format!(
            "until_ms ({}) must be later than from_ms ({from}); the override window would be empty",
            req.until_ms
        )));
    }
    Ok((from, until))
}

#[tonic::async_trait]
impl Ops for OpsService {
    async fn get_queues(
        &self,
        request: Request<proto::GetQueuesRequest>,
    ) -> Result<Response<proto::GetQueuesResponse>, Status> {
        staff_actor(&request)?;
        let response = self
            .engine
            .query(|router, now| proto::GetQueuesResponse {
                router_level: convert::level(router.router_level()) as i32,
                groups: router.groups(now).iter().map(group_queue).collect(),
                overrides: router
                    .overrides(now)
                    .into_iter()
                    .map(|(group, level, from, until)| proto::LevelOverride {
                        group: group.map_or(String::new(), |g| g.to_string()),
                        min_level: convert::level(level) as i32,
                        from_ms: from as i64,
                        until_ms: until as i64,
                    })
                    .collect(),
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn set_level_override(
        &self,
        request: Request<proto::SetLevelOverrideRequest>,
    ) -> Result<Response<proto::LevelOverride>, Status> {
        let actor = staff_actor(&request)?;
        require_admin(&actor, "set a level override")?;
        let req = request.into_inner();
        let level = proto::LoadLevel::try_from(req.min_level)
            .map_err(|_| Status::invalid_argument(format!("min_level {} is not a known LoadLevel", req.min_level)))?;
        // NORMAL (also what an unset field reads as) pins nothing: the
        // highest window in force wins, so it could never lower a level.
        if level == proto::LoadLevel::Normal {
            return Err(Status::invalid_argument(
                "min_level NORMAL pins nothing; set PEAK or SURGE, or end an override with ClearLevelOverride",
            ));
        }
        let (from, until) = override_window(&req, now_ms())?;
        let group = scope(&req.group).map(|g| super::group_id("group", &g).map(str::to_string)).transpose()?;
        let command = Command::SetLevelOverride { actor, group, level: convert::level_from_proto(level), from, until };
        self.engine.execute(command).await?;
        tracing::info!(group = %req.group, level = ?level, from, until, "level override set");
        Ok(Response::new(proto::LevelOverride {
            group: req.group,
            min_level: level as i32,
            from_ms: from as i64,
            until_ms: until as i64,
        }))
    }

    async fn clear_level_override(
        &self,
        request: Request<proto::ClearLevelOverrideRequest>,
    ) -> Result<Response<proto::ClearLevelOverrideResponse>, Status> {
        let actor = staff_actor(&request)?;
        require_admin(&actor, "clear a level override")?;
        let group =
            scope(&request.get_ref().group).map(|g| super::group_id("group", &g).map(str::to_string)).transpose()?;
        let asked = group.clone();
        let was_set = self.engine.query(move |router, now| router.has_override(asked.as_deref(), now)).await?;
        self.engine.execute(Command::ClearLevelOverride { actor, group }).await?;
        tracing::info!(group = %request.get_ref().group, was_set, "level override cleared");
        // Every window of the scope is gone now, in force or scheduled.
        Ok(Response::new(proto::ClearLevelOverrideResponse { cleared: was_set }))
    }

    async fn get_staffing(
        &self,
        request: Request<proto::GetStaffingRequest>,
    ) -> Result<Response<proto::GetStaffingResponse>, Status> {
        staff_actor(&request)?;
        let groups = self.engine.query(|router, now| router.groups(now).iter().map(group_staffing).collect()).await?;
        Ok(Response::new(proto::GetStaffingResponse { groups }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn window(from_ms: i64, until_ms: i64) -> Result<(Millis, Millis), Status> {
        let req = proto::SetLevelOverrideRequest { from_ms, until_ms, ..proto::SetLevelOverrideRequest::default() };
        override_window(&req, 1_000)
    }

    #[test]
    fn override_window_resolves_now_and_rejects_empty_windows() {
        assert_eq!(window(0, 5_000).unwrap(), (1_000, 5_000));
        assert_eq!(window(2_000, 5_000).unwrap(), (2_000, 5_000));
        for (from, until) in [(0, 1_000), (0, 0), (5_000, 5_000), (6_000, 5_000), (-1, 5_000), (0, -5)] {
            assert_eq!(window(from, until).unwrap_err().code(), Code::InvalidArgument, "{from}..{until}");
        }
    }

    #[test]
    fn a_window_in_seconds_is_refused_with_the_unit_named() {
        let now = 1_795_470_000_000;
        let req = |from_ms, until_ms| proto::SetLevelOverrideRequest { from_ms, until_ms, ..Default::default() };
        let err = override_window(&req(1_795_473_128, 1_795_480_000_000), now).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("from_ms (1795473128) looks like seconds"), "{}", err.message());
        assert!(override_window(&req(0, 1_795_480_000), now).unwrap_err().message().contains("until_ms"));
        assert_eq!(override_window(&req(0, 1_795_480_000_000), now).unwrap(), (now, 1_795_480_000_000));
    }
}
