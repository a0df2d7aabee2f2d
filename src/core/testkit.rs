//! Builders for tests, benchmarks and simulations that drive the core
//! directly: inquiries, presences and a router that checks itself.

use super::command::{Actor, Command, Presence};
use super::effect::{Effect, Offer};
use super::error::CoreError;
use super::router::Router;
use super::settings::RoutingSettings;
use super::types::{AgentStatus, Category, Channel, Customer, Inquiry, Millis};

/// An inquiry with plain defaults: a CHAT in `zh` from an ordinary customer.
pub fn inquiry(id: &str, category: Category) -> Inquiry {
    Inquiry {
        id: id.into(),
        shop_id: "shop-1".into(),
        platform: "taobao".into(),
        customer: Customer { id: format!("c-{id}").into(), vip_tier: 0, is_fan: false, lifetime_value_cents: 0 },
        category,
        channel: Channel::Chat,
        language: "zh".into(),
        required_skills: Vec::new(),
        order_value_cents: 0,
        subject: None,
        created_at_ms: 0,
        bot_attempted: false,
    }
}

/// An AVAILABLE agent in `groups` (proficiency each) with `max` chats.
pub fn presence(agent: &str, groups: &[(&str, u8)], max: u32) -> Presence {
    Presence {
        agent: agent.into(),
        status: AgentStatus::Available,
        groups: groups.iter().map(|&(g, p)| (g.to_string(), p)).collect(),
        max_concurrent: Some(max),
        languages: vec!["zh".to_string()],
        skills: Vec::new(),
    }
}

/// A router driven by explicit times, checking its invariants after every
/// command.
pub struct Bench {
    pub router: Router,
    pub now: Millis,
    pub check: bool,
}

impl Bench {
    /// A router with `settings`, at time 1,000,000 ms.
    pub fn new(settings: RoutingSettings) -> Bench {
        Bench { router: Router::new(settings).expect("valid settings"), now: 1_000_000, check: true }
    }

    /// Applies a command now; returns its effects or error.
    pub fn try_apply(&mut self, command: Command) -> Result<Vec<Effect>, CoreError> {
        let mut fx = Vec::new();
        let result = self.router.handle(self.now, command, &mut fx);
        if self.check {
            if let Err(e) = self.router.check_invariants() {
                panic!("invariant broken at {}: {e}", self.now);
            }
        }
        result.map(|()| fx)
    }

    /// Applies a command that must succeed.
    pub fn apply(&mut self, command: Command) -> Vec<Effect> {
        self.try_apply(command).unwrap_or_else(|e| panic!("command failed: {e}"))
    }

    /// Moves time forward and ticks.
    pub fn advance(&mut self, ms: Millis) -> Vec<Effect> {
        self.now += ms;
        self.apply(Command::Tick)
    }

    /// Sets an agent's presence as that agent.
    pub fn agent(&mut self, p: Presence) -> Vec<Effect> {
        let actor = Actor::agent(&p.agent);
        self.apply(Command::SetPresence { actor, presence: p })
    }

    /// Publishes an inquiry.
    pub fn arrive(&mut self, inquiry: Inquiry) -> Vec<Effect> {
        self.apply(Command::Arrive(Box::new(inquiry)))
    }

    /// Accepts as `agent`.
    pub fn accept(&mut self, agent: &str, inquiry: &str) -> Vec<Effect> {
        self.apply(Command::Accept { actor: Actor::agent(agent), inquiry: inquiry.into() })
    }

    /// Completes as `agent`.
    pub fn complete(&mut self, agent: &str, inquiry: &str) -> Vec<Effect> {
        self.apply(Command::Complete { actor: Actor::agent(agent), inquiry: inquiry.into() })
    }
}

/// The offers among `effects`.
pub fn offers(effects: &[Effect]) -> Vec<&Offer> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Offer(o) => Some(o),
            _ => None,
        })
        .collect()
}

/// `(inquiry, agent)` of every offer among `effects`.
pub fn offer_pairs(effects: &[Effect]) -> Vec<(String, String)> {
    offers(effects).iter().map(|o| (o.inquiry.to_string(), o.agent.to_string())).collect()
}
