//! Appending a group commit where this router left the journal.
//!
//! The lease keeps a second router from deciding while this one does, but
//! a write this router handed to its NATS connection just before it was cut
//! off can still reach the server after another router took over (it sat in
//! the client's buffer until the connection came back). Read at the next
//! start, such a message would bring back a state the new holder had moved
//! past. So every message says which journal sequence it must follow
//! (`Nats-Expected-Last-Sequence`): the server stores it only right after
//! the last message this router restored or appended, and refuses it after
//! anyone else's. After a refusal the messages past that place tell what
//! happened ([`StateStore::write_in_place`], shared with checkpoint writes): this group's
//! own (an earlier attempt whose acknowledgement was lost) are kept and the
//! rest follows them; gaps or an abandoned write of this process move the
//! whole group after them; another router's message means it writes the
//! journal, and this one must stop.

use super::{frame, StateStore, ACK_WINDOW};
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::{PublishMessage, StreamMessage};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind};
use bytes::Bytes;
use std::future::IntoFuture;

/// How an append ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    /// Every message stored; the journal's last sequence is now this.
    Through(u64),
    /// The journal holds, at `seq`, a message this group did not write:
    /// another router writes it.
    Foreign { seq: u64 },
}

/// A stream of this router's state holds, where this router's write was to
/// go, a message it did not write: another router writes its state.
#[derive(Debug, thiserror::Error)]
#[error("another router has written the {stream} at sequence {seq}")]
pub struct ForeignWrite {
    pub stream: &'static str,
    pub seq: u64,
}

/// The journal or the bucket ends before where this router left it: the
/// server lost messages it had stored (it restarted without having written
/// them to disk, or the stream was restored from an older copy).
#[derive(Debug, thiserror::Error)]
#[error("the {stream} ends at sequence {last}, before {expected} where this router left it: the server lost messages")]
pub struct StreamBehind {
    pub stream: &'static str,
    pub last: u64,
    pub expected: u64,
}

/// One message found after the place a write was to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    /// This write's own, at its place (an earlier attempt stored it).
    AtPlace,
    /// Written by this process, but not this write: one given up on.
    OwnStale,
    /// Gone: purged, or lost by the server.
    Missing,
    /// Another router's.
    Foreign,
}

/// What a stream holds after the place a write was to follow.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// The write's first messages, this many, each at its place.
    Ours(usize),
    /// Another router's message, at `seq`.
    Foreign { seq: u64 },
    /// No one else's, but not this write's in order either (a purge went
    /// past the end, or an abandoned write of this process landed): the
    /// write starts again after `last`.
    Moved { last: u64 },
}

/// How the messages after a write's place add up, positions counted from
/// that place (`found_after` turns them into sequences).
fn tally(held: &[Held]) -> Found {
    let mut at_place = 0;
    for (index, &h) in held.iter().enumerate() {
        match h {
            Held::Foreign => return Found::Foreign { seq: index as u64 },
            Held::AtPlace if at_place == index => at_place += 1,
            _ => {}
        }
    }
    if at_place == held.len() {
        Found::Ours(at_place)
    } else {
        Found::Moved { last: held.len() as u64 }
    }
}

/// Reads `stream`'s messages after `after` and tells what they are (`kind`
/// of each message and its index after `after`): see [`Found`]; positions
/// in the result count from `after`.
async fn found_after(
    stream: &stream::Stream,
    name: &'static str,
    after: u64,
    kind: impl Fn(usize, &StreamMessage) -> Held,
) -> Result<Found, async_nats::Error> {
    let last = stream.cached_info().state.last_sequence;
    if last < after {
        return Err(StreamBehind { stream: name, last, expected: after }.into());
    }
    let mut held = Vec::new();
    for seq in after + 1..=last {
        let h = match stream.get_raw_message(seq).await {
            Ok(message) => kind(held.len(), &message),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Held::Missing,
            Err(e) => return Err(e.into()),
        };
        held.push(h);
        if h == Held::Foreign {
            break;
        }
    }
    Ok(match tally(&held) {
        Found::Foreign { seq } => Found::Foreign { seq: after + 1 + seq },
        Found::Moved { .. } => Found::Moved { last },
        ours => ours,
    })
}

