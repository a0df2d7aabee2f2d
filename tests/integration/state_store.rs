//! The state store on its own against a real nats-server: decisions appended
//! to the journal are read back, checkpoints move them into the bucket and
//! empty the journal, and later journal entries win over the checkpoint.

use crate::support::nats_server::NatsServer;
use bytes::Bytes;
use ticket_router::adapters::persistence::{frame, Appended, ForeignWrite, Pace, StateStore, StreamBehind, Write};
use ticket_router::config::NatsSettings;
use ticket_router::core::snapshot::AgentRecord;
use ticket_router::core::AgentStatus;

fn agent(id: &str, status: AgentStatus) -> Write {
    let record = AgentRecord {
        id: id.into(),
        status,
        groups: vec![("orders".into(), 3)],
        max_concurrent: 3,
        languages: vec!["zh".into()],
        skills: vec![],
        serving_since: None,
        paused_since: None,
        fatigued: false,
        consecutive_timeouts: 0,
    };
    (format!("agent.{id}"), Some(Bytes::from(serde_json::to_vec(&record).unwrap())))
}

async fn agents(store: &StateStore) -> Vec<(String, AgentStatus)> {
    let mut found: Vec<_> =
        store.load().await.expect("load").agents.into_iter().map(|a| (a.id.to_string(), a.status)).collect();
    found.sort_by(|x, y| x.0.cmp(&y.0));
    found
}

/// A nats-server of its own and a state store `test_state` on it.
async fn fresh_store() -> (NatsServer, async_nats::jetstream::Context, NatsSettings, StateStore) {
    let nats = NatsServer::start();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let settings = NatsSettings { url: nats.url(), state_bucket: "test_state".into(), ..NatsSettings::default() };
    let store = StateStore::open(js.clone(), &settings).await.expect("open");
    (nats, js, settings, store)
}

async fn journal_messages(js: &async_nats::jetstream::Context) -> u64 {
    js.get_stream("JOURNAL_test_state").await.unwrap().info().await.unwrap().state.messages
}

#[tokio::test]
async fn the_journal_is_replayed_over_the_last_checkpoint() {
    let (_nats, js, settings, store) = fresh_store().await;
    assert!(agents(&store).await.is_empty(), "a new store is empty");

    let first = vec![agent("a", AgentStatus::Available), agent("b", AgentStatus::Available)];
    let through = store.append_at_end(&frame::encode(&first, 1 << 20)).await.unwrap();
    let both = vec![("a".to_string(), AgentStatus::Available), ("b".to_string(), AgentStatus::Available)];
    assert_eq!(agents(&store).await, both, "read from the journal alone");

    store.checkpoint(&first, through, || true, &Default::default()).await.unwrap();
    assert_eq!(journal_messages(&js).await, 0, "a checkpoint empties the journal");
    assert_eq!(agents(&store).await, both, "read from the bucket alone");

    // Later decisions, in two messages: `a` changes twice, `b` is forgotten.
    let later = vec![agent("a", AgentStatus::Away), ("agent.b".to_string(), None), agent("a", AgentStatus::Break)];
    store.append_at_end(&frame::encode(&later, 64)).await.unwrap();
    assert!(journal_messages(&js).await >= 2);
    assert_eq!(agents(&store).await, vec![("a".to_string(), AgentStatus::Break)], "journal over bucket, in order");

    // A reopened store (a restarted router) sees the same.
    let reopened = StateStore::open(js.clone(), &settings).await.expect("reopen");
    assert_eq!(agents(&reopened).await, vec![("a".to_string(), AgentStatus::Break)]);

    // Checkpointed, the forgotten key leaves nothing behind in the bucket:
    // no delete marker piles up for each record ever forgotten.
    let through = store.append_at_end(&frame::encode(&later, 1 << 20)).await.unwrap();
    store.checkpoint(&later, through, || true, &Default::default()).await.unwrap();
    assert_eq!(agents(&store).await, vec![("a".to_string(), AgentStatus::Break)], "read from the bucket alone");
    let bucket = js.get_stream("KV_test_state").await.unwrap();
    let gone = bucket.get_last_raw_message_by_subject("$KV.test_state.agent.b").await;
    assert!(gone.is_err(), "agent.b has no message left: {gone:?}");
}

