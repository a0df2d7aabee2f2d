//! Ids and subjects as logs show them: a run of seven or more digits
//! (separators `-`, ` `, `.`, `_`, `:` and `/` between digits allowed) is cut to its last
//! two digits, so a phone, ID or card number that a publisher or an admin
//! put into an id never reaches a log in clear (SPEC: privacy). Shorter
//! numbers, such as a shop or agent number, stay readable.

use std::fmt;

/// Fewest digits in a run that is masked.
const MASKED_FROM: usize = 7;

/// `text` for a log line, long digit runs masked (see the module docs).
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted(self.0))
    }
}

/// `text` with its long digit runs masked.
pub fn redacted(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A run: digits, with single separators between them.
        let mut end = i;
        let mut digits = 0;
        while end < chars.len() {
            if chars[end].is_ascii_digit() {
                digits += 1;
                end += 1;
            } else if matches!(chars[end], '-' | ' ' | '.' | '_' | ':' | '/')
                && chars.get(end + 1).is_some_and(char::is_ascii_digit)
            {
                end += 1;
            } else {
                break;
            }
        }
        let mut left = digits;
        for &c in &chars[i..end] {
            if c.is_ascii_digit() {
                left -= 1;
                out.push(if digits >= MASKED_FROM && left >= 2 { '*' } else { c });
            } else {
                out.push(c);
            }
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_digit_runs_are_masked_and_short_numbers_kept() {
        assert_eq!(redacted("agent-13812345678"), "agent-*********78");
        assert_eq!(redacted("+86 138-1234-5678"), "+** ***-****-**78");
        assert_eq!(redacted("138_1234_5678"), "***_****_**78");
        assert_eq!(redacted("11010519491231002X"), "***************02X");
        assert_eq!(redacted("support.inquiries.shop13812345678"), "support.inquiries.shop*********78");
        assert_eq!(redacted("agent-00042 in shop-17, order 123456"), "agent-00042 in shop-17, order 123456");
        assert_eq!(Redacted("card 6222021234567890123").to_string(), "card *****************23");
    }
}
