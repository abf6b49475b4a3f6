//! UIDs, UIDVALIDITY, and UID sets (`1:5,7,9:12`), as sent in commands and returned in
//! APPENDUID and VANISHED.
//!
//! RFC 3501 §2.3.1.1: neither a UID nor a UIDVALIDITY is ever 0, and a UID only means
//! something next to its folder's UIDVALIDITY. The types hold that: they cannot be built
//! from 0, so "not known" is an `Option`, never a zero.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

/// A message's UID in its folder: never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(NonZeroU32);

/// A folder's UIDVALIDITY: never 0. When it changes, the folder's UIDs mean other messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UidValidity(NonZeroU32);

macro_rules! nonzero_id {
    ($name:ident) => {
        impl $name {
            /// `None` for 0, which the protocol never uses.
            pub fn new(value: u32) -> Option<Self> {
                NonZeroU32::new(value).map(Self)
            }
            pub fn get(self) -> u32 {
                self.0.get()
            }
            /// From a stored integer: `None` for 0 or anything out of range.
            pub fn from_i64(value: i64) -> Option<Self> {
                u32::try_from(value).ok().and_then(Self::new)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
        impl From<$name> for u32 {
            fn from(value: $name) -> u32 {
                value.get()
            }
        }
        impl From<$name> for i64 {
            fn from(value: $name) -> i64 {
                i64::from(value.get())
            }
        }
    };
}
nonzero_id!(Uid);
nonzero_id!(UidValidity);

/// Ordered, merged ranges of UIDs. Never holds UID 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UidSet {
    ranges: Vec<(u32, u32)>,
}

/// A UID set that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a UID set")]
pub struct UidSetError(pub String);

impl UidSet {
    /// Builds a set from UIDs in any order.
    pub fn from_uids(uids: impl IntoIterator<Item = Uid>) -> Self {
        let mut all: Vec<u32> = uids.into_iter().map(Uid::get).collect();
        all.sort_unstable();
        all.dedup();
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for uid in all {
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == uid => *end = uid,
                _ => ranges.push((uid, uid)),
            }
        }
        Self { ranges }
    }

    /// Builds a set from ranges `(first, last)` in any order without listing their UIDs:
    /// `1:4294967295` costs one range, not four billion entries.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u32, u32)>) -> Self {
        let mut all: Vec<(u32, u32)> = ranges
            .into_iter()
            .map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
            .map(|(a, b)| (a.max(1), b))
            .filter(|(a, b)| a <= b && *b != 0)
            .collect();
        all.sort_unstable();
        let mut ranges: Vec<(u32, u32)> = Vec::with_capacity(all.len());
        for (a, b) in all {
            match ranges.last_mut() {
                Some((_, end)) if a <= end.saturating_add(1) => *end = (*end).max(b),
                _ => ranges.push((a, b)),
            }
        }
        Self { ranges }
    }

    /// The UIDs of both sets.
    pub fn union(&self, other: &UidSet) -> UidSet {
        UidSet::from_ranges(self.ranges.iter().chain(other.ranges.iter()).copied())
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of UIDs.
    pub fn len(&self) -> usize {
        self.ranges.iter().map(|(a, b)| (b - a) as usize + 1).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = Uid> + '_ {
        // The ranges never hold 0 (see `from_ranges`).
        self.ranges
            .iter()
            .flat_map(|&(a, b)| a..=b)
            .filter_map(Uid::new)
    }

    pub fn contains(&self, uid: Uid) -> bool {
        let uid = uid.get();
        self.ranges.iter().any(|&(a, b)| a <= uid && uid <= b)
    }
}

impl fmt::Display for UidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}:{b}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for UidSet {
    type Err = UidSetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = || UidSetError(s.to_string());
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let (a, b) = match part.split_once(':') {
                Some((a, b)) => (a, b),
                None => (part, part),
            };
            let a: u32 = a.parse().map_err(|_| fail())?;
            let b: u32 = b.parse().map_err(|_| fail())?;
            if a == 0 || b == 0 {
                return Err(fail());
            }
            // Kept as ranges: any range is fine (issue 19: over 10 million UIDs used to be
            // refused, and smaller ones listed UID by UID).
            ranges.push((a, b));
        }
        Ok(Self::from_ranges(ranges))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn u(n: u32) -> Uid {
        Uid::new(n).unwrap()
    }

    fn uids(all: impl IntoIterator<Item = u32>) -> Vec<Uid> {
        all.into_iter().map(u).collect()
    }

    #[test]
    fn known_answers() {
        let set: UidSet = "9:7,1,2,3,12".parse().unwrap();
        assert_eq!(set.to_string(), "1:3,7:9,12");
        assert_eq!(set.len(), 7);
        assert!(set.contains(u(8)) && !set.contains(u(10)));
        assert!("0:3".parse::<UidSet>().is_err());
        assert!("a".parse::<UidSet>().is_err());
    }

    #[test]
    fn uids_and_uidvalidities_are_never_zero() {
        assert_eq!(Uid::new(0), None);
        assert_eq!(UidValidity::new(7).map(UidValidity::get), Some(7));
        assert_eq!(UidValidity::from_i64(-1), None);
        assert_eq!(UidValidity::from_i64(i64::from(u32::MAX) + 1), None);
        assert_eq!(Uid::from_i64(42).map(|u| u.to_string()), Some("42".into()));
    }

    #[test]
    fn huge_ranges_are_kept_as_ranges() {
        let set: UidSet = "1:4294967295".parse().unwrap();
        assert_eq!(set.len(), u32::MAX as usize);
        assert!(set.contains(u(4_000_000_000)));
        assert_eq!(set.to_string(), "1:4294967295");
        let set: UidSet = "20000000:1,30000000:40000000".parse().unwrap();
        assert_eq!(set.to_string(), "1:20000000,30000000:40000000");
        let union = set.union(&"20000001:29999999".parse().unwrap());
        assert_eq!(union.to_string(), "1:40000000");
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(uids in proptest::collection::vec(1u32..5000, 1..200)) {
            let set = UidSet::from_uids(super::tests::uids(uids.clone()));
            let again: UidSet = set.to_string().parse().unwrap();
            prop_assert_eq!(&again, &set);
            let mut sorted = uids; sorted.sort_unstable(); sorted.dedup();
            prop_assert_eq!(set.iter().collect::<Vec<_>>(), super::tests::uids(sorted));
        }

        #[test]
        fn ranges_and_uids_make_the_same_set(ranges in proptest::collection::vec((1u32..3000, 1u32..3000), 1..20)) {
            let by_range = UidSet::from_ranges(ranges.clone());
            let by_uid = UidSet::from_uids(super::tests::uids(ranges.iter().flat_map(|&(a, b)| a.min(b)..=a.max(b))));
            prop_assert_eq!(by_range, by_uid);
        }
    }
}