#[tokio::test]
async fn a_journal_created_anew_goes_on_after_the_checkpoint() {
    let (_nats, js, settings, store) = fresh_store().await;
    let first = vec![agent("a", AgentStatus::Available)];
    for _ in 0..5 {
        store.append_at_end(&frame::encode(&first, 1 << 20)).await.unwrap();
    }
    let through = store.append_at_end(&frame::encode(&first, 1 << 20)).await.unwrap();
    store.checkpoint(&first, through, || true, &Default::default()).await.unwrap();
    assert_eq!(store.last_recorded().await.unwrap(), through);

    // The journal is lost; a router starting now opens a new one.
    js.delete_stream("JOURNAL_test_state").await.unwrap();
    let reopened = StateStore::open(js.clone(), &settings).await.expect("reopen");
    let later = vec![agent("a", AgentStatus::Break)];
    let seq = reopened.append_at_end(&frame::encode(&later, 1 << 20)).await.unwrap();
    assert!(seq > through, "appended at {seq}, after the checkpoint's {through}");
    assert_eq!(agents(&reopened).await, vec![("a".to_string(), AgentStatus::Break)], "not hidden by the marker");
}

#[tokio::test]
async fn a_group_commit_cut_short_by_a_crash_is_not_replayed() {
    let (_nats, js, settings, store) = fresh_store().await;
    store.append_at_end(&frame::encode(&[agent("a", AgentStatus::Available)], 1 << 20)).await.unwrap();

    // One group in several messages: `a` takes a break and `b` comes in.
    // The router stopped after storing its first message only.
    let group = frame::encode(&[agent("a", AgentStatus::Break), agent("b", AgentStatus::Available)], 64);
    assert!(group.len() >= 2);
    store.append_at_end(&group[..1]).await.unwrap();
    let before = vec![("a".to_string(), AgentStatus::Available)];
    assert_eq!(agents(&store).await, before, "half a group is no state the router was ever in");

    // The restarted router decides on: its groups are read, the stray half is not.
    let reopened = StateStore::open(js.clone(), &settings).await.expect("reopen");
    reopened.append_at_end(&frame::encode(&[agent("c", AgentStatus::Away)], 64)).await.unwrap();
    let after = vec![("a".to_string(), AgentStatus::Available), ("c".to_string(), AgentStatus::Away)];
    assert_eq!(agents(&reopened).await, after);
}

#[tokio::test]
async fn a_spread_checkpoint_writes_every_window_then_empties_the_journal() {
    let (_nats, js, _, store) = fresh_store().await;
    let writes: Vec<Write> = (0..200).map(|i| agent(&format!("a{i:03}"), AgentStatus::Available)).collect();
    let through = store.append_at_end(&frame::encode(&writes, 1 << 20)).await.unwrap();
    let pace = Pace { from: tokio::time::Instant::now(), over: std::time::Duration::from_millis(200) };
    let done = std::sync::atomic::AtomicUsize::new(0);
    store.checkpoint_paced(&writes, through, || true, &done, pace).await.unwrap();
    assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), 4, "four windows of 64, the last of 8");
    assert_eq!(journal_messages(&js).await, 0, "marked and purged after the last window");
    assert_eq!(agents(&store).await.len(), 200, "read from the bucket alone");
}

#[tokio::test]
async fn a_retried_checkpoint_goes_on_after_the_windows_it_stored() {
    let (_nats, js, _, store) = fresh_store().await;
    let writes: Vec<Write> = (0..100).map(|i| agent(&format!("a{i:03}"), AgentStatus::Available)).collect();
    // A first attempt stored its first window of 64 writes, then failed.
    let done = std::sync::atomic::AtomicUsize::new(1);
    store.checkpoint(&writes, 0, || true, &done).await.unwrap();
    assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), 2, "both windows done");
    let bucket = js.get_key_value("test_state").await.unwrap();
    assert!(bucket.get("agent.a000").await.unwrap().is_none(), "the first window is not written again");
    assert!(bucket.get("agent.a064").await.unwrap().is_some() && bucket.get("agent.a099").await.unwrap().is_some());
}

