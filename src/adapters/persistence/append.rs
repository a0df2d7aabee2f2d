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
//! anyone else's. A refusal that the journal's new messages explain as this
//! group's own (an earlier attempt whose acknowledgement was lost) is
//! carried on; any other message there means another router writes the
//! journal, and this one must stop.

use super::{frame, StateStore, ACK_WINDOW};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
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

/// What the journal holds after the sequence a group commit follows.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// The group's first messages, this many, each at its place.
    Ours(usize),
    Foreign {
        seq: u64,
    },
}

impl StateStore {
    /// Appends the messages of one group commit right after sequence
    /// `after` (the journal's last as this router knows it) and waits until
    /// the server has stored them all. An error is worth retrying with the
    /// same `after`: messages an earlier attempt stored are found and kept.
    pub async fn append(&self, frames: &[Bytes], after: u64) -> Result<Appended, async_nats::Error> {
        let Some(first) = frames.first() else { return Ok(Appended::Through(after)) };
        let group = frame::part_of(first).map_err(|e| format!("a journal message of this router: {e}"))?;
        let mut next = 0;
        while next < frames.len() {
            let end = frames.len().min(next + ACK_WINDOW);
            self.lease_held().await;
            let mut acks = Vec::with_capacity(end - next);
            for (index, frame) in frames.iter().enumerate().take(end).skip(next) {
                // Message `index` of the group always goes at `after + 1 + index`.
                let publish =
                    PublishMessage::build().payload(frame.clone()).expected_last_sequence(after + index as u64);
                acks.push(self.js.send_publish(self.journal_subject.clone(), publish).await?);
            }
            // Awaited together: each ack's timeout runs only while awaited.
            let results = futures::future::join_all(acks.into_iter().map(IntoFuture::into_future)).await;
            let mut refused = false;
            for result in results {
                match result {
                    Ok(_) => {}
                    Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => refused = true,
                    Err(e) => return Err(e.into()),
                }
            }
            next = if refused {
                match self.found_after(group, after).await? {
                    Found::Ours(stored) => stored,
                    Found::Foreign { seq } => return Ok(Appended::Foreign { seq }),
                }
            } else {
                end
            };
        }
        // Held still: a router paused between the check and the write would
        // otherwise announce decisions after another took over (it exits
        // instead, when its renewal finds the lease taken).
        self.lease_held().await;
        Ok(Appended::Through(after + frames.len() as u64))
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

    /// Reads what the journal holds after `after`: the first messages of
    /// `group` at their places, or someone else's message.
    async fn found_after(&self, group: frame::Part, after: u64) -> Result<Found, async_nats::Error> {
        let stream = self.js.get_stream(&self.journal).await?;
        let last = stream.cached_info().state.last_sequence;
        if last < after {
            // A journal created anew by this router meanwhile (a lost store)
            // starts elsewhere; the caller retries from where it stands now.
            return Err(format!("the journal ends at {last}, before {after}, where this router left it").into());
        }
        let mut held = Vec::new();
        for seq in after + 1..=last {
            let part = match stream.get_raw_message(seq).await {
                Ok(message) => frame::part_of(&message.payload).ok(),
                // Removed, yet after what this router ever purged.
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => None,
                Err(e) => return Err(e.into()),
            };
            held.push(part);
            if let Err(index) = ours(group, &held) {
                return Ok(Found::Foreign { seq: after + 1 + index as u64 });
            }
        }
        Ok(Found::Ours(held.len()))
    }
}

/// Whether the messages held after a group's starting point (`None`: one
/// that is not a journal message, or is gone) are its own first ones, at
/// their places; else the index of the first that is not.
fn ours(group: frame::Part, held: &[Option<frame::Part>]) -> Result<(), usize> {
    let mine = |(index, part): (usize, &Option<frame::Part>)| {
        part.is_some_and(|p| (p.run, p.group, p.index as usize) == (group.run, group.group, index))
    };
    match held.iter().enumerate().position(|entry| !mine(entry)) {
        Some(index) => Err(index),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_groups_own_first_messages_at_their_places_are_its_own() {
        let part = |run, group, index| Some(frame::Part { run, group, index, count: 3, snapshot: false });
        let group = part(7, 2, 0).unwrap();
        assert_eq!(ours(group, &[]), Ok(()));
        assert_eq!(ours(group, &[part(7, 2, 0), part(7, 2, 1)]), Ok(()));
        assert_eq!(ours(group, &[part(7, 2, 0), part(7, 2, 2)]), Err(1), "out of place");
        assert_eq!(ours(group, &[part(7, 1, 0)]), Err(0), "an earlier group of this router");
        assert_eq!(ours(group, &[part(8, 2, 0)]), Err(0), "another router's");
        assert_eq!(ours(group, &[part(7, 2, 0), None]), Err(1), "not a journal message, or gone");
    }
}
