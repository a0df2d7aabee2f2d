//! The journal's message format: many key writes in one message.
//!
//! `TRJ1`, then per write: key length (u32, big-endian), key, and either
//! `0` (delete) or `1`, value length (u32, big-endian), value.

use super::Write;
use bytes::{Buf, BufMut, Bytes, BytesMut};

const MAGIC: &[u8; 4] = b"TRJ1";

/// Encodes `writes` into messages of at most about `limit` bytes each (a
/// single write larger than that gets a message of its own).
pub fn encode(writes: &[Write], limit: usize) -> Vec<Bytes> {
    let mut frames = Vec::new();
    let mut frame = BytesMut::new();
    for (key, value) in writes {
        let size = 4 + key.len() + 1 + value.as_ref().map_or(0, |v| 4 + v.len());
        if frame.len() > MAGIC.len() && frame.len() + size > limit {
            frames.push(std::mem::take(&mut frame).freeze());
        }
        if frame.is_empty() {
            frame.reserve(limit.min(size.max(4096) * 4));
            frame.put_slice(MAGIC);
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
    if frame.len() > MAGIC.len() {
        frames.push(frame.freeze());
    }
    frames
}

/// The writes of one message, in order.
pub fn decode(mut frame: Bytes) -> Result<Vec<Write>, String> {
    if !frame.starts_with(MAGIC) {
        return Err("not a journal message (no TRJ1 header)".into());
    }
    frame.advance(MAGIC.len());
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
    Ok(writes)
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
        assert_eq!(decode(one[0].clone()).unwrap(), writes);
        let split = encode(&writes, 64);
        assert!(split.len() >= 2, "a small limit splits the writes");
        let joined: Vec<Write> = split.into_iter().flat_map(|f| decode(f).unwrap()).collect();
        assert_eq!(joined, writes);
        assert!(encode(&[], 64).is_empty());
    }

    #[test]
    fn damaged_messages_are_refused_with_a_reason() {
        assert!(decode(Bytes::from_static(b"{\"json\":true}")).unwrap_err().contains("TRJ1"));
        let mut cut = encode(&[write("inq.a", Some("value"))], 1024)[0].to_vec();
        cut.truncate(cut.len() - 2);
        assert!(decode(Bytes::from(cut)).unwrap_err().contains("middle"));
    }
}
