//! The iptables rendering of the firewall model: which chains and rules an attachment
//! and a network need, as `iptables-restore` lines. Pure functions, unit-tested; the
//! backend only applies what this module renders.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::firewall::rules::{multicast, FilterRules, MasqRules, NetworkRules, PortRules};

/// Chain that DNATs published ports; jumped to from PREROUTING and OUTPUT for local addresses.
pub const DNAT_CHAIN: &str = "BERTH-HOSTPORT-DNAT";
/// Chain that marks connections needing masquerade (hairpin, localhost).
pub const SETMARK_CHAIN: &str = "BERTH-HOSTPORT-SETMARK";
/// Chain that masquerades marked connections.
pub const MASQ_CHAIN: &str = "BERTH-HOSTPORT-MASQ";
/// Chain holding per-container outbound MASQUERADE rules.
pub const POSTROUTING_CHAIN: &str = "BERTH-POSTROUTING";
/// filter-table chain accepting traffic of berth's bridges.
pub const FORWARD_CHAIN: &str = "BERTH-FORWARD";
/// Empty filter-table chain run before berth's own, for the user's rules (like DOCKER-USER).
pub const USER_CHAIN: &str = "BERTH-USER";
/// raw-table chain that drops packets to 127.0.0.0/8 arriving from the network (Docker #45610).
pub const RAW_CHAIN: &str = "BERTH-RAW-PREROUTING";

/// filter-table chain of the `firewall` plugin (the reference plugin's CNI-FORWARD).
pub const FILTER_CHAIN: &str = "BERTH-FIREWALL";
#[cfg(test)]
use crate::firewall::ADMIN_CHAIN;
/// First stage of `same-bridge` isolation: traffic leaving an isolated bridge elsewhere.
pub const ISOLATION_1: &str = "BERTH-ISOLATION-STAGE-1";
/// Second stage: dropped if it enters another isolated bridge.
pub const ISOLATION_2: &str = "BERTH-ISOLATION-STAGE-2";
const FILTER_COMMENT: &str = "berth firewall plugin rules";
const ISOLATION_COMMENT: &str = "berth firewall plugin rules (ingressPolicy: same-bridge)";

/// IPv4 or IPv6: which `iptables` flavour a rule goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    /// iptables.
    V4,
    /// ip6tables.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// One rule: table, chain and the match/target arguments after `-A chain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// "nat", "raw" or "filter".
    pub table: String,
    /// Chain it lives in.
    pub chain: String,
    /// Arguments, one per element.
    pub args: Vec<String>,
}

impl Rule {
    fn new(table: &str, chain: &str, args: &[&str]) -> Self {
        Self { table: table.into(), chain: chain.into(), args: args.iter().map(|s| s.to_string()).collect() }
    }

    /// The rule as an `iptables-restore` line with the given action (`-A`, `-I`, `-D`).
    pub fn render(&self, action: &str) -> String {
        let mut s = format!("{action} {}", self.chain);
        for a in &self.args {
            s.push(' ');
            if a.is_empty() || a.contains(char::is_whitespace) || a.contains('"') {
                s.push('"');
                s.push_str(&a.replace('"', "\\\""));
                s.push('"');
            } else {
                s.push_str(a);
            }
        }
        s
    }
}

