//! One validated name type for everything berth names that a stranger may choose: networks,
//! bridges and interfaces, containers, images. Parsed once at the edge (CLI, CNI config
//! and environment, prevResult, archives); nothing unvalidated reaches a file path,
//! `/proc/sys`, `iptables-restore` or nft.

use std::fmt;

/// What a name names; each kind has its grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A network (CNI `name`, `berth network create`): `[A-Za-z0-9][A-Za-z0-9_.-]*`, ≤ 128.
    Network,
    /// A Linux interface (bridge, veth, CNI_IFNAME): 1-15 of `[A-Za-z0-9_.-]`, not `.`,
    /// `..`, `all` or `default` (which name every interface under /proc/sys).
    Interface,
    /// A container name or CNI container ID: `[A-Za-z0-9][A-Za-z0-9_.-]*`, ≤ 255.
    Container,
    /// An image reference: `[host[:port]/]path[:tag][@digest]`, ≤ 255.
    Image,
    /// A free-form firewall match argument (portmap `conditionsV4/V6`): anything printable.
    Condition,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Interface => "interface",
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Condition => "firewall condition",
        }
    }
}

/// A refused name: which kind, the value, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {} name {value:?}: {why}", kind.label())]
pub struct NameError {
    /// The kind of name.
    pub kind: Kind,
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// A name that passed its kind's grammar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

fn word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-'
}

impl Name {
    /// Validates `value` as a `kind` name.
    pub fn parse(kind: Kind, value: &str) -> Result<Self, NameError> {
        let err = |why| Err(NameError { kind, value: value.to_string(), why });
        let b = value.as_bytes();
        if b.is_empty() {
            return err("empty");
        }
        if b.iter().any(|c| c.is_ascii_control() || *c >= 0x80) {
            return err("control or non-ASCII characters");
        }
        match kind {
            Kind::Network | Kind::Container => {
                let max = if kind == Kind::Network { 128 } else { 255 };
                if b.len() > max {
                    return err("too long");
                }
                if !b[0].is_ascii_alphanumeric() || !b.iter().all(|c| word_char(*c)) {
                    return err("only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
                }
            }
            Kind::Interface => {
                if b.len() > 15 {
                    return err("longer than 15 characters");
                }
                if !b.iter().all(|c| word_char(*c)) {
                    return err("only [a-zA-Z0-9_.-] are allowed");
                }
                if matches!(value, "." | ".." | "all" | "default") {
                    return err("reserved");
                }
            }
            // Conditions are checked by `firewall_arg` (control characters only).
            Kind::Condition => {}
            Kind::Image => {
                if b.len() > 255 {
                    return err("too long");
                }
                if !b[0].is_ascii_alphanumeric() || !b.iter().all(|c| word_char(*c) || b"/:@".contains(c)) {
                    return err("use [host/]name[:tag] with letters, digits, '.', '_', '-'");
                }
                if value.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
                    return err("empty, '.' or '..' path component");
                }
            }
        }
        Ok(Name(value.to_string()))
    }

    /// A network name.
    pub fn network(v: &str) -> Result<Self, NameError> {
        Self::parse(Kind::Network, v)
    }

    /// An interface name.
    pub fn interface(v: &str) -> Result<Self, NameError> {
        Self::parse(Kind::Interface, v)
    }

    /// A container name or ID.
    pub fn container(v: &str) -> Result<Self, NameError> {
        Self::parse(Kind::Container, v)
    }

    /// An image reference.
    pub fn image(v: &str) -> Result<Self, NameError> {
        Self::parse(Kind::Image, v)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Refuses a free-form firewall argument (portmap `conditionsV4/V6`) that could end a
/// rule line or smuggle one in: control characters and non-ASCII never pass.
pub fn firewall_arg(value: &str) -> Result<&str, NameError> {
    if value.bytes().any(|c| c.is_ascii_control() || c >= 0x80) {
        return Err(NameError { kind: Kind::Condition, value: value.to_string(), why: "control characters" });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammars() {
        assert!(Name::network("app-net_1.x").is_ok());
        assert!(Name::network("evil\n-A INPUT -j ACCEPT").is_err());
        assert!(Name::network("../../x").is_err());
        assert!(Name::interface("eth0").is_ok());
        for bad in ["all", "default", "..", "../../ipv4/conf/lo", "a/b", "sixteen-chars-xx", "eth 0", ""] {
            assert!(Name::interface(bad).is_err(), "{bad}");
        }
        assert!(Name::container("0123abc").is_ok());
        assert!(Name::container("-x").is_err());
        assert!(Name::image("registry:5000/a/b:v1").is_ok());
        assert!(Name::image("a/../b").is_err());
        assert!(firewall_arg("-m comment\n-A X").is_err());
        assert_eq!(Name::network("x\ty").unwrap_err().to_string(), "invalid network name \"x\\ty\": control or non-ASCII characters");
    }
}
