//! Domain lists: every list of a file in one compact, read-only structure.
//!
//! Full names and suffixes live in one string arena, indexed by a table of entries
//! sorted by the hash of their text, with a radix index over the hash's top bits: a
//! lookup hashes each label-aligned suffix of the name (`a.b.c`, `b.c`, `c`), reads
//! one index slot and scans the one or two entries it points to, without allocating
//! (a binary search over 100k entries cost a cache miss per step).
//! Keywords (Xray's `plain`) are one Aho-Corasick automaton over every list; regexes
//! are a `RegexSet` per list, so asking about one list never runs another's.
//! Attributes (`geosite:google@cn`) are interned: an entry carries the id of its
//! attribute set, a selector the ids it requires.

use std::collections::HashMap;
use std::hash::Hasher;

use aho_corasick::AhoCorasick;
use regex::RegexSet;

use super::GeoError;

/// How an entry matches a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The name itself (Xray `full`, sing-box `domain`).
    Full,
    /// The name and every subdomain (Xray `domain`, sing-box `domain_suffix`).
    Domain,
    /// Subdomains only (sing-box `domain_suffix` written with a leading dot).
    Subdomain,
    /// Anywhere in the name (Xray `plain`, sing-box `domain_keyword`).
    Keyword,
    /// A regular expression (Xray `regex`, sing-box `domain_regex`).
    Regex,
}

/// A regex set's compiled size is bounded (untrusted files).
const REGEX_SIZE_LIMIT: usize = 64 << 20;

/// One list and the attributes an entry must have, as a plugin asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub list: u32,
    attrs: Box<[u32]>,
}

impl Selector {
    /// Every entry of `list`, whatever its attributes.
    pub fn whole(list: u32) -> Selector {
        Selector {
            list,
            attrs: Box::new([]),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    offset: u32,
    /// The text's length, shifted left by 2, with the kind (0 full, 1 domain, 2 sub).
    len_kind: u32,
    tag: u32,
}

/// Accumulates entries; `build` makes the read-only structure.
#[derive(Default)]
pub struct Builder {
    lists: Vec<Box<str>>,
    list_index: HashMap<Box<str>, u32>,
    attr_names: HashMap<Box<str>, u32>,
    attr_sets: Vec<Box<[u32]>>,
    attr_set_index: HashMap<Box<[u32]>, u32>,
    tags: Vec<(u32, u32)>,
    tag_index: HashMap<(u32, u32), u32>,
    arena: String,
    entries: Vec<Entry>,
    keywords: Vec<(Box<str>, u32)>,
    regexes: HashMap<u32, Vec<(Box<str>, u32)>>,
}

/// Every list of one source, read-only.
pub struct Domains {
    lists: Vec<Box<str>>,
    list_index: HashMap<Box<str>, u32>,
    attr_names: HashMap<Box<str>, u32>,
    attr_sets: Vec<Box<[u32]>>,
    tags: Vec<(u32, u32)>,
    arena: Box<str>,
    entries: Box<[Entry]>,
    /// `index[b]` is the first entry whose hash's top `bits` bits are `b` or more.
    index: Box<[u32]>,
    bits: u32,
    keywords: Option<(AhoCorasick, Box<[u32]>)>,
    regexes: HashMap<u32, (RegexSet, Box<[u32]>)>,
}

fn hash(text: &str) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(text.as_bytes());
    h.finish()
}

impl Builder {
    /// A builder of one unnamed list (id 0): a rule-set's domains.
    pub fn single() -> Builder {
        let mut b = Builder::default();
        b.list("");
        b
    }

    /// The id of list `name` (case-insensitive, as Xray reads `geosite:CN`).
    pub fn list(&mut self, name: &str) -> u32 {
        let name = name.to_ascii_lowercase();
        if let Some(id) = self.list_index.get(name.as_str()) {
            return *id;
        }
        let id = self.lists.len() as u32;
        self.lists.push(name.clone().into());
        self.list_index.insert(name.into(), id);
        id
    }