#[tokio::test]
async fn journal_messages_the_server_lost_are_reported_unless_a_snapshot_follows() {
    let (_nats, js, _, store) = fresh_store().await;
    let first = vec![agent("a", AgentStatus::Available)];
    let through = store.append_at_end(&frame::encode(&first, 1 << 20)).await.unwrap();
    store.checkpoint(&first, through, || true, &Default::default()).await.unwrap();
    let lost = store.append_at_end(&frame::encode(&[agent("b", AgentStatus::Available)], 1 << 20)).await.unwrap();
    store.append_at_end(&frame::encode(&[agent("c", AgentStatus::Available)], 1 << 20)).await.unwrap();
    assert_eq!(store.load_with_journal().await.unwrap().lost, None, "nothing missing");

    // The server loses the message right after the checkpoint.
    let journal = js.get_stream("JOURNAL_test_state").await.unwrap();
    journal.delete_message(lost).await.unwrap();
    assert_eq!(store.load_with_journal().await.unwrap().lost, Some((lost, lost)));

    // A snapshot of every record appended after the loss makes up for it.
    let all = vec![agent("a", AgentStatus::Available), agent("b", AgentStatus::Available)];
    let last = store.append_at_end(&frame::encode_group(&all, 1 << 20, true)).await.unwrap();
    assert_eq!(store.load_with_journal().await.unwrap().lost, None);

    // A journal emptied past the checkpoint lost everything after it.
    js.get_stream("JOURNAL_test_state").await.unwrap().purge().await.unwrap();
    assert_eq!(store.load_with_journal().await.unwrap().lost, Some((through + 1, last)));
}

#[tokio::test]
async fn a_checkpoint_not_allowed_to_mark_leaves_the_marker_and_the_journal_alone() {
    let (_nats, js, _, store) = fresh_store().await;
    let first = vec![agent("a", AgentStatus::Available)];
    let through = store.append_at_end(&frame::encode(&first, 1 << 20)).await.unwrap();
    // As while a lost bucket is being refilled: the values go in, nothing else.
    store.checkpoint(&first, through, || false, &Default::default()).await.unwrap();
    let bucket = js.get_key_value("test_state").await.unwrap();
    assert!(bucket.get("agent.a").await.unwrap().is_some(), "the values are written");
    assert!(bucket.get("checkpoint").await.unwrap().is_none(), "no marker");
    assert_eq!(journal_messages(&js).await, 1, "the journal keeps everything");
}

#[tokio::test]
async fn an_append_goes_only_right_after_where_this_router_left_the_journal() {
    let (_nats, js, _, store) = fresh_store().await;
    let start = store.load_with_journal().await.unwrap().journal_last;
    let first = frame::encode(&[agent("a", AgentStatus::Available)], 1 << 20);
    assert_eq!(store.append(&first, start).await.unwrap(), Appended::Through(start + 1));

    // An earlier attempt stored a group's first message, and its
    // acknowledgement was lost: the retry finds it and writes the rest once.
    let writes: Vec<Write> = (0..3).map(|i| agent(&format!("b{i}"), AgentStatus::Available)).collect();
    let group = frame::encode(&writes, 64);
    assert_eq!(group.len(), 3, "one message per record");
    store.append(&group[..1], start + 1).await.unwrap();
    assert_eq!(store.append(&group, start + 1).await.unwrap(), Appended::Through(start + 4));
    assert_eq!(journal_messages(&js).await, 4, "each message once");
    assert_eq!(agents(&store).await.len(), 4);

    // Another writer's message (a router that took over, or a late write of
    // one cut off from NATS) is found there, and nothing goes after it. (A
    // message this process wrote counts as its own: it is one of this
    // router's writes given up on, and the group goes after it.)
    let subject = "ticket_router.journal.test_state";
    let foreign = js.publish(subject, "not this router's".into()).await.unwrap().await.unwrap().sequence;
    let later = frame::encode(&[agent("c", AgentStatus::Available)], 1 << 20);
    assert_eq!(store.append(&later, start + 4).await.unwrap(), Appended::Foreign { seq: foreign });
    assert_eq!(journal_messages(&js).await, 5);
    assert_eq!(store.load_with_journal().await.unwrap().journal_last, foreign);
}

