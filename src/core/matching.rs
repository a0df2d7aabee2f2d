//! Language and skill matching as bit sets, so that agents and inquiries with
//! the same needs share one index and a decision checks a handful of sets
//! instead of scanning agents.
//!
//! Up to 63 distinct languages and 63 skills are told apart. Only agents'
//! names take a bit: an inquiry's name no agent offers stands as bit 63,
//! which no agent ever has, until an agent offers it (so publishers cannot
//! fill the table and lock agents out).

use super::types::Id;
use rustc_hash::{FxHashMap, FxHashSet};
use std::borrow::Cow;

const OVERFLOW_BIT: u8 = 63;

/// Interns names to bit positions.
#[derive(Clone, Debug, Default)]
pub struct BitNames {
    ids: FxHashMap<Box<str>, u8>,
    names: Vec<Box<str>>,
}

impl BitNames {
    /// Bit of `name`, interning it while there is room; `None` when full.
    pub fn intern(&mut self, name: &str) -> Option<u8> {
        if let Some(&bit) = self.ids.get(name) {
            return Some(bit);
        }
        if self.names.len() >= OVERFLOW_BIT as usize {
            return None;
        }
        let bit = self.names.len() as u8;
        self.ids.insert(name.into(), bit);
        self.names.push(name.into());
        Some(bit)
    }

    /// Whether all of `names` have a bit or fit in the room left, so that
    /// a request can be refused before any of its names is interned.
    pub fn has_room_for<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> bool {
        let mut new: FxHashSet<&str> = FxHashSet::default();
        new.extend(names.into_iter().filter(|n| !self.ids.contains_key(*n)));
        self.names.len() + new.len() <= OVERFLOW_BIT as usize
    }

    /// Bit of an inquiry's need: the one agents offer it under, or the
    /// never-served overflow bit while no agent has offered it.
    pub fn need(&self, name: &str) -> u8 {
        self.ids.get(name).copied().unwrap_or(OVERFLOW_BIT)
    }

    /// Number of names with a bit.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name has a bit.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of a bit, for error messages.
    pub fn name(&self, bit: u8) -> &str {
        self.names.get(bit as usize).map_or("?", |n| n)
    }
}

/// Most distinct strings [`SharedNames`] keeps one copy of.
const MAX_SHARED: usize = 4096;

/// One copy of the strings that repeat across inquiries (shop, platform,
/// language), so that each inquiry does not keep its own. Short ones live
/// inside the `Id` and need no sharing; of the others, up to `MAX_SHARED` are
/// shared, and past that strings are kept as they come.
#[derive(Clone, Debug, Default)]
pub struct SharedNames {
    names: FxHashSet<Id>,
}

impl SharedNames {
    /// The shared copy of `name`, which becomes the shared copy if new.
    pub fn share(&mut self, name: Id) -> Id {
        if !name.is_heap_allocated() {
            return name;
        }
        if let Some(known) = self.names.get(&*name) {
            return known.clone();
        }
        if self.names.len() < MAX_SHARED {
            self.names.insert(name.clone());
        }
        name
    }
}

/// Lower-cased primary subtag: agents with `zh` serve `zh-CN` and `zh-TW`.
pub fn language_key(tag: &str) -> String {
    primary_language(tag).into_owned()
}

/// [`language_key`] without allocating when the subtag is already lower case
/// (every arrival goes through it).
pub fn primary_language(tag: &str) -> Cow<'_, str> {
    // A byte scan, cheaper than `split` with a set of separators.
    let end = tag.bytes().position(|b| b == b'-' || b == b'_').unwrap_or(tag.len());
    let primary = tag[..end].trim();
    if primary.is_empty() {
        Cow::Borrowed("zh")
    } else if primary.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(primary.to_ascii_lowercase())
    } else {
        Cow::Borrowed(primary)
    }
}

/// What an inquiry needs of an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Need {
    pub language: u8,
    pub skills: u64,
}

impl Need {
    /// Whether it names a language or skill no agent has offered yet.
    pub fn is_unknown(self) -> bool {
        self.language == OVERFLOW_BIT || self.skills & (1 << OVERFLOW_BIT) != 0
    }
}

/// What an agent offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Offering {
    pub languages: u64,
    pub skills: u64,
}

/// Why an agent cannot serve a need, if it cannot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    Language,
    Skill,
}

impl Offering {
    /// Whether these languages and skills cover `need`.
    pub fn check(self, need: Need) -> Result<(), Mismatch> {
        if self.languages & (1u64 << need.language) == 0 {
            Err(Mismatch::Language)
        } else if need.skills & !self.skills != 0 {
            Err(Mismatch::Skill)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_keys_use_the_primary_subtag() {
        assert_eq!(language_key("zh-CN"), "zh");
        assert_eq!(language_key("EN_us"), "en");
        assert_eq!(language_key(""), "zh");
        assert_eq!(language_key(" Ja -jp"), "ja");
        assert_eq!(language_key("中文_x-y"), "中文");
        assert_eq!(language_key("-CN"), "zh");
        assert!(matches!(primary_language("zh-CN"), Cow::Borrowed("zh")));
    }

    #[test]
    fn offering_checks_language_then_skills() {
        let offer = Offering { languages: 0b01, skills: 0b110 };
        assert_eq!(offer.check(Need { language: 0, skills: 0b010 }), Ok(()));
        assert_eq!(offer.check(Need { language: 1, skills: 0 }), Err(Mismatch::Language));
        assert_eq!(offer.check(Need { language: 0, skills: 0b001 }), Err(Mismatch::Skill));
    }

    #[test]
    fn shared_names_keep_one_copy_of_each_string() {
        let mut shared = SharedNames::default();
        let long = "shop-with-a-name-longer-than-an-inline-id";
        let first = shared.share(long.into());
        let again = shared.share(long.into());
        assert_eq!(first.as_ptr(), again.as_ptr(), "one heap copy");
        assert_eq!(&*shared.share("shop-2".into()), "shop-2");
        assert_eq!(shared.names.len(), 1, "short names are not kept");
    }

    #[test]
    fn a_full_table_maps_new_names_to_a_bit_no_agent_has() {
        let mut names = BitNames::default();
        for i in 0..63 {
            assert_eq!(names.intern(&format!("s{i}")), Some(i as u8));
        }
        assert_eq!(names.intern("one-too-many"), None);
        assert_eq!(names.need("one-too-many"), 63);
        assert_eq!(names.need("s5"), 5);
    }
}
