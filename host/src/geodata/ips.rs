//! IP lists: each list's CIDRs merged into sorted, disjoint ranges, IPv4 and IPv6
//! apart, so a lookup is one binary search and 100k CIDRs take ~1 MB.

use std::collections::HashMap;
use std::net::IpAddr;

use super::GeoError;

/// One list's ranges, read-only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpList {
    v4: Box<[(u32, u32)]>,
    v6: Box<[(u128, u128)]>,
    /// Xray's `reverse_match`: the list holds every address *not* in its ranges.
    reverse: bool,
}

/// Collects one list's CIDRs.
#[derive(Debug, Default)]
pub struct IpBuilder {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

/// An address as the lists store it: IPv4-mapped IPv6 addresses are IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl IpBuilder {
    pub fn add_cidr(&mut self, ip: IpAddr, prefix: u32) -> Result<(), GeoError> {
        match ip {
            IpAddr::V4(v4) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
                let start = u32::from(v4) & mask;
                self.v4.push((start, start | !mask));
            }
            IpAddr::V6(v6) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
                let start = u128::from(v6) & mask;
                self.v6.push((start, start | !mask));
            }
            _ => return Err(GeoError::Prefix { ip, prefix }),
        }
        Ok(())
    }

    /// An inclusive range; both ends of the same family.
    pub fn add_range(&mut self, from: IpAddr, to: IpAddr) -> Result<(), GeoError> {
        match (canonical(from), canonical(to)) {
            (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => self.v4.push((a.into(), b.into())),
            (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => self.v6.push((a.into(), b.into())),
            _ => return Err(GeoError::Range { from, to }),
        }
        Ok(())
    }

    pub fn build(self, reverse: bool) -> IpList {
        IpList {
            v4: merge(self.v4),
            v6: merge(self.v6),
            reverse,
        }
    }
}

fn merge<T: Ord + Copy + num_like::Step>(mut ranges: Vec<(T, T)>) -> Box<[(T, T)]> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if last.1.next().is_none_or(|n| start <= n) => {
                last.1 = last.1.max(end);
            }
            _ => out.push((start, end)),
        }
    }
    out.into()
}

mod num_like {
    /// The successor of a range end, if it has one.
    pub trait Step: Sized {
        fn next(self) -> Option<Self>;
    }
    impl Step for u32 {
        fn next(self) -> Option<u32> {
            self.checked_add(1)
        }
    }
    impl Step for u128 {
        fn next(self) -> Option<u128> {
            self.checked_add(1)
        }
    }
}

fn within<T: Ord + Copy>(ranges: &[(T, T)], v: T) -> bool {
    let i = ranges.partition_point(|r| r.1 < v);
    ranges.get(i).is_some_and(|r| r.0 <= v)
}

impl IpList {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let inside = match canonical(ip) {
            IpAddr::V4(v4) => within(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => within(&self.v6, u128::from(v6)),
        };
        inside != self.reverse
    }

    /// Merged ranges held (v4 and v6).
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every list of a geoip file, by lower-cased name.
#[derive(Debug, Default)]
pub struct IpLists {
    lists: Vec<IpList>,
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl IpLists {
    /// Adds a list; a second list of the same name is merged into the first (Xray
    /// concatenates them too).
    pub fn insert(&mut self, name: &str, list: IpList) {
        let name = name.to_ascii_lowercase();
        match self.index.get(name.as_str()) {
            Some(&id) => {
                let old = &mut self.lists[id as usize];
                let mut v4 = old.v4.to_vec();
                v4.extend_from_slice(&list.v4);
                let mut v6 = old.v6.to_vec();
                v6.extend_from_slice(&list.v6);
                *old = IpList {
                    v4: merge(v4),
                    v6: merge(v6),
                    reverse: old.reverse || list.reverse,
                };
            }
            None => {
                self.index
                    .insert(name.clone().into(), self.lists.len() as u32);
                self.names.push(name.into());
                self.lists.push(list);
            }
        }
    }

    /// The id of list `name` (case-insensitive), or an error naming it.
    pub fn id(&self, name: &str) -> Result<u32, GeoError> {
        let name = name.to_ascii_lowercase();
        self.index
            .get(name.as_str())
            .copied()
            .ok_or(GeoError::UnknownList(name))
    }

    pub fn get(&self, id: u32) -> Option<&IpList> {
        self.lists.get(id as usize)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    /// Ranges held over all lists.
    pub fn ranges(&self) -> usize {
        self.lists.iter().map(IpList::len).sum()
    }
}