#[tokio::test]
async fn a_checkpoint_finds_another_writers_value_in_the_bucket_and_writes_nothing_after_it() {
    let (_nats, js, _, store) = fresh_store().await;
    store.load_with_journal().await.unwrap();
    let first = vec![agent("a", AgentStatus::Available)];
    let through = store.append_at_end(&frame::encode(&first, 1 << 20)).await.unwrap();
    store.checkpoint(&first, through, || true, &Default::default()).await.unwrap();

    // Another router's value, or the late put of one cut off from NATS.
    let bucket = js.get_key_value("test_state").await.unwrap();
    let seq = bucket.put("agent.x", "{}".into()).await.unwrap();
    let later = vec![agent("b", AgentStatus::Available)];
    let through = store.append_at_end(&frame::encode(&later, 1 << 20)).await.unwrap();
    let error = store.checkpoint(&later, through, || true, &Default::default()).await.unwrap_err();
    let foreign = error.downcast_ref::<ForeignWrite>().unwrap_or_else(|| panic!("{error}"));
    assert_eq!((foreign.stream, foreign.seq), ("state bucket", seq));
    assert!(bucket.get("agent.b").await.unwrap().is_none(), "nothing written after it");

    // A store that read the bucket since goes on after it.
    store.load_with_journal().await.unwrap();
    store.checkpoint(&later, through, || true, &Default::default()).await.unwrap();
    assert!(bucket.get("agent.b").await.unwrap().is_some());
}

#[tokio::test]
async fn a_journal_that_moved_on_without_anyone_writing_is_written_after_and_one_that_went_back_is_a_loss() {
    let (_nats, js, _, store) = fresh_store().await;
    let start = store.load_with_journal().await.unwrap().journal_last;
    let first = frame::encode(&[agent("a", AgentStatus::Available)], 1 << 20);
    assert_eq!(store.append(&first, start).await.unwrap(), Appended::Through(start + 1));

    // A purge past the journal's end (a checkpoint marker above it after the
    // server lost messages) moves its sequence on: no one else's message is
    // there, so the group goes after it.
    let journal = js.get_stream("JOURNAL_test_state").await.unwrap();
    journal.purge().sequence(start + 10).await.unwrap();
    let moved = js.get_stream("JOURNAL_test_state").await.unwrap().cached_info().state.last_sequence;
    assert!(moved > start + 1, "the purge moved the journal on, to {moved}");
    let second = frame::encode(&[agent("b", AgentStatus::Available)], 1 << 20);
    assert_eq!(store.append(&second, start + 1).await.unwrap(), Appended::Through(moved + 1));

    // So does a message of this process's own that is not this group's (a
    // write it gave up on, landing late).
    let stale = store.append_at_end(&frame::encode(&[agent("s", AgentStatus::Away)], 1 << 20)).await.unwrap();
    let third = frame::encode(&[agent("c", AgentStatus::Available)], 1 << 20);
    assert_eq!(store.append(&third, stale - 1).await.unwrap(), Appended::Through(stale + 1));

    // A journal that ends before where this router left it lost messages.
    let error = store.append(&third, stale + 5).await.unwrap_err();
    let behind = error.downcast_ref::<StreamBehind>().unwrap_or_else(|| panic!("{error}"));
    assert_eq!((behind.stream, behind.last, behind.expected), ("journal", stale + 1, stale + 5));
}
