//! The firewall backend the suite runs against and backend-neutral views of what berth
//! installed, so one test asserts the same behaviour on iptables and nftables. The suite
//! runs once per backend (`BERTH_FIREWALL=iptables|nftables`; unset means what `auto`
//! picks here, nftables).

/// The backend under test: "iptables" or "nftables".
pub fn backend() -> &'static str {
    match std::env::var("BERTH_FIREWALL").as_deref() {
        Ok("iptables") => "iptables",
        _ => "nftables",
    }
}

/// Whether the suite runs against nftables.
pub fn nft() -> bool {
    backend() == "nftables"
}

/// Everything berth's backend installed, as text: `iptables-save` of the tables it uses,
/// or its nftables table (empty when there is none).
pub fn dump() -> String {
    super::sh(dump_cmd())
}

/// The shell command [`dump`] runs, for running it in another namespace.
pub fn dump_cmd() -> &'static str {
    if nft() {
        "nft list table inet berth 2>/dev/null; true"
    } else {
        "iptables-save -t nat; iptables-save -t raw; iptables-save -t filter; ip6tables-save"
    }
}

/// Whether a published port leads to `addr` port `port` (IPv6 addresses unbracketed).
pub fn dnat_to(addr: &str, port: u16) -> bool {
    let d = dump();
    if nft() {
        d.contains(&format!(": {addr} . {port}"))
    } else if addr.contains(':') {
        d.contains(&format!("--to-destination [{addr}]:{port}"))
    } else {
        d.contains(&format!("--to-destination {addr}:{port}"))
    }
}

/// Whether host port `port` is published (a DNAT rule, or a port-map element).
pub fn publishes(port: u16) -> bool {
    publishes_in(&dump(), port)
}

/// [`publishes`] in a [`dump`] taken elsewhere.
pub fn publishes_in(d: &str, port: u16) -> bool {
    if nft() {
        d.contains(&format!(" . {port} : "))
    } else {
        d.contains(&format!("--dport {port} "))
    }
}

/// Whether anything of the firewall names `addr` (a DNAT destination, a hairpin element).
pub fn mentions(addr: &str) -> bool {
    mentions_in(&dump(), addr)
}

/// [`mentions`] in a [`dump`] taken elsewhere.
pub fn mentions_in(d: &str, addr: &str) -> bool {
    [":", " ", ",", "/"].iter().any(|sep| d.contains(&format!("{addr}{sep}")))
}

/// How many times the rules of the network on `subnet` are installed (its
/// direct-routing drop: once per network while it has attachments).
pub fn network_rules(subnet: &str) -> usize {
    let d = dump();
    if nft() {
        d.matches(&format!("{subnet} : jump protect")).count()
    } else {
        d.matches(&format!("-d {subnet} ! -i ")).count()
    }
}

/// Whether berth's nftables table exists at all.
pub fn nft_table_exists() -> bool {
    super::try_sh("nft list tables").1.contains("table inet berth")
}

/// Deletes the DNAT of host port `port` (tcp, any address) by hand, as a user or a
/// firewall reload might.
pub fn delete_dnat(port: u16) {
    if nft() {
        super::sh(&format!("nft delete element inet berth any4 '{{ tcp . {port} }}'"));
    } else {
        let dnat = super::sh("iptables-save -t nat").lines().find(|l| l.contains(&format!("--dport {port} -j DNAT"))).map(str::to_string);
        let dnat = dnat.unwrap_or_else(|| panic!("no DNAT rule for port {port}"));
        super::sh(&format!("iptables -t nat {}", dnat.replacen("-A", "-D", 1)));
    }
}

/// Commands that remove berth's firewall state the way real tools do (a reload, a flush).
pub fn flushes() -> &'static [&'static str] {
    if nft() {
        &["nft flush ruleset", "nft flush chain inet berth raw", "nft delete table inet berth"]
    } else {
        &["iptables -t nat -F", "nft flush ruleset", "iptables -t raw -F"]
    }
}

/// Whether the drop of packets for 127.0.0.0/8 arriving from the network is installed.
pub fn drops_martian_localhost() -> bool {
    let d = dump();
    if nft() {
        d.contains("ip daddr 127.0.0.0/8 iifname != \"lo\" drop")
    } else {
        d.contains("-A BERTH-RAW-PREROUTING -d 127.0.0.0/8 ! -i lo -j DROP")
    }
}
