//! The age index against a model of what it replaced: a separate index of
//! running overflow clocks, from which the tick takes those that ran out.
//! Random arrivals, returns behind the walk (an ended offer keeps its wait
//! start), departures and ticks with changing `overflow_after`.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
enum Op {
    /// Queues at `now`; `overflowed` as a return after it overflowed.
    Arrive { clocked: bool, overflowed: bool },
    /// Queues again with the wait start it had `ago` ms before now.
    Return { ago: u64, clocked: bool },
    /// The `n`th waiting inquiry (modulo how many wait) leaves.
    Leave { n: usize },
    /// Time moves on and the tick takes the clocks that ran out.
    Tick { advance: u64, after: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), prop::bool::weighted(0.2)).prop_map(|(clocked, overflowed)| Op::Arrive { clocked, overflowed }),
        2 => (millis(400), any::<bool>()).prop_map(|(ago, clocked)| Op::Return { ago, clocked }),
        2 => any::<usize>().prop_map(|n| Op::Leave { n }),
        3 => (millis(150), prop::sample::select(vec![0u64, 1, 2, 50, 100, 300]))
            .prop_map(|(advance, after)| Op::Tick { advance, after }),
    ]
}

/// Milliseconds below `max`, often only a few: ties and near-ties of wait
/// starts are where a walk that resumes can go wrong.
fn millis(max: u64) -> impl Strategy<Value = u64> {
    prop_oneof![0..3u64, 0..max]
}

/// What the queue held before: every waiting inquiry, and the running clocks.
#[derive(Default)]
struct Model {
    waiting: BTreeMap<AgeKey, InqIx>,
    clocks: BTreeSet<AgeKey>,
}

fn slot_of(&(since, seq): &AgeKey) -> Slot {
    super::tests::slot(since, seq)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_age_index_lets_the_same_clocks_run_out_at_the_same_ticks(ops in prop::collection::vec(op(), 1..120)) {
        let (mut q, mut model) = (GroupQueue::default(), Model::default());
        let (mut now, mut seq): (Millis, u64) = (1_000, 0);
        for op in ops {
            match op {
                Op::Arrive { clocked, overflowed } => {
                    seq += 1;
                    let age = (now, seq);
                    q.insert(seq as InqIx, &slot_of(&age), overflowed, clocked);
                    model.waiting.insert(age, seq as InqIx);
                    if clocked && !overflowed {
                        model.clocks.insert(age);
                    }
                }
                Op::Return { ago, clocked } => {
                    seq += 1;
                    let age = (now.saturating_sub(ago), seq);
                    q.insert(seq as InqIx, &slot_of(&age), false, clocked);
                    model.waiting.insert(age, seq as InqIx);
                    if clocked {
                        model.clocks.insert(age);
                    }
                }
                Op::Leave { n } => {
                    if let Some(age) = model.waiting.keys().nth(n % model.waiting.len().max(1)).copied() {
                        q.remove(&slot_of(&age));
                        model.waiting.remove(&age);
                        model.clocks.remove(&age);
                    }
                }
                Op::Tick { advance, after } => {
                    now += advance;
                    let ran_out: Vec<AgeKey> = model.clocks.iter().take_while(|(since, _)| since + after <= now).copied().collect();
                    let expected: Vec<InqIx> = ran_out.iter().map(|age| model.waiting[age]).collect();
                    ran_out.iter().for_each(|age| { model.clocks.remove(age); });
                    let mut due = Vec::new();
                    q.take_due(now, after, &mut due);
                    prop_assert_eq!(due, expected, "at {} with overflow after {}", now, after);
                }
            }
            prop_assert!(q.check_ages().is_ok(), "{:?}", q.check_ages());
            prop_assert_eq!(q.len() as usize, model.waiting.len());
            prop_assert_eq!(q.oldest_since(), model.waiting.keys().next().map(|&(since, _)| since));
            for age in model.waiting.keys() {
                prop_assert_eq!(q.clock_runs(&slot_of(age)), model.clocks.contains(age), "clock of {:?}", age);
            }
        }
    }
}