/// Names the per-attachment chain: short (iptables allows 28 characters) and stable.
pub fn chain_name(prefix: &str, network: &str, id: &str, ifname: &str) -> String {
    let digest = Sha256::digest(format!("{network}\0{id}\0{ifname}").as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{}", hex.to_uppercase())
}

fn comment(network: &str, id: &str) -> String {
    let id: String = id.chars().take(64).collect();
    format!("berth:{network}:{id}")
}

/// The fixed chains and rules every port mapping relies on, per family.
pub fn base(family: Family, mark_bit: u8) -> (Vec<(String, String)>, Vec<Rule>) {
    let mark = format!("{:#x}/{:#x}", 1u32 << mark_bit, 1u32 << mark_bit);
    let mut chains = vec![
        ("nat".to_string(), DNAT_CHAIN.to_string()),
        ("nat".to_string(), SETMARK_CHAIN.to_string()),
        ("nat".to_string(), MASQ_CHAIN.to_string()),
        ("nat".to_string(), POSTROUTING_CHAIN.to_string()),
        ("filter".to_string(), FORWARD_CHAIN.to_string()),
        ("filter".to_string(), USER_CHAIN.to_string()),
    ];
    let mut rules = vec![
        Rule::new("nat", SETMARK_CHAIN, &["-j", "MARK", "--set-xmark", &mark]),
        Rule::new("nat", MASQ_CHAIN, &["-m", "mark", "--mark", &mark, "-j", "MASQUERADE"]),
        Rule::new("nat", "PREROUTING", &["-m", "addrtype", "--dst-type", "LOCAL", "-j", DNAT_CHAIN]),
        Rule::new("nat", "OUTPUT", &["-m", "addrtype", "--dst-type", "LOCAL", "-j", DNAT_CHAIN]),
        Rule::new("nat", "POSTROUTING", &["-j", MASQ_CHAIN]),
        Rule::new("nat", "POSTROUTING", &["-j", POSTROUTING_CHAIN]),
        // Inserted in this order at the top of FORWARD, so BERTH-USER runs first.
        Rule::new("filter", "FORWARD", &["-j", FORWARD_CHAIN]),
        Rule::new("filter", "FORWARD", &["-j", USER_CHAIN]),
    ];
    chains.push(("raw".to_string(), RAW_CHAIN.to_string()));
    if family == Family::V4 {
        rules.push(Rule::new("raw", RAW_CHAIN, &["-d", "127.0.0.0/8", "!", "-i", "lo", "-j", "DROP"]));
    }
    rules.push(Rule::new("raw", "PREROUTING", &["-j", RAW_CHAIN]));
    (chains, rules)
}

/// The per-attachment chain, its rules, and the jump into it, for one family.
/// `None` when the attachment has no address or mapping in that family.
pub fn ports(p: &PortRules, family: Family) -> Option<(String, Vec<Rule>, Rule)> {
    let v6 = family == Family::V6;
    let addr = p.addrs.iter().find(|a| a.is_ipv6() == v6)?;
    let chain = chain_name("BERTH-DN-", &p.network, &p.container_id, &p.ifname);
    let mut rules = Vec::new();
    for m in p.mappings.iter().filter(|m| m.applies_to(v6)) {
        let proto = m.proto.to_string();
        let hport = m.host_port.to_string();
        let mut matches: Vec<String> = vec!["-p".into(), proto.clone()];
        if let Some(ip) = m.host_ip {
            matches.extend(["-d".into(), ip.to_string()]);
        }
        matches.extend(["--dport".into(), hport]);
        if p.snat {
            let subnet = IpNetwork::new(addr.network(), addr.prefix()).map(|n| n.to_string()).unwrap_or_default();
            let mut sources = vec![subnet];
            if !v6 {
                sources.push("127.0.0.1".into());
            }
            for src in sources {
                let mut args = vec!["-s".to_string(), src];
                args.extend(matches.iter().cloned());
                args.extend(["-j".into(), SETMARK_CHAIN.into()]);
                rules.push(Rule { table: "nat".into(), chain: chain.clone(), args });
            }
        }
        let dest = if v6 { format!("[{}]:{}", addr.ip(), m.container_port) } else { format!("{}:{}", addr.ip(), m.container_port) };
        let mut args = matches.clone();
        args.extend(["-j".into(), "DNAT".into(), "--to-destination".into(), dest]);
        rules.push(Rule { table: "nat".into(), chain: chain.clone(), args });
    }
    if rules.is_empty() {
        return None;
    }
    let mut jargs: Vec<String> = if v6 { p.conditions_v6.clone() } else { p.conditions_v4.clone() };
    jargs.extend(["-m".into(), "comment".into(), "--comment".into(), comment(&p.network, &p.container_id), "-j".into(), chain.clone()]);
    let jump = Rule { table: "nat".into(), chain: DNAT_CHAIN.into(), args: jargs };
    Some((chain, rules, jump))
}

/// The rules of one network, for the family of its subnet.
pub fn network(m: &NetworkRules) -> (Family, Vec<Rule>) {
    let family = Family::of(m.subnet.ip());
    let subnet = IpNetwork::new(m.subnet.network(), m.subnet.prefix()).map(|n| n.to_string()).unwrap_or_default();
    let c = format!("berth:{}", m.network);
    let br = m.bridge.as_str();
    let mut rules = if m.internal {
        vec![
            Rule::new("filter", FORWARD_CHAIN, &["-i", br, "!", "-o", br, "-m", "comment", "--comment", &c, "-j", "DROP"]),
            Rule::new("filter", FORWARD_CHAIN, &["-o", br, "!", "-i", br, "-m", "comment", "--comment", &c, "-j", "DROP"]),
        ]
    } else {
        vec![
            Rule::new("filter", FORWARD_CHAIN, &["-i", br, "-m", "comment", "--comment", &c, "-j", "ACCEPT"]),
            Rule::new(
                "filter",
                FORWARD_CHAIN,
                &["-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-m", "comment", "--comment", &c, "-j", "ACCEPT"],
            ),
        ]
    };
    if m.masquerade && !m.internal {
        match network_masq_chain(m) {
            None => rules.push(Rule::new(
                "nat",
                POSTROUTING_CHAIN,
                &["-s", &subnet, "!", "-o", br, "-m", "comment", "--comment", &c, "-j", "MASQUERADE"],
            )),
            Some(chain) => {
                // Its own chain: the exclusions return before the masquerade.
                for x in m.masq_exclude.iter().filter(|x| x.is_ipv6() == m.subnet.is_ipv6()) {
                    let x = IpNetwork::new(x.network(), x.prefix()).map(|n| n.to_string()).unwrap_or_default();
                    rules.push(Rule::new("nat", &chain, &["-d", &x, "-m", "comment", "--comment", &c, "-j", "RETURN"]));
                }
                rules.push(Rule::new("nat", &chain, &["-m", "comment", "--comment", &c, "-j", "MASQUERADE"]));
                rules.push(Rule::new(
                    "nat",
                    POSTROUTING_CHAIN,
                    &["-s", &subnet, "!", "-o", br, "-m", "comment", "--comment", &c, "-j", &chain],
                ));
            }
        }
    }
    if m.protect {
        // The bridge's own (gateway) address is the host's: reachable like any other,
        // from the host itself too (its packets come back in on `lo`).
        rules.push(Rule::new(
            "raw",
            RAW_CHAIN,
            &["-d", &subnet, "-m", "addrtype", "--dst-type", "LOCAL", "-m", "comment", "--comment", &c, "-j", "RETURN"],
        ));
        rules.push(Rule::new("raw", RAW_CHAIN, &["-d", &subnet, "!", "-i", br, "-m", "comment", "--comment", &c, "-j", "DROP"]));
    }
    (family, rules)
}

/// The nat chain of a network whose masquerade spares destinations (`ipMasqExclude`),
/// declared before its rules; `None` when it masquerades straight from berth's chain.
pub fn network_masq_chain(m: &NetworkRules) -> Option<String> {
    let excluded = m.masq_exclude.iter().any(|x| x.is_ipv6() == m.subnet.is_ipv6());
    (m.masquerade && !m.internal && excluded).then(|| chain_name("BERTH-MASQX-", &m.network, &m.subnet.to_string(), &m.bridge))
}

/// An attachment's own masquerade for one family: its chain (its subnets accepted
/// untouched, then everything but multicast masqueraded, as the reference's
/// `ip.SetupIPMasq`), the chain's rules, and the jumps into it from berth's postrouting
/// chain, one per address. `None` without an address of the family.
pub fn masq(m: &MasqRules, family: Family) -> Option<(String, Vec<Rule>, Vec<Rule>)> {
    let v6 = family == Family::V6;
    let mine: Vec<_> = m.subnets().filter(|(a, _)| a.is_ipv6() == v6).collect();
    if mine.is_empty() {
        return None;
    }
    let chain = chain_name("BERTH-MASQ-", &m.network, &m.container_id, &m.ifname);
    let c = comment(&m.network, &m.container_id);
    let mut rules: Vec<Rule> = mine
        .iter()
        .map(|(_, net)| Rule::new("nat", &chain, &["-d", &net.to_string(), "-m", "comment", "--comment", &c, "-j", "ACCEPT"]))
        .collect();
    rules.push(Rule::new("nat", &chain, &["!", "-d", &multicast(v6).to_string(), "-m", "comment", "--comment", &c, "-j", "MASQUERADE"]));
    let jumps = mine
        .iter()
        .map(|(a, _)| {
            let host = format!("{}/{}", a.ip(), if v6 { 128 } else { 32 });
            Rule::new("nat", POSTROUTING_CHAIN, &["-s", &host, "-m", "comment", "--comment", &c, "-j", &chain])
        })
        .collect();
    Some((chain, rules, jumps))
}

/// The `firewall` plugin's fixed chains and jumps, in the order they are inserted at the
/// top of their chains (so isolation runs before the accepts, the admin chain before the
/// attachments' rules).
pub fn filter_base(admin: &str) -> (Vec<(String, String)>, Vec<Rule>) {
    let chains = [FILTER_CHAIN, admin, ISOLATION_1, ISOLATION_2].iter().map(|c| ("filter".to_string(), c.to_string())).collect();
    let rules = vec![
        Rule::new("filter", "FORWARD", &["-m", "comment", "--comment", FILTER_COMMENT, "-j", FILTER_CHAIN]),
        Rule::new("filter", "FORWARD", &["-m", "comment", "--comment", ISOLATION_COMMENT, "-j", ISOLATION_1]),
        Rule::new("filter", FILTER_CHAIN, &["-m", "comment", "--comment", "berth firewall plugin admin overrides", "-j", admin]),
    ];
    (chains, rules)
}

/// An attachment's accepts for one family: its own traffic out, and replies back in.
pub fn filter(f: &FilterRules, family: Family) -> Vec<Rule> {
    let mut rules = Vec::new();
    for a in f.addrs.iter().filter(|a| Family::of(a.ip()) == family) {
        let host = format!("{}/{}", a.ip(), if a.is_ipv4() { 32 } else { 128 });
        rules.push(Rule::new(
            "filter",
            FILTER_CHAIN,
            &["-d", &host, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
        ));
        rules.push(Rule::new("filter", FILTER_CHAIN, &["-s", &host, "-j", "ACCEPT"]));
    }
    rules
}

/// A bridge's `same-bridge` isolation: nothing from it enters another isolated bridge.
pub fn isolation(bridge: &str) -> Vec<Rule> {
    vec![
        Rule::new(
            "filter",
            ISOLATION_1,
            &["-i", bridge, "!", "-o", bridge, "-m", "comment", "--comment", ISOLATION_COMMENT, "-j", ISOLATION_2],
        ),
        Rule::new("filter", ISOLATION_2, &["-o", bridge, "-m", "comment", "--comment", ISOLATION_COMMENT, "-j", "DROP"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::rules::Backend;
    use crate::portmap::{PortMapping, Proto};

    #[test]
    fn renders_dnat_hairpin_and_localhost() {
        let p = PortRules {
            network: "net".into(),
            container_id: "c1".into(),
            ifname: "eth0".into(),
            addrs: vec!["172.17.0.2/16".parse().unwrap()],
            mappings: vec![
                PortMapping::new(None, 4000, 80, Proto::Tcp).unwrap(),
                PortMapping::new(Some("127.0.0.1".parse().unwrap()), 5353, 53, Proto::Udp).unwrap(),
            ],
            snat: true,
            host_if: Some("docker0".into()),
            conditions_v4: vec![],
            conditions_v6: vec![],
            backend: Backend::Iptables,
            mark_bit: 13,
        };
        let (chain, rules, jump) = ports(&p, Family::V4).unwrap();
        assert!(chain.starts_with("BERTH-DN-") && chain.len() <= 28);
        let lines: Vec<_> = rules.iter().map(|r| r.render("-A")).collect();
        assert_eq!(lines[0], format!("-A {chain} -s 172.17.0.0/16 -p tcp --dport 4000 -j BERTH-HOSTPORT-SETMARK"));
        assert_eq!(lines[1], format!("-A {chain} -s 127.0.0.1 -p tcp --dport 4000 -j BERTH-HOSTPORT-SETMARK"));
        assert_eq!(lines[2], format!("-A {chain} -p tcp --dport 4000 -j DNAT --to-destination 172.17.0.2:80"));
        assert_eq!(lines[5], format!("-A {chain} -p udp -d 127.0.0.1 --dport 5353 -j DNAT --to-destination 172.17.0.2:53"));
        assert_eq!(jump.render("-D"), format!("-D BERTH-HOSTPORT-DNAT -m comment --comment berth:net:c1 -j {chain}"));
        assert!(ports(&p, Family::V6).is_none());
    }

    #[test]
    fn network_rules_forward_and_masquerade_the_subnet() {
        let m = NetworkRules {
            network: "n".into(),
            subnet: "10.88.0.5/16".parse().unwrap(),
            bridge: "br0".into(),
            masquerade: true,
            masq_exclude: Vec::new(),
            protect: true,
            internal: false,
            backend: Backend::Iptables,
        };
        let (f, r) = network(&m);
        assert_eq!(f, Family::V4);
        let lines: Vec<String> = r.iter().map(|r| r.render("-A")).collect();
        assert_eq!(
            lines,
            [
                "-A BERTH-FORWARD -i br0 -m comment --comment berth:n -j ACCEPT",
                "-A BERTH-FORWARD -o br0 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment berth:n -j ACCEPT",
                "-A BERTH-POSTROUTING -s 10.88.0.0/16 ! -o br0 -m comment --comment berth:n -j MASQUERADE",
                "-A BERTH-RAW-PREROUTING -d 10.88.0.0/16 -m addrtype --dst-type LOCAL -m comment --comment berth:n -j RETURN",
                "-A BERTH-RAW-PREROUTING -d 10.88.0.0/16 ! -i br0 -m comment --comment berth:n -j DROP",
            ]
        );
        let (_, r) = network(&NetworkRules { masquerade: false, protect: false, ..m.clone() });
        assert_eq!(r.len(), 2);
        // Exclusions: the subnet jumps to its own chain, which returns for them.
        let x = NetworkRules { masq_exclude: vec!["10.244.0.0/16".parse().unwrap(), "fd00::/8".parse().unwrap()], ..m };
        let chain = network_masq_chain(&x).unwrap();
        assert!(chain.starts_with("BERTH-MASQX-"));
        let lines: Vec<String> = network(&x).1.iter().map(|r| r.render("-A")).filter(|l| l.contains("MASQ")).collect();
        assert_eq!(
            lines,
            [
                format!("-A {chain} -d 10.244.0.0/16 -m comment --comment berth:n -j RETURN"),
                format!("-A {chain} -m comment --comment berth:n -j MASQUERADE"),
                format!("-A BERTH-POSTROUTING -s 10.88.0.0/16 ! -o br0 -m comment --comment berth:n -j {chain}"),
            ]
        );
        assert!(network_masq_chain(&NetworkRules { masquerade: false, ..x }).is_none());
    }

    #[test]
    fn filter_rules_match_the_reference_plugin() {
        let f = FilterRules {
            network: "podman".into(),
            container_id: "c".into(),
            ifname: "eth0".into(),
            addrs: vec!["10.88.0.2/16".parse().unwrap(), "fd00::2/64".parse().unwrap()],
            admin_chain: ADMIN_CHAIN.into(),
            isolate: Some("cni0".into()),
            backend: Backend::Iptables,
        };
        let v4: Vec<String> = filter(&f, Family::V4).iter().map(|r| r.render("-A")).collect();
        assert_eq!(
            v4,
            [
                "-A BERTH-FIREWALL -d 10.88.0.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                "-A BERTH-FIREWALL -s 10.88.0.2/32 -j ACCEPT"
            ]
        );
        assert_eq!(filter(&f, Family::V6)[1].render("-A"), "-A BERTH-FIREWALL -s fd00::2/128 -j ACCEPT");
        assert_eq!(
            isolation("cni0")[0].render("-A"),
            "-A BERTH-ISOLATION-STAGE-1 -i cni0 ! -o cni0 -m comment --comment \"berth firewall plugin rules (ingressPolicy: same-bridge)\" -j BERTH-ISOLATION-STAGE-2"
        );
        let (chains, rules) = filter_base("MY-ADMIN");
        assert_eq!(chains[1].1, "MY-ADMIN");
        assert!(rules[2].render("-A").ends_with("-j MY-ADMIN"));
    }

    #[test]
    fn chain_names_are_stable_and_distinct() {
        assert_eq!(chain_name("X-", "n", "a", "eth0"), chain_name("X-", "n", "a", "eth0"));
        assert_ne!(chain_name("X-", "n", "a", "eth0"), chain_name("X-", "n", "a", "eth1"));
    }

    #[test]
    fn masq_rules_are_the_references_shape() {
        let m = MasqRules {
            network: "pn".into(),
            container_id: "c1".into(),
            ifname: "eth0".into(),
            addrs: vec!["10.1.1.10/24".parse().unwrap()],
            backend: Backend::Iptables,
        };
        let (chain, rules, jumps) = masq(&m, Family::V4).unwrap();
        assert!(chain.starts_with("BERTH-MASQ-") && chain.len() <= 28, "{chain}");
        let c = "berth:pn:c1";
        assert_eq!(rules[0].render("-A"), format!("-A {chain} -d 10.1.1.0/24 -m comment --comment {c} -j ACCEPT"));
        assert_eq!(rules[1].render("-A"), format!("-A {chain} ! -d 224.0.0.0/4 -m comment --comment {c} -j MASQUERADE"));
        assert_eq!(jumps[0].render("-A"), format!("-A BERTH-POSTROUTING -s 10.1.1.10/32 -m comment --comment {c} -j {chain}"));
        assert!(masq(&m, Family::V6).is_none());
    }
}
