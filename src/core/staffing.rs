//! Erlang C staffing advice (SPEC section 4, "Staffing advice").
//!
//! A chat agent works several conversations at once. The router queues for
//! chat slots, each busy for a whole conversation, so Erlang C runs on slots
//! (servers) with the handle time as service time; the agents are the slots
//! over the chats one agent works at once.

/// Inputs for one group's advice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StaffingInput {
    /// Customers waiting now: whatever the arrival rate, they need agents
    /// (after a quiet minute or a restart the rate reads 0).
    pub waiting: u32,
    pub arrivals_per_sec: f64,
    pub handle_secs: f64,
    pub concurrency: f64,
    /// Share to answer within `answer_within_secs`, e.g. 0.8.
    pub service_level: f64,
    pub answer_within_secs: f64,
    /// Standby reserve of the level in force, e.g. 0.25.
    pub standby_reserve: f64,
}

/// The advice: Erlang C agents for the arrival rate, and the total: at least
/// enough agents for the customers waiting, plus the standby reserve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StaffingAdvice {
    pub erlang_agents: u32,
    pub recommended: u32,
}

/// Upper bound on the search, in chat slots, far above any real team.
const MAX_SLOTS: u32 = 1_000_000;

/// Probability that an arrival waits, with `agents` servers and `traffic` Erlangs.
/// 1.0 when the queue is unstable (`agents <= traffic`).
pub fn erlang_c(agents: u32, traffic: f64) -> f64 {
    if traffic <= 0.0 {
        return 0.0;
    }
    if f64::from(agents) <= traffic {
        return 1.0;
    }
    erlang_c_from_b(agents, traffic, erlang_b(agents, traffic))
}

/// Erlang B, from 1/B(n) = sum over j of n!/((n-j)! A^j).
///
/// This runs for every group on every tick, with `agents` just above the
/// traffic (thousands of Erlangs in a big team at a promotion). Once n - j
/// is below the traffic the terms fall off like exp(-j^2 / 2A), so the sum
/// is complete to the last bit after a few times sqrt(A) of them instead
/// of all `agents` of the textbook recurrence.
fn erlang_b(agents: u32, traffic: f64) -> f64 {
    let per_traffic = 1.0 / traffic;
    let (mut inverse, mut term) = (1.0_f64, 1.0_f64);
    for left in (1..=agents).rev() {
        term *= f64::from(left) * per_traffic;
        inverse += term;
        let falling = f64::from(left) <= traffic;
        if (falling && term < inverse * f64::EPSILON) || inverse.is_infinite() {
            break;
        }
    }
    1.0 / inverse
}

/// One step of the recurrence: Erlang B of `n` servers from that of `n - 1`.
fn erlang_b_next(b: f64, n: u32, traffic: f64) -> f64 {
    traffic * b / (f64::from(n) + traffic * b)
}

fn erlang_c_from_b(agents: u32, traffic: f64, b: f64) -> f64 {
    let n = f64::from(agents);
    n * b / (n - traffic * (1.0 - b))
}

/// Share of arrivals answered within `within` seconds.
pub fn service_level(agents: u32, traffic: f64, service_secs: f64, within: f64) -> f64 {
    if traffic <= 0.0 {
        return 1.0;
    }
    service_level_from_c(agents, traffic, erlang_c(agents, traffic), service_secs, within)
}

fn service_level_from_c(agents: u32, traffic: f64, c: f64, service_secs: f64, within: f64) -> f64 {
    if c >= 1.0 {
        return 0.0;
    }
    1.0 - c * (-(f64::from(agents) - traffic) * within / service_secs).exp()
}

/// Agents needed to meet the service level, plus the standby reserve.
pub fn advise(input: StaffingInput) -> StaffingAdvice {
    // Slightly under the quotient before rounding up: 21 customers at 1.4 per
    // agent are 15 agents, though 21 / 1.4 is 15.000000000000002.
    let for_waiting = (f64::from(input.waiting) / input.concurrency.max(1.0) - 1e-9).ceil().max(0.0) as u32;
    let erlang = erlang_agents(&input);
    let agents = erlang.max(for_waiting);
    let recommended = (f64::from(agents) * (1.0 + input.standby_reserve.max(0.0)) - 1e-9).ceil() as u32;
    StaffingAdvice { erlang_agents: erlang, recommended }
}