    /// The id of a set of attribute names (order and repeats do not matter).
    pub fn attrs<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> u32 {
        let mut ids: Vec<u32> = names
            .into_iter()
            .map(|name| {
                let name = name.to_ascii_lowercase();
                let next = self.attr_names.len() as u32;
                *self.attr_names.entry(name.into()).or_insert(next)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        self.ensure_empty_set();
        let ids: Box<[u32]> = ids.into();
        if let Some(id) = self.attr_set_index.get(&ids) {
            return *id;
        }
        let id = self.attr_sets.len() as u32;
        self.attr_sets.push(ids.clone());
        self.attr_set_index.insert(ids, id);
        id
    }

    /// Attribute set 0 is the empty one.
    fn ensure_empty_set(&mut self) {
        if self.attr_sets.is_empty() {
            self.attr_sets.push(Box::new([]));
            self.attr_set_index.insert(Box::new([]), 0);
        }
    }

    fn tag(&mut self, list: u32, attrs: u32) -> u32 {
        let next = self.tags.len() as u32;
        let tag = *self.tag_index.entry((list, attrs)).or_insert(next);
        if tag == next {
            self.tags.push((list, attrs));
        }
        tag
    }

    /// Adds one entry of `list`; domain texts are lower-cased, regexes kept as written.
    pub fn add(&mut self, list: u32, kind: Kind, value: &str, attrs: u32) -> Result<(), GeoError> {
        self.ensure_empty_set();
        let tag = self.tag(list, attrs);
        let value = match kind {
            Kind::Regex => {
                let regexes = self.regexes.entry(list).or_default();
                regexes.push((value.into(), attrs));
                return Ok(());
            }
            _ => value.to_ascii_lowercase(),
        };
        let value = value.trim_end_matches('.');
        let (value, kind) = match kind {
            Kind::Domain | Kind::Subdomain if value.starts_with('.') => {
                (value.trim_start_matches('.'), Kind::Subdomain)
            }
            _ => (value, kind),
        };
        if value.is_empty() {
            return Err(GeoError::Value {
                list: self.lists[list as usize].to_string(),
                why: "an empty domain".into(),
            });
        }
        if kind == Kind::Keyword {
            self.keywords.push((value.into(), tag));
            return Ok(());
        }
        if value.len() > (u32::MAX >> 2) as usize
            || self.arena.len() + value.len() > u32::MAX as usize
        {
            return Err(GeoError::TooLarge);
        }
        let (offset, len) = (self.arena.len() as u32, value.len() as u32);
        let code = match kind {
            Kind::Full => 0,
            Kind::Domain => 1,
            _ => 2,
        };
        self.arena.push_str(value);
        self.entries.push(Entry {
            hash: hash(value),
            offset,
            len_kind: len << 2 | code,
            tag,
        });
        Ok(())
    }

    pub fn build(mut self) -> Result<Domains, GeoError> {
        self.ensure_empty_set();
        self.entries
            .sort_unstable_by_key(|e| (e.hash, e.len_kind, e.tag, e.offset));
        let arena = &self.arena;
        let text = |e: &Entry| &arena[e.offset as usize..(e.offset + (e.len_kind >> 2)) as usize];
        self.entries.dedup_by(|a, b| {
            a.hash == b.hash && a.len_kind == b.len_kind && a.tag == b.tag && text(a) == text(b)
        });
        let keywords = if self.keywords.is_empty() {
            None
        } else {
            let automaton = AhoCorasick::new(self.keywords.iter().map(|(k, _)| k.as_bytes()))
                .map_err(|e| GeoError::Value {
                    list: "keywords".into(),
                    why: e.to_string(),
                })?;
            Some((automaton, self.keywords.iter().map(|(_, t)| *t).collect()))
        };
        let mut regexes = HashMap::new();
        for (list, patterns) in self.regexes {
            let set = regex::RegexSetBuilder::new(patterns.iter().map(|(p, _)| &**p))
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| GeoError::Value {
                    list: self.lists[list as usize].to_string(),
                    why: format!("a regex that does not compile: {e}"),
                })?;
            regexes.insert(list, (set, patterns.iter().map(|(_, a)| *a).collect()));
        }
        let (index, bits) = radix_index(&self.entries);
        Ok(Domains {
            index,
            bits,
            lists: self.lists,
            list_index: self.list_index,
            attr_names: self.attr_names,
            attr_sets: self.attr_sets,
            tags: self.tags,
            arena: self.arena.into(),
            entries: self.entries.into(),
            keywords,
            regexes,
        })
    }
}

/// About one entry per slot: 2^bits slots for n entries, at least 16.
fn radix_index(entries: &[Entry]) -> (Box<[u32]>, u32) {
    let bits = (entries.len().max(16).next_power_of_two().trailing_zeros()).min(24);
    let slots = 1usize << bits;
    let mut index = Vec::with_capacity(slots + 1);
    let mut at = 0usize;
    for slot in 0..=slots {
        while entries
            .get(at)
            .is_some_and(|e| ((e.hash >> (64 - bits)) as usize) < slot)
        {
            at += 1;
        }
        index.push(at as u32);
    }
    (index.into(), bits)
}

/// The label-aligned suffixes of a name, the name first: `a.b.c`, `b.c`, `c`.
fn suffixes(name: &str) -> impl Iterator<Item = &str> {
    std::iter::once(name).chain(name.match_indices('.').map(|(i, _)| &name[i + 1..]))
}

impl Domains {
    /// The names of the lists, in file order.
    pub fn lists(&self) -> impl Iterator<Item = &str> {
        self.lists.iter().map(|l| &**l)
    }