impl StateStore {
    /// Appends the messages of one group commit right after sequence
    /// `after` (the journal's last as this router knows it) and waits until
    /// the server has stored them all. An error is worth retrying with the
    /// same `after`: messages an earlier attempt stored are found and kept.
    pub async fn append(&self, frames: &[Bytes], after: u64) -> Result<Appended, async_nats::Error> {
        let Some(first) = frames.first() else {
            self.lease_held().await;
            return Ok(Appended::Through(after));
        };
        let group = frame::part_of(first).map_err(|e| format!("a journal message of this router: {e}"))?;
        let messages: Vec<(String, Bytes)> = frames.iter().map(|f| (self.journal_subject.clone(), f.clone())).collect();
        // Replay drops a group's messages that do not follow its first one,
        // so a moved group goes again whole.
        let kind = |index: usize, message: &StreamMessage| match frame::part_of(&message.payload) {
            Ok(p) if (p.run, p.group, p.index as usize) == (group.run, group.group, index) => Held::AtPlace,
            Ok(p) if p.run == group.run => Held::OwnStale,
            _ => Held::Foreign,
        };
        let appended = self.write_in_place(&self.journal, "journal", &messages, after, None, kind).await?;
        // Held still: a router paused between the check and the write would
        // otherwise announce decisions after another took over (it exits
        // instead, when its renewal finds the lease taken).
        self.lease_held().await;
        Ok(appended)
    }

    /// Writes `messages` (subject, payload) into `stream` (`name` in
    /// errors) right after sequence `after`, message `i` always at
    /// `after + 1 + i`, each naming the sequence it must follow and carrying
    /// `header` if any; up to `ACK_WINDOW` in flight, each window only while
    /// the lease is held. After a refusal, `kind` tells what each message
    /// past that place is (see [`found_after`]): this write's own are kept,
    /// a moved write goes again whole after the stream's end, and another
    /// router's message ends it.
    pub(super) async fn write_in_place(
        &self,
        stream: &str,
        name: &'static str,
        messages: &[(String, Bytes)],
        after: u64,
        header: Option<(&str, &str)>,
        kind: impl Fn(usize, &StreamMessage) -> Held,
    ) -> Result<Appended, async_nats::Error> {
        let (mut after, mut next) = (after, 0);
        while next < messages.len() {
            let end = messages.len().min(next + ACK_WINDOW);
            self.lease_held().await;
            let mut acks = Vec::with_capacity(end - next);
            for (index, (subject, payload)) in messages.iter().enumerate().take(end).skip(next) {
                let mut publish = PublishMessage::build().payload(payload.clone());
                if let Some((header, value)) = header {
                    publish = publish.header(header, value);
                }
                let publish = publish.expected_last_sequence(after + index as u64);
                acks.push(self.js.send_publish(subject.clone(), publish).await?);
            }
            // Awaited together: each ack's timeout runs only while awaited.
            let results = futures::future::join_all(acks.into_iter().map(IntoFuture::into_future)).await;
            if !refused(results)? {
                next = end;
                continue;
            }
            match found_after(&self.js.get_stream(stream).await?, name, after, &kind).await? {
                Found::Ours(stored) => next = stored,
                Found::Foreign { seq } => return Ok(Appended::Foreign { seq }),
                Found::Moved { last } => (after, next) = (last, 0),
            }
        }
        Ok(Appended::Through(after + messages.len() as u64))
    }

    /// [`StateStore::append`] after the journal's last message, whoever
    /// wrote it, for a journal no router uses (tools, tests); the sequence
    /// of the last message.
    pub async fn append_at_end(&self, frames: &[Bytes]) -> Result<u64, async_nats::Error> {
        let last = self.js.get_stream(&self.journal).await?.cached_info().state.last_sequence;
        match self.append(frames, last).await? {
            Appended::Through(last) => Ok(last),
            Appended::Foreign { seq } => Err(format!("another writer appended at {seq} meanwhile").into()),
        }
    }
}

/// Whether any of a window's conditional writes was refused for not
/// following the sequence it named; any other failure is returned.
fn refused(results: Vec<Result<PublishAck, PublishError>>) -> Result<bool, async_nats::Error> {
    let mut refused = false;
    for result in results {
        match result {
            Ok(_) => {}
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => refused = true,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Held::*;

    #[test]
    fn only_a_writes_own_messages_in_order_let_it_go_on_where_it_stopped() {
        assert_eq!(tally(&[]), Found::Ours(0));
        assert_eq!(tally(&[AtPlace, AtPlace]), Found::Ours(2));
        assert_eq!(tally(&[AtPlace, Foreign]), Found::Foreign { seq: 1 }, "another router's");
        assert_eq!(tally(&[Missing, AtPlace]), Found::Moved { last: 2 }, "a purge past the end");
        assert_eq!(tally(&[OwnStale, AtPlace]), Found::Moved { last: 2 }, "an abandoned write of its own");
        assert_eq!(tally(&[AtPlace, Missing]), Found::Moved { last: 2 });
    }
}
