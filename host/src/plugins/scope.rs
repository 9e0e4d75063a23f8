//! Which services a plugin applies to: `[applies_to]` globs, compiled once
//! when the manifest loads.
//!
//! Matching runs on hot paths (every write asks whether a listener wants the
//! service, every list reply whether a push filter applies), and the globs
//! come from a manifest anyone with write access to the plugin folder wrote.
//! So a glob is compiled into a matcher that cannot backtrack: the set of
//! glob positions reachable after each character of the name is kept as a
//! bit set (a Thompson simulation), which costs one pass over the name,
//! `O(name × glob / 64)` word operations, whatever the glob looks like.
//! Globs are capped at [`MAX_GLOB_CHARS`] characters and [`MAX_GLOBS`] per
//! list, so the cost of one match is bounded by the caps.

use crate::registry::model::ServiceKey;

/// Longest glob, in characters.
pub const MAX_GLOB_CHARS: usize = 256;
/// Most globs in one of `namespaces`, `groups`, `services`.
pub const MAX_GLOBS: usize = 64;

/// Words of a bit set with one bit per glob position (plus the end).
const WORDS: usize = (MAX_GLOB_CHARS + 1).div_ceil(64);
type Bits = [u64; WORDS];

/// A compiled glob: literal characters, `?` (one character), `*` (any run).
#[derive(Debug, Clone, PartialEq)]
pub struct Glob(Matcher);

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    /// `*`: everything (the default, and the common case).
    Any,
    /// No wildcard: plain comparison.
    Exact(String),
    Positions(Positions),
}

/// The glob as bit masks over its positions (runs of `*` collapsed into one).
#[derive(Debug, Clone, PartialEq)]
struct Positions {
    /// For each literal character, the positions that hold it.
    literals: Vec<(char, Bits)>,
    /// Positions holding `?`.
    any_one: Bits,
    /// Positions holding `*`.
    any_run: Bits,
    /// The position after the last one: reaching it is a match.
    end: usize,
}

impl Glob {
    /// Compiles `glob`; an error says which rule it breaks.
    pub fn new(glob: &str) -> Result<Glob, String> {
        let mut chars: Vec<char> = Vec::with_capacity(glob.len());
        for c in glob.chars() {
            if !(c == '*' && chars.last() == Some(&'*')) {
                chars.push(c);
            }
        }
        if glob.chars().count() > MAX_GLOB_CHARS {
            return Err(format!(
                "a glob may have at most {MAX_GLOB_CHARS} characters"
            ));
        }
        if chars == ['*'] {
            return Ok(Glob(Matcher::Any));
        }
        if !chars.iter().any(|c| matches!(c, '*' | '?')) {
            return Ok(Glob(Matcher::Exact(glob.to_string())));
        }
        let mut positions = Positions {
            literals: Vec::new(),
            any_one: [0; WORDS],
            any_run: [0; WORDS],
            end: chars.len(),
        };
        for (at, c) in chars.into_iter().enumerate() {
            let mask = match c {
                '*' => &mut positions.any_run,
                '?' => &mut positions.any_one,
                c => match positions.literals.iter().position(|(l, _)| *l == c) {
                    Some(i) => &mut positions.literals[i].1,
                    None => {
                        positions.literals.push((c, [0; WORDS]));
                        &mut positions.literals.last_mut().expect("just pushed").1
                    }
                },
            };
            set(mask, at);
        }
        positions.literals.sort_by_key(|(c, _)| *c);
        Ok(Glob(Matcher::Positions(positions)))
    }

    /// Whether `text` matches the whole glob (`*` any run, `?` one character).
    pub fn matches(&self, text: &str) -> bool {
        match &self.0 {
            Matcher::Any => true,
            Matcher::Exact(s) => s == text,
            Matcher::Positions(p) => p.matches(text),
        }
    }
}

impl Positions {
    fn matches(&self, text: &str) -> bool {
        let mut reached: Bits = [0; WORDS];
        set(&mut reached, 0);
        self.through_runs(&mut reached);
        for c in text.chars() {
            let literal = self
                .literals
                .binary_search_by_key(&c, |(l, _)| *l)
                .map_or([0; WORDS], |i| self.literals[i].1);
            let mut next: Bits = [0; WORDS];
            let mut carry = 0;
            for w in 0..WORDS {
                // Positions that consume `c` advance by one; `*` positions stay.
                let advance = reached[w] & (literal[w] | self.any_one[w]);
                next[w] = (advance << 1) | carry | (reached[w] & self.any_run[w]);
                carry = advance >> 63;
            }
            if next.iter().all(|w| *w == 0) {
                return false;
            }
            self.through_runs(&mut next);
            reached = next;
        }
        reached[self.end / 64] & (1 << (self.end % 64)) != 0
    }