/// Agents Erlang C asks for at the arrival rate (0 without traffic): the
/// fewest chat slots that meet the target, over the chats per agent.
fn erlang_agents(input: &StaffingInput) -> u32 {
    let service_secs = input.handle_secs;
    let traffic = input.arrivals_per_sec * service_secs;
    // NaN traffic counts as none.
    if traffic.is_nan() || traffic <= 0.0 || !service_secs.is_finite() {
        return 0;
    }
    // The smallest number of slots above the traffic that meets the target.
    // Erlang B is carried from one size to the next instead of recomputed,
    // so each candidate costs O(1) rather than O(slots).
    let mut slots = (traffic.min(f64::from(MAX_SLOTS)).floor() as u32).saturating_add(1);
    if slots < MAX_SLOTS {
        let mut b = erlang_b(slots, traffic);
        let level = |slots, b| {
            let c = erlang_c_from_b(slots, traffic, b);
            service_level_from_c(slots, traffic, c, service_secs, input.answer_within_secs)
        };
        while level(slots, b) < input.service_level {
            slots += 1;
            if slots >= MAX_SLOTS {
                break;
            }
            b = erlang_b_next(b, slots, traffic);
        }
    }
    (f64::from(slots) / input.concurrency.max(1.0) - 1e-9).ceil() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_matches_the_textbook_value() {
        // 10 Erlangs on 11 agents: probability of waiting about 0.682.
        let c = erlang_c(11, 10.0);
        assert!((c - 0.6821).abs() < 0.001, "{c}");
        assert_eq!(erlang_c(10, 10.0), 1.0);
        assert_eq!(erlang_c(3, 0.0), 0.0);
    }

    #[test]
    fn erlang_b_agrees_with_its_textbook_recurrence() {
        // The last case is a large team at a promotion, where the sum stops
        // long before it reaches every term.
        for (traffic, checked_from, up_to) in
            [(0.3, 1, 3_000), (7.5, 1, 3_000), (120.0, 1, 3_000), (2_500.0, 1, 3_000), (18_000.0, 17_500, 19_000)]
        {
            let mut b = 1.0;
            for agents in 1..=up_to {
                b = erlang_b_next(b, agents, traffic);
                if agents < checked_from {
                    continue;
                }
                let fast = erlang_b(agents, traffic);
                assert!((fast - b).abs() <= 1e-9 * b + 1e-250, "{agents} agents, {traffic} E: {fast} vs {b}");
            }
        }
    }

    #[test]
    fn classic_call_centre_example_needs_fourteen_agents() {
        // 100 calls per half hour, 3 min handle time, 80 % within 20 s.
        let advice = advise(StaffingInput {
            waiting: 0,
            arrivals_per_sec: 100.0 / 1800.0,
            handle_secs: 180.0,
            concurrency: 1.0,
            service_level: 0.8,
            answer_within_secs: 20.0,
            standby_reserve: 0.0,
        });
        assert_eq!(advice.erlang_agents, 14);
        assert_eq!(advice.recommended, 14);
    }

    #[test]
    fn advice_is_the_smallest_team_meeting_the_target() {
        for (arrivals_per_sec, handle_secs, concurrency) in
            [(0.05, 180.0, 1.0), (2.0, 240.0, 4.0), (37.0, 300.0, 3.5), (200.0, 240.0, 5.0)]
        {
            let input = StaffingInput {
                waiting: 0,
                arrivals_per_sec,
                handle_secs,
                concurrency,
                service_level: 0.8,
                answer_within_secs: 30.0,
                standby_reserve: 0.0,
            };
            let traffic = arrivals_per_sec * handle_secs;
            let mut slots = traffic.floor() as u32 + 1;
            while service_level(slots, traffic, handle_secs, 30.0) < 0.8 {
                slots += 1;
            }
            let naive = (f64::from(slots) / concurrency - 1e-9).ceil() as u32;
            assert_eq!(advise(input).erlang_agents, naive, "{input:?}");
        }
    }

    #[test]
    fn concurrency_and_standby_reserve_shape_the_advice() {
        let base = StaffingInput {
            waiting: 0,
            arrivals_per_sec: 2.0,
            handle_secs: 240.0,
            concurrency: 4.0,
            service_level: 0.8,
            answer_within_secs: 30.0,
            standby_reserve: 0.0,
        };
        let plain = advise(base);
        // 2/s x 240 s = 480 Erlangs on slots of 4 per agent: a little more than 120 agents.
        assert!(plain.erlang_agents > 120 && plain.erlang_agents < 130, "{plain:?}");
        let with_reserve = advise(StaffingInput { standby_reserve: 0.25, ..base });
        assert_eq!(with_reserve.recommended, (f64::from(plain.erlang_agents) * 1.25).ceil() as u32);
        assert_eq!(advise(StaffingInput { arrivals_per_sec: 0.0, ..base }), StaffingAdvice::default());
    }

    #[test]
    fn a_small_chat_team_is_sized_by_its_slots() {
        // 6 a minute, 4 minutes each, 5 chats per agent: 24 Erlangs. 30 slots
        // (6 agents) answer about 92 % within 30 s; 25 slots (5) too few.
        let input = StaffingInput {
            waiting: 0,
            arrivals_per_sec: 0.1,
            handle_secs: 240.0,
            concurrency: 5.0,
            service_level: 0.8,
            answer_within_secs: 30.0,
            standby_reserve: 0.0,
        };
        assert!((service_level(30, 24.0, 240.0, 30.0) - 0.918).abs() < 0.001);
        assert!(service_level(25, 24.0, 240.0, 30.0) < 0.8);
        assert_eq!(advise(input).erlang_agents, 6);
    }

    #[test]
    fn chats_waiting_need_agents_even_with_no_arrivals_measured() {
        let quiet = StaffingInput {
            waiting: 7,
            arrivals_per_sec: 0.0,
            handle_secs: 240.0,
            concurrency: 3.0,
            service_level: 0.8,
            answer_within_secs: 30.0,
            standby_reserve: 0.25,
        };
        // Three chats each: 3 agents for 7 customers, plus the standby reserve.
        assert_eq!(advise(quiet), StaffingAdvice { erlang_agents: 0, recommended: 4 });
        let busy = StaffingInput { arrivals_per_sec: 1.0, ..quiet };
        assert!(advise(busy).erlang_agents > 3, "the arrival rate asks for more: {:?}", advise(busy));
        assert_eq!(advise(busy).recommended, (f64::from(advise(busy).erlang_agents) * 1.25).ceil() as u32);
        // No rounding up past a whole number: 21 customers at 1.4 each need 15 agents.
        let mixed = StaffingInput { waiting: 21, concurrency: 7.0 / 5.0, standby_reserve: 0.0, ..quiet };
        assert_eq!(advise(mixed).recommended, 15);
    }
}
