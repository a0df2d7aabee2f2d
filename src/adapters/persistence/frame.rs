//! The journal's message format: many key writes in one message, and the
//! messages of one group commit marked as such.
//!
//! `TRJ2`, a group tag (this process's run id and group number, u64 each,
//! big-endian) with the message's index in its group, the group's message
//! count and flags (u32 each; bit 0: the group is a snapshot of every record
//! the router held), then per write: key length (u32, big-endian),
//! key, and either `0` (delete) or `1`, value length (u32), value. `TRJ1`
//! messages (no group tag, each complete by itself) are still read.
//!
//! A group is applied only once all its messages are read: a crash between
//! two of them leaves a prefix whose writes mix values from different
//! commands (each key holds its group's last value), which could rebuild a
//! state that never was. Nothing of an unfinished group was announced, so
//! dropping it loses nothing.

use super::Write;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

const MAGIC_V1: &[u8; 4] = b"TRJ1";
const MAGIC: &[u8; 4] = b"TRJ2";
/// Magic, run, group, index, count, flags.
const HEADER: usize = 4 + 8 + 8 + 4 + 4 + 4;
const SNAPSHOT: u32 = 1;

/// Where a message stands in its group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub run: u64,
    pub group: u64,
    pub index: u32,
    pub count: u32,
    /// The group holds every record the router held (after a lost store).
    pub snapshot: bool,
}

/// A decoded message: its place in a group (`None` for `TRJ1`) and writes.
#[derive(Debug, PartialEq)]
pub struct Frame {
    pub part: Option<Part>,
    pub writes: Vec<Write>,
}

/// A random id of this process, so that group numbers of different runs
/// never match.
pub(super) fn run_id() -> u64 {
    static RUN: OnceLock<u64> = OnceLock::new();
    *RUN.get_or_init(|| std::collections::hash_map::RandomState::new().build_hasher().finish())
}

static NEXT_GROUP: AtomicU64 = AtomicU64::new(1);

/// Encodes `writes`, one group commit, into messages of at most about
/// `limit` bytes each (a single write larger than that gets a message of
/// its own).
pub fn encode(writes: &[Write], limit: usize) -> Vec<Bytes> {
    encode_group(writes, limit, false)
}

/// [`encode`], marking a snapshot of every record when `snapshot`.
pub fn encode_group(writes: &[Write], limit: usize, snapshot: bool) -> Vec<Bytes> {
    let group = NEXT_GROUP.fetch_add(1, Ordering::Relaxed);
    let mut frames: Vec<BytesMut> = Vec::new();
    let mut frame = BytesMut::new();
    for (key, value) in writes {
        let size = 4 + key.len() + 1 + value.as_ref().map_or(0, |v| 4 + v.len());
        if frame.len() > HEADER && frame.len() + size > limit {
            frames.push(std::mem::take(&mut frame));
        }
        if frame.is_empty() {
            frame.reserve(limit.min(size.max(4096) * 4));
            frame.put_slice(MAGIC);
            frame.put_bytes(0, HEADER - MAGIC.len()); // filled in below
        }
        frame.put_u32(u32::try_from(key.len()).expect("keys are below 4 GiB"));
        frame.put_slice(key.as_bytes());
        match value {
            None => frame.put_u8(0),
            Some(v) => {
                frame.put_u8(1);
                frame.put_u32(u32::try_from(v.len()).expect("records are below 4 GiB"));
                frame.put_slice(v);
            }
        }
    }
    if frame.len() > HEADER {
        frames.push(frame);
    }
    let count = u32::try_from(frames.len()).expect("fewer than 4 billion messages");
    frames
        .into_iter()
        .enumerate()
        .map(|(index, mut frame)| {
            let mut tag = &mut frame[MAGIC.len()..HEADER];
            tag.put_u64(run_id());
            tag.put_u64(group);
            tag.put_u32(index as u32);
            tag.put_u32(count);
            tag.put_u32(if snapshot { SNAPSHOT } else { 0 });
            frame.freeze()
        })
        .collect()
}

/// The place in its group of a `TRJ2` message, read from its header alone.
pub fn part_of(mut frame: &[u8]) -> Result<Part, String> {
    if !frame.starts_with(MAGIC) {
        return Err("not a TRJ2 journal message".into());
    }
    if frame.len() < HEADER {
        return Err("journal message ends in its header".into());
    }
    frame.advance(MAGIC.len());
    let (run, group, index, count) = (frame.get_u64(), frame.get_u64(), frame.get_u32(), frame.get_u32());
    let snapshot = frame.get_u32() & SNAPSHOT != 0;
    if index >= count {
        return Err(format!("journal message {index} of a group of {count}"));
    }
    Ok(Part { run, group, index, count, snapshot })
}

/// The writes of one message, in order, with its place in its group.
pub fn decode(mut frame: Bytes) -> Result<Frame, String> {
    let part = if frame.starts_with(MAGIC) {
        let part = part_of(&frame)?;
        frame.advance(HEADER);
        Some(part)
    } else if frame.starts_with(MAGIC_V1) {
        frame.advance(MAGIC_V1.len());
        None
    } else {
        return Err("not a journal message (no TRJ2 or TRJ1 header)".into());
    };
    let mut writes = Vec::new();
    let short = || "journal message ends in the middle of a write".to_string();
    while frame.has_remaining() {
        if frame.remaining() < 4 {
            return Err(short());
        }
        let key_len = frame.get_u32() as usize;
        if frame.remaining() < key_len + 1 {
            return Err(short());
        }
        let key = String::from_utf8(frame.split_to(key_len).to_vec()).map_err(|_| "journal key is not UTF-8")?;
        let value = match frame.get_u8() {
            0 => None,
            1 => {
                if frame.remaining() < 4 {
                    return Err(short());
                }
                let len = frame.get_u32() as usize;
                if frame.remaining() < len {
                    return Err(short());
                }
                Some(frame.split_to(len))
            }
            other => return Err(format!("unknown journal operation {other}")),
        };
        writes.push((key, value));
    }
    Ok(Frame { part, writes })
}