    /// A `*` may match nothing: reaching it reaches the position after it too.
    /// (Runs of `*` were collapsed, so one step is enough.)
    fn through_runs(&self, reached: &mut Bits) {
        let mut carry = 0;
        for (word, any_run) in reached.iter_mut().zip(self.any_run) {
            let skip = *word & any_run;
            *word |= (skip << 1) | carry;
            carry = skip >> 63;
        }
    }
}

fn set(bits: &mut Bits, at: usize) {
    bits[at / 64] |= 1 << (at % 64);
}

/// `[applies_to]` as written in a manifest; each list defaults to `["*"]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAppliesTo {
    /// Globs of namespace ids.
    pub namespaces: Vec<String>,
    /// Globs of group names.
    pub groups: Vec<String>,
    /// Globs of service names (without the group).
    pub services: Vec<String>,
}

impl Default for RawAppliesTo {
    fn default() -> Self {
        let all = vec!["*".to_string()];
        RawAppliesTo {
            namespaces: all.clone(),
            groups: all.clone(),
            services: all,
        }
    }
}

/// Which services a plugin applies to: a service matches when its namespace,
/// group and name each match one glob of their list.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliesTo {
    namespaces: Vec<Glob>,
    groups: Vec<Glob>,
    services: Vec<Glob>,
}

impl AppliesTo {
    /// Compiles the three lists; an error names the list and the rule broken.
    pub(crate) fn compile(raw: &RawAppliesTo) -> Result<AppliesTo, String> {
        let list = |name: &str, globs: &[String]| -> Result<Vec<Glob>, String> {
            if globs.len() > MAX_GLOBS {
                return Err(format!(
                    "applies_to.{name} may have at most {MAX_GLOBS} globs"
                ));
            }
            globs
                .iter()
                .map(|g| Glob::new(g).map_err(|e| format!("applies_to.{name}: {e}")))
                .collect()
        };
        Ok(AppliesTo {
            namespaces: list("namespaces", &raw.namespaces)?,
            groups: list("groups", &raw.groups)?,
            services: list("services", &raw.services)?,
        })
    }

    /// Whether the service's namespace, group and name each match one of their globs.
    pub fn matches(&self, service: &ServiceKey) -> bool {
        let any = |globs: &[Glob], value: &str| globs.iter().any(|g| g.matches(value));
        any(&self.namespaces, &service.namespace)
            && any(&self.groups, &service.group)
            && any(&self.services, &service.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob_match(glob: &str, text: &str) -> bool {
        Glob::new(glob).expect("valid glob").matches(text)
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("**", "anything"));
        assert!(glob_match("orders*", "orders-v2"));
        assert!(glob_match("*-v?", "orders-v2"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(glob_match("a**?", "ab"));
        assert!(glob_match("*é?", "caféx"));
        assert!(!glob_match("orders", "orders-v2"));
        assert!(!glob_match("a*b", "ac"));
        assert!(!glob_match("?", ""));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("orders", "orders"));
    }

    #[test]
    fn every_position_of_a_long_glob_counts() {
        // 200 literal `a`s then `?`: bits beyond the first words are used.
        let glob = format!("{}?", "a".repeat(200));
        assert!(glob_match(&glob, &format!("{}b", "a".repeat(200))));
        assert!(!glob_match(&glob, &"a".repeat(200)));
        let glob = format!("*{}*", "ab".repeat(100));
        assert!(glob_match(&glob, &format!("x{}y", "ab".repeat(100))));
        assert!(!glob_match(&glob, &"ab".repeat(99)));
    }

    #[test]
    fn globs_built_to_backtrack_still_answer_right() {
        // A backtracking matcher needs about name × glob steps for this pair;
        // this one makes one pass over the name by construction.
        let glob = format!("{}b", "*a".repeat(127));
        assert!(glob.chars().count() <= MAX_GLOB_CHARS);
        assert!(!glob_match(&glob, &"a".repeat(512)));
        assert!(glob_match(&glob, &format!("{}b", "a".repeat(512))));
        assert!(!glob_match(&glob, &format!("{}b", "a".repeat(126))));
    }

    #[test]
    fn caps_are_enforced() {
        assert!(Glob::new(&"a".repeat(MAX_GLOB_CHARS)).is_ok());
        assert!(Glob::new(&"a".repeat(MAX_GLOB_CHARS + 1)).is_err());
        let raw = RawAppliesTo {
            services: vec!["x".into(); MAX_GLOBS + 1],
            ..RawAppliesTo::default()
        };
        assert!(AppliesTo::compile(&raw).is_err());
    }
}