    /// Entries (full names and suffixes), keywords and regexes held.
    pub fn len(&self) -> usize {
        self.entries.len()
            + self.keywords.as_ref().map_or(0, |(_, t)| t.len())
            + self.regexes.values().map(|(_, a)| a.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `NAME` or `NAME@attr[@attr...]`, case-insensitive; an unknown list or attribute is
    /// an error naming it.
    pub fn selector(&self, spec: &str) -> Result<Selector, GeoError> {
        let spec = spec.to_ascii_lowercase();
        let mut parts = spec.split('@');
        let name = parts.next().unwrap_or_default();
        let Some(list) = self.list_index.get(name) else {
            return Err(GeoError::UnknownList(name.to_string()));
        };
        let mut attrs = Vec::new();
        for attr in parts {
            match self.attr_names.get(attr) {
                Some(id) => attrs.push(*id),
                None => return Err(GeoError::UnknownAttribute(format!("{name}@{attr}"))),
            }
        }
        attrs.sort_unstable();
        attrs.dedup();
        Ok(Selector {
            list: *list,
            attrs: attrs.into(),
        })
    }

    fn has_attrs(&self, set: u32, wanted: &[u32]) -> bool {
        let Some(have) = self.attr_sets.get(set as usize) else {
            return false;
        };
        wanted.iter().all(|w| have.binary_search(w).is_ok())
    }

    fn tag_selected(&self, tag: u32, sel: &Selector) -> bool {
        match self.tags.get(tag as usize) {
            Some(&(list, attrs)) => list == sel.list && self.has_attrs(attrs, &sel.attrs),
            None => false,
        }
    }

    /// The table entries whose text is `text`, each with its tag and kind code.
    fn entries_for<'a>(&'a self, text: &'a str) -> impl Iterator<Item = (u32, u32)> + 'a {
        let h = hash(text);
        let slot = (h >> (64 - self.bits)) as usize;
        let start = self.index.get(slot).copied().unwrap_or(0) as usize;
        let end = self.index.get(slot + 1).copied().unwrap_or(0) as usize;
        self.entries
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .skip_while(move |e| e.hash < h)
            .take_while(move |e| e.hash == h)
            .filter(move |e| {
                let end = e.offset as usize + (e.len_kind >> 2) as usize;
                self.arena.get(e.offset as usize..end) == Some(text)
            })
            .map(|e| (e.tag, e.len_kind & 3))
    }

    /// Whether `name` (lower-case, no trailing dot) is in the selected list.
    pub fn contains(&self, sel: &Selector, name: &str) -> bool {
        self.any_tag(name, |tag| self.tag_selected(tag, sel))
            || self.regex_match(sel.list, name, |attrs| self.has_attrs(attrs, &sel.attrs))
    }

    /// Calls `f` on the tag of every full, suffix and keyword entry matching `name`,
    /// until it says true.
    fn any_tag(&self, name: &str, mut f: impl FnMut(u32) -> bool) -> bool {
        for (i, suffix) in suffixes(name).enumerate() {
            for (tag, code) in self.entries_for(suffix) {
                let fits = match code {
                    0 => i == 0,
                    1 => true,
                    _ => i > 0,
                };
                if fits && f(tag) {
                    return true;
                }
            }
        }
        if let Some((automaton, tags)) = &self.keywords {
            for m in automaton.find_overlapping_iter(name) {
                if tags.get(m.pattern().as_usize()).is_some_and(|t| f(*t)) {
                    return true;
                }
            }
        }
        false
    }

    fn regex_match(&self, list: u32, name: &str, mut f: impl FnMut(u32) -> bool) -> bool {
        let Some((set, attrs)) = self.regexes.get(&list) else {
            return false;
        };
        // Most names match no regex: the cheaper question first.
        set.is_match(name)
            && set
                .matches(name)
                .iter()
                .any(|i| attrs.get(i).is_some_and(|a| f(*a)))
    }

    /// Every list `name` is in, sorted by id.
    pub fn matching(&self, name: &str) -> Vec<u32> {
        let mut out = Vec::new();
        self.any_tag(name, |tag| {
            if let Some(&(list, _)) = self.tags.get(tag as usize) {
                out.push(list);
            }
            false
        });
        for (list, (set, _)) in &self.regexes {
            if set.is_match(name) {
                out.push(*list);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The name of list `id`.
    pub fn list_name(&self, id: u32) -> Option<&str> {
        self.lists.get(id as usize).map(|l| &**l)
    }
}
