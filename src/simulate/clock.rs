//! Wall-clock text of scenario files: the start instant (`2024-11-10T18:00:00+08:00`)
//! and clock times within the simulated days (`"23:30"`, `"+1 20:00"`, `"26:00"`).
//!
//! Pure arithmetic on milliseconds since the epoch; no time-zone database and
//! no system clock. A scenario carries a fixed UTC offset, which is all a
//! one- or two-day promotion needs.

use crate::core::Millis;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// One day in milliseconds.
pub const DAY: i64 = 24 * HOUR;

/// The start of a simulation and the offset its clock times are read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start {
    /// Milliseconds since the epoch (UTC).
    pub at: Millis,
    /// The local offset from UTC, in milliseconds.
    pub offset_ms: i64,
}

impl Start {
    /// Midnight (local) of the start's date, in epoch milliseconds.
    pub fn midnight(&self) -> i64 {
        let local = self.at as i64 + self.offset_ms;
        local - local.rem_euclid(DAY) - self.offset_ms
    }

    /// The instant of a clock time parsed by [`clock_time`], on the start's date.
    pub fn instant(&self, since_midnight_ms: i64) -> Millis {
        (self.midnight() + since_midnight_ms).max(0) as Millis
    }

    /// Local `(month, day, hour, minute)` of an instant, for chart labels.
    pub fn local_parts(&self, at: Millis) -> (u32, u32, u32, u32) {
        let local = at as i64 + self.offset_ms;
        let (_, month, day) = civil_from_days(local.div_euclid(DAY));
        let in_day = local.rem_euclid(DAY);
        (month, day, (in_day / HOUR) as u32, ((in_day % HOUR) / MINUTE) as u32)
    }

    /// `YYYY-MM-DD HH:MM` local, for report headers.
    pub fn format(&self, at: Millis) -> String {
        let local = at as i64 + self.offset_ms;
        let (year, month, day) = civil_from_days(local.div_euclid(DAY));
        let in_day = local.rem_euclid(DAY);
        format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", in_day / HOUR, (in_day % HOUR) / MINUTE)
    }
}

/// Parses `YYYY-MM-DDTHH:MM[:SS]` with an optional `Z` or `±HH:MM` (UTC without).
pub fn parse_start(text: &str) -> Result<Start, String> {
    let bad =
        || format!("`{text}` is not a start time; write e.g. \"2024-11-10T18:00:00+08:00\" (date, time, UTC offset)");
    let t = text.trim();
    if t.len() < 16 || !t.is_char_boundary(10) || !matches!(t.as_bytes()[10], b'T' | b' ') {
        return Err(bad());
    }
    let (date, rest) = (&t[..10], &t[11..]);
    let (time, offset_ms) = match rest.find(['Z', '+', '-']) {
        Some(i) => (&rest[..i], parse_offset(&rest[i..]).ok_or_else(bad)?),
        None => (rest, 0),
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, dd] = d[..] else { return Err(bad()) };
    let (y, m, dd) = (num(y).ok_or_else(bad)?, num(m).ok_or_else(bad)?, num(dd).ok_or_else(bad)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&dd) {
        return Err(bad());
    }
    let in_day = parse_hms(time).filter(|&ms| ms < DAY).ok_or_else(bad)?;
    let days = days_from_civil(y, m as u32, dd as u32);
    if civil_from_days(days) != (y, m as u32, dd as u32) {
        return Err(format!("`{text}`: there is no {date} (that month is shorter)"));
    }
    let local = days * DAY + in_day;
    let at = local - offset_ms;
    if at < 0 {
        return Err(bad());
    }
    Ok(Start { at: at as Millis, offset_ms })
}

fn parse_offset(text: &str) -> Option<i64> {
    if text == "Z" || text == "z" {
        return Some(0);
    }
    let sign = if text.starts_with('-') { -1 } else { 1 };
    let (h, m) = text[1..].split_once(':').unwrap_or((&text[1..], "0"));
    let (h, m) = (num(h)?, num(m)?);
    (h <= 14 && m < 60).then_some(sign * (h * HOUR + m * MINUTE))
}

/// Parses a clock time relative to the start's date: `"HH:MM[:SS]"`,
/// optionally prefixed by a day offset (`"+1 20:00"`); hours may run past 23
/// (`"26:00"` is 02:00 the next day). Returns milliseconds since that midnight.
pub fn clock_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (days, time) = match t.strip_prefix('+') {
        Some(rest) => {
            let (d, time) = rest.split_once(' ').ok_or_else(|| clock_error(text))?;
            (num(d).ok_or_else(|| clock_error(text))?, time.trim())
        }
        None => (0, t),
    };
    let in_day = parse_hms(time).ok_or_else(|| clock_error(text))?;
    Ok(days * DAY + in_day)
}

fn clock_error(text: &str) -> String {
    format!(
        "`{text}` is not a clock time; write \"HH:MM\" on the start date, \"+1 HH:MM\" for the next day (or hours past 24, e.g. \"26:00\")"
    )
}

/// `H:MM` or `H:MM:SS`, hours unbounded.
fn parse_hms(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split(':').collect();
    let (h, m, s) = match parts[..] {
        [h, m] => (num(h)?, num(m)?, 0),
        [h, m, s] => (num(h)?, num(m)?, num(s)?),
        _ => return None,
    };
    (m < 60 && s < 60 && parts[1].len() == 2).then_some(h * HOUR + m * MINUTE + s * 1000)
}

fn num(text: &str) -> Option<i64> {
    (!text.is_empty() && text.len() <= 4 && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok())?
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_with_offsets() {
        let s = parse_start("2024-11-10T18:00:00+08:00").unwrap();
        assert_eq!(s.at, 1_731_232_800_000);
        assert_eq!(s.format(s.at), "2024-11-10 18:00");
        assert_eq!(s.instant(clock_time("+1 00:00").unwrap()), 1_731_254_400_000);
        assert_eq!(clock_time("24:00").unwrap(), clock_time("+1 00:00").unwrap());
        assert_eq!(parse_start("2024-11-10T10:00Z").unwrap().at, 1_731_232_800_000);
        assert_eq!(s.local_parts(s.instant(clock_time("+1 20:05").unwrap())), (11, 11, 20, 5));
    }

    #[test]
    fn bad_times_say_how_to_write_them() {
        assert!(parse_start("10 Nov 2024").unwrap_err().contains("2024-11-10T18:00:00+08:00"));
        assert!(parse_start("2024-13-10T18:00:00").is_err());
        assert!(clock_time("8pm").unwrap_err().contains("HH:MM"));
        assert!(clock_time("20:7").is_err());
        assert!(clock_time("+x 20:00").is_err());
    }
}