/// Reassembles group commits from the journal's messages in order.
#[derive(Default)]
pub struct Groups {
    open: Option<(Part, Vec<Write>)>,
    /// Messages of groups that never finished, skipped.
    pub dropped: u64,
    /// Whether a complete snapshot group was read.
    pub snapshot: bool,
}

impl Groups {
    /// Takes the next message; returns the writes of a group it completes.
    pub fn push(&mut self, frame: Frame) -> Option<Vec<Write>> {
        let Some(part) = frame.part else {
            self.drop_open();
            return Some(frame.writes);
        };
        // A group starts again at its first message: after a failed append
        // was retried, or after a crash cut the group short.
        if part.index == 0 {
            self.drop_open();
            self.open = Some((part, Vec::new()));
        }
        match &mut self.open {
            Some((open, writes)) if open.run == part.run && open.group == part.group && open.index == part.index => {
                writes.extend(frame.writes);
                open.index += 1;
            }
            _ => {
                self.dropped += 1;
                return None;
            }
        }
        if part.index + 1 < part.count {
            return None;
        }
        self.snapshot |= part.snapshot;
        self.open.take().map(|(_, writes)| writes)
    }

    /// Ends the journal: a group still open there never finished.
    pub fn finish(&mut self) {
        self.drop_open();
    }

    fn drop_open(&mut self) {
        if let Some((part, _)) = self.open.take() {
            self.dropped += u64::from(part.index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: &str, value: Option<&str>) -> Write {
        (key.to_string(), value.map(|v| Bytes::copy_from_slice(v.as_bytes())))
    }

    #[test]
    fn writes_round_trip_in_order_across_messages() {
        let writes = vec![
            write("inq.a", Some("{\"x\":1}")),
            write("agent.b", Some(&"y".repeat(300))),
            write("inq.c", None),
            write("levels", Some("")),
        ];
        let one = encode(&writes, 1 << 20);
        assert_eq!(one.len(), 1);
        assert_eq!(decode(one[0].clone()).unwrap().writes, writes);
        let split = encode(&writes, 64);
        assert!(split.len() >= 2, "a small limit splits the writes");
        let joined: Vec<Write> = split.into_iter().flat_map(|f| decode(f).unwrap().writes).collect();
        assert_eq!(joined, writes);
        assert!(encode(&[], 64).is_empty());
    }

    #[test]
    fn damaged_messages_are_refused_with_a_reason() {
        assert!(decode(Bytes::from_static(b"{\"json\":true}")).unwrap_err().contains("TRJ2"));
        let mut cut = encode(&[write("inq.a", Some("value"))], 1024)[0].to_vec();
        cut.truncate(cut.len() - 2);
        assert!(decode(Bytes::from(cut)).unwrap_err().contains("middle"));
    }

    fn replayed(groups: &mut Groups, frames: &[Bytes]) -> Vec<Write> {
        frames.iter().filter_map(|f| groups.push(decode(f.clone()).unwrap())).flatten().collect()
    }

    #[test]
    fn a_group_commit_is_applied_only_once_all_its_messages_are_read() {
        let writes: Vec<Write> = (0..6).map(|i| write(&format!("inq.{i}"), Some("value"))).collect();
        let group = encode(&writes, 40);
        assert!(group.len() >= 3, "{} messages", group.len());
        let mut groups = Groups::default();
        assert_eq!(replayed(&mut groups, &group[..2]), [], "a crash cut the group short: nothing yet");
        groups.finish();
        assert_eq!(groups.dropped, 2, "the unfinished group is skipped at the journal's end");

        // A failed append is retried whole: the prefix stored before the
        // failure, then the whole group again.
        let mut groups = Groups::default();
        let mut retried = group[..2].to_vec();
        retried.extend(group.iter().cloned());
        assert_eq!(replayed(&mut groups, &retried), writes);

        // The restarted router's first group follows a cut-short one: only
        // the new group counts.
        let later = vec![write("inq.9", None)];
        let mut groups = Groups::default();
        let mut journal = group[..2].to_vec();
        journal.extend(encode(&later, 40));
        assert_eq!(replayed(&mut groups, &journal), later);
        assert_eq!(groups.dropped, 2);

        // A stray message of another group is skipped, never mixed in.
        let mut groups = Groups::default();
        let mut mixed = vec![group[0].clone(), encode(&writes, 40)[1].clone()];
        mixed.extend(group[1..].iter().cloned());
        assert_eq!(replayed(&mut groups, &mixed), writes);
        assert_eq!(groups.dropped, 1);
    }

    #[test]
    fn messages_of_the_first_format_are_each_complete() {
        let mut v1 = b"TRJ1".to_vec();
        v1.extend_from_slice(&encode(&[write("inq.a", Some("x"))], 1024)[0][HEADER..]);
        let frame = decode(Bytes::from(v1)).unwrap();
        assert_eq!((frame.part, frame.writes.clone()), (None, vec![write("inq.a", Some("x"))]));
        assert_eq!(Groups::default().push(frame), Some(vec![write("inq.a", Some("x"))]));
    }
}
