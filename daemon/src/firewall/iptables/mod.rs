//! iptables backend: each operation is ONE `iptables-restore --noflush`. Only when that
//! batch fails (first use in a netns, or rules removed by hand) does the slow path probe
//! individual rules with `iptables -C` and repair or skip them.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

mod render;

use self::render::{self as rules, Family, Rule};
use super::rules::{FilterRules, MasqRules, NetworkRules, PortRules};
use super::Firewall;
use crate::child::{self, Out, Run};
use crate::error::{Error, Result};

/// The iptables backend.
#[derive(Debug, Clone)]
pub struct Iptables {
    lock_path: PathBuf,
    mark_bit: u8,
}

/// The family's tool: `tool(V6, "-restore")` is "ip6tables-restore".
/// The tool's path: from the system directories where iptables lives when it is there
/// (a PATH walk through wrapper scripts cost milliseconds per call), else by PATH.
fn tool(f: Family, suffix: &str) -> String {
    let name = match f {
        Family::V4 => format!("iptables{suffix}"),
        Family::V6 => format!("ip6tables{suffix}"),
    };
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or(name)
}

/// Groups rule lines per table into restore text. A line with a control character (a
/// newline smuggled in a name or condition would start a rule of its own) poisons the
/// batch: it is never applied.
#[derive(Default)]
struct Batch {
    tables: Vec<(String, Vec<String>)>,
    poisoned: Option<String>,
}

impl Batch {
    fn push(&mut self, table: &str, line: String) {
        if line.chars().any(char::is_control) || table.chars().any(char::is_control) {
            self.poisoned.get_or_insert(line);
            return;
        }
        match self.tables.iter_mut().find(|(t, _)| t == table) {
            Some((_, lines)) => lines.push(line),
            None => self.tables.push((table.to_string(), vec![line])),
        }
    }

    fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    fn text(&self) -> String {
        let mut s = String::new();
        for (t, lines) in &self.tables {
            // Chain declarations must precede rules within a table.
            s.push_str(&format!("*{t}\n"));
            for l in lines.iter().filter(|l| l.starts_with(':')) {
                s.push_str(l);
                s.push('\n');
            }
            for l in lines.iter().filter(|l| !l.starts_with(':')) {
                s.push_str(l);
                s.push('\n');
            }
            s.push_str("COMMIT\n");
        }
        s
    }
}

impl Iptables {
    /// A backend serialising its own calls with a flock at `lock_path`; `mark_bit` is the
    /// connection mark bit used for masquerading hairpin and localhost traffic.
    pub fn new(lock_path: impl Into<PathBuf>, mark_bit: u8) -> Self {
        Self { lock_path: lock_path.into(), mark_bit }
    }

    fn lock(&self) -> Result<File> {
        crate::state::lock_file(&self.lock_path)
    }

    fn restore(&self, family: Family, batch: &Batch) -> Result<()> {
        if let Some(line) = &batch.poisoned {
            return Err(Error::ControlCharacters(line.clone()));
        }
        if batch.is_empty() {
            return Ok(());
        }
        let text = batch.text();
        tracing::debug!(family = ?family, rules = %text, "iptables-restore");
        let cmd = tool(family, "-restore");
        let args = [OsStr::new("--noflush"), OsStr::new("-w"), OsStr::new("5")];
        let run = Run { program: Path::new(&cmd), args: &args, env: &[], stdin: text.as_bytes(), stdout: Out::Null, stderr: Out::Capture };
        let out = child::run(&run).map_err(|e| Error::io("run", &cmd, e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Command { cmd: format!("{cmd} --noflush"), stderr: String::from_utf8_lossy(&out.captured).trim().to_string() })
        }
    }

    fn run(&self, family: Family, args: &[&str]) -> Result<bool> {
        let cmd = tool(family, "");
        let args: Vec<&OsStr> = ["-w", "5"].iter().chain(args).map(OsStr::new).collect();
        let run = Run { program: Path::new(&cmd), args: &args, env: &[], stdin: &[], stdout: Out::Null, stderr: Out::Null };
        let st = child::run(&run).map_err(|e| Error::io("run", &cmd, e))?.status;
        Ok(st.success())
    }

    /// Whether a rule exists (slow path only).
    pub fn rule_exists(&self, family: Family, r: &Rule) -> Result<bool> {
        let mut args: Vec<&str> = vec!["-t", &r.table, "-C", &r.chain];
        args.extend(r.args.iter().map(String::as_str));
        self.run(family, &args)
    }

    fn chain_exists(&self, family: Family, table: &str, chain: &str) -> Result<bool> {
        self.run(family, &["-t", table, "-n", "-L", chain])
    }

    /// Creates the base chains and jumps that are missing (slow path, under the lock);
    /// true if anything was.
    fn repair_base(&self, family: Family) -> Result<bool> {
        let (chains, base_rules) = rules::base(family, self.mark_bit);
        // Jumps from built-in chains go first so they run before other tools' rules.
        self.repair(family, &chains, &base_rules, |r| r.chain.chars().all(|c| c.is_ascii_uppercase()))
    }

    /// Declares the missing `chains` and adds the missing `rules` (inserted at the top
    /// where `insert` says so, else appended), in one batch; true if anything was missing.
    fn repair(&self, family: Family, chains: &[(String, String)], rules: &[Rule], insert: impl Fn(&Rule) -> bool) -> Result<bool> {
        let mut batch = Batch::default();
        let mut fresh = Vec::new();
        for (table, chain) in chains {
            if !self.chain_exists(family, table, chain)? {
                batch.push(table, format!(":{chain} - [0:0]"));
                fresh.push(chain.clone());
            }
        }
        for r in rules {
            if fresh.contains(&r.chain) || !self.rule_exists(family, r)? {
                batch.push(&r.table, r.render(if insert(r) { "-I" } else { "-A" }));
            }
        }
        self.restore(family, &batch)?;
        Ok(!batch.is_empty())
    }

    /// Applies `batch`; on failure repairs the base chains and tries once more.
    fn apply_with_base(&self, family: Family, batch: &Batch) -> Result<()> {
        match self.restore(family, batch) {
            Ok(()) => Ok(()),
            Err(first) => {
                tracing::debug!(error = %first, "restore failed, repairing base chains");
                self.repair_base(family)?;
                self.restore(family, batch)
            }
        }
    }

    /// Removes `rules` and `chains` in one batch; if something is already gone, removes
    /// what is left one probe at a time.
    fn remove(&self, family: Family, rules: &[Rule], chains: &[(String, String)]) -> Result<()> {
        let mut batch = Batch::default();
        for r in rules {
            batch.push(&r.table, r.render("-D"));
        }
        for (t, c) in chains {
            batch.push(t, format!("-F {c}"));
            batch.push(t, format!("-X {c}"));
        }
        if self.restore(family, &batch).is_ok() {
            return Ok(());
        }
        let mut batch = Batch::default();
        for r in rules {
            if self.rule_exists(family, r)? {
                batch.push(&r.table, r.render("-D"));
            }
        }
        for (t, c) in chains {
            if self.chain_exists(family, t, c)? {
                batch.push(t, format!("-F {c}"));
                batch.push(t, format!("-X {c}"));
            }
        }
        self.restore(family, &batch)
    }
}

fn families(addrs: &[ipnetwork::IpNetwork]) -> Vec<Family> {
    let mut f = Vec::new();
    if addrs.iter().any(|a| a.is_ipv4()) {
        f.push(Family::V4);
    }
    if addrs.iter().any(|a| a.is_ipv6()) {
        f.push(Family::V6);
    }
    f
}

/// The lines of `iptables-save -t table` output that remove berth's rules from built-in
/// chains and then berth's own chains.
fn cleanup_lines(save: &str) -> Vec<String> {
    let ours = |c: &str| c.starts_with("BERTH-");
    let mut out: Vec<String> = save
        .lines()
        .filter(|l| l.starts_with("-A ") && !ours(l.split_whitespace().nth(1).unwrap_or("")) && l.contains(" -j BERTH-"))
        .map(|l| l.replacen("-A ", "-D ", 1))
        .collect();
    let chains: Vec<&str> =
        save.lines().filter_map(|l| l.strip_prefix(':')).filter_map(|l| l.split_whitespace().next()).filter(|c| ours(c)).collect();
    out.extend(chains.iter().map(|c| format!("-F {c}")));
    out.extend(chains.iter().map(|c| format!("-X {c}")));
    out
}

/// The operations without the lock, for the trait methods that hold it (once).
impl Iptables {
    fn add_ports_unlocked(&self, p: &PortRules) -> Result<()> {
        for family in families(&p.addrs) {
            let Some((chain, rules, jump)) = rules::ports(p, family) else {
                continue;
            };
            let mut batch = Batch::default();
            batch.push("nat", format!(":{chain} - [0:0]"));
            for r in &rules {
                batch.push("nat", r.render("-A"));
            }
            batch.push("nat", jump.render("-A"));
            self.apply_with_base(family, &batch)?;
        }
        Ok(())
    }

    fn remove_ports_unlocked(&self, p: &PortRules) -> Result<()> {
        for family in families(&p.addrs) {
            let Some((chain, _, jump)) = rules::ports(p, family) else {
                continue;
            };
            self.remove(family, &[jump], &[("nat".into(), chain)])?;
        }
        Ok(())
    }

    fn check_ports_unlocked(&self, p: &PortRules) -> Result<()> {
        for family in families(&p.addrs) {
            let Some((_, rules, jump)) = rules::ports(p, family) else {
                continue;
            };
            let (_, base) = rules::base(family, self.mark_bit);
            for r in base.iter().chain(rules.iter()).chain(std::iter::once(&jump)) {
                if !self.rule_exists(family, r)? {
                    return Err(Error::Check(format!("iptables rule missing: -t {} {}", r.table, r.render("-A"))));
                }
            }
        }
        Ok(())
    }

    /// Creates the `firewall` plugin's chains and jumps that are missing (slow path),
    /// each inserted at the top of its chain.
    fn repair_filter_base(&self, family: Family, admin: &str) -> Result<()> {
        let (chains, base) = rules::filter_base(admin);
        self.repair(family, &chains, &base, |_| true).map(|_| ())
    }

    fn check_filter_unlocked(&self, f: &FilterRules) -> Result<()> {
        for family in families(&f.addrs) {
            let mut all = rules::filter_base(&f.admin_chain).1;
            all.extend(rules::filter(f, family));
            all.extend(f.isolate.iter().flat_map(|b| rules::isolation(b)));
            for r in &all {
                if !self.rule_exists(family, r)? {
                    return Err(Error::Check(format!("iptables rule missing: -t {} {}", r.table, r.render("-A"))));
                }
            }
        }
        Ok(())
    }

    fn ensure_network_unlocked(&self, m: &NetworkRules) -> Result<()> {
        let (family, rules) = rules::network(m);
        let mut batch = Batch::default();
        if let Some(chain) = rules::network_masq_chain(m) {
            batch.push("nat", format!(":{chain} - [0:0]"));
        }
        for r in &rules {
            batch.push(&r.table, r.render("-A"));
        }
        self.apply_with_base(family, &batch)
    }

    fn remove_network_unlocked(&self, m: &NetworkRules) -> Result<()> {
        let (family, rules) = rules::network(m);
        let chains: Vec<(String, String)> = rules::network_masq_chain(m).map(|c| ("nat".to_string(), c)).into_iter().collect();
        self.remove(family, &rules, &chains)
    }

    fn check_network_unlocked(&self, m: &NetworkRules) -> Result<()> {
        let (family, rules) = rules::network(m);
        let (_, base) = rules::base(family, self.mark_bit);
        for r in base.iter().chain(&rules) {
            if !self.rule_exists(family, r)? {
                return Err(Error::Check(format!("iptables rule missing: -t {} {}", r.table, r.render("-A"))));
            }
        }
        Ok(())
    }
}

impl Firewall for Iptables {
    fn add_filter(&self, f: &FilterRules) -> Result<()> {
        let _lock = self.lock()?;
        for family in families(&f.addrs) {
            // A non-default admin chain may be new to a base that exists: probe its jump.
            let admin_jump = &rules::filter_base(&f.admin_chain).1[2];
            if f.admin_chain != super::ADMIN_CHAIN && !self.rule_exists(family, admin_jump)? {
                self.repair_filter_base(family, &f.admin_chain)?;
            }
            let mut batch = Batch::default();
            for r in rules::filter(f, family) {
                batch.push("filter", r.render("-A"));
            }
            for r in f.isolate.iter().flat_map(|b| rules::isolation(b)) {
                if !self.rule_exists(family, &r)? {
                    batch.push("filter", r.render("-I"));
                }
            }
            if let Err(first) = self.restore(family, &batch) {
                tracing::debug!(error = %first, "restore failed, repairing the firewall plugin's chains");
                self.repair_filter_base(family, &f.admin_chain)?;
                self.restore(family, &batch)?;
            }
        }
        Ok(())
    }

    fn remove_filter(&self, f: &FilterRules, last_on_bridge: bool) -> Result<()> {
        let _lock = self.lock()?;
        for family in families(&f.addrs) {
            let mut all = rules::filter(f, family);
            if last_on_bridge {
                all.extend(f.isolate.iter().flat_map(|b| rules::isolation(b)));
            }
            self.remove(family, &all, &[])?;
        }
        Ok(())
    }

    fn check_filter(&self, f: &FilterRules) -> Result<()> {
        let _lock = self.lock()?;
        self.check_filter_unlocked(f)
    }

    fn add_masq(&self, m: &MasqRules) -> Result<()> {
        let _lock = self.lock()?;
        for family in families(&m.addrs) {
            let Some((chain, rules, jumps)) = rules::masq(m, family) else { continue };
            let mut batch = Batch::default();
            batch.push("nat", format!(":{chain} - [0:0]"));
            for r in rules.iter().chain(&jumps) {
                batch.push("nat", r.render("-A"));
            }
            self.apply_with_base(family, &batch)?;
        }
        Ok(())
    }

    fn remove_masq(&self, m: &MasqRules) -> Result<()> {
        let _lock = self.lock()?;
        for family in families(&m.addrs) {
            let Some((chain, _, jumps)) = rules::masq(m, family) else { continue };
            self.remove(family, &jumps, &[("nat".into(), chain)])?;
        }
        Ok(())
    }

    fn check_masq(&self, m: &MasqRules) -> Result<()> {
        let _lock = self.lock()?;
        for family in families(&m.addrs) {
            let Some((_, rules, jumps)) = rules::masq(m, family) else { continue };
            let (_, base) = rules::base(family, self.mark_bit);
            for r in base.iter().chain(&rules).chain(&jumps) {
                if !self.rule_exists(family, r)? {
                    return Err(Error::Check(format!("iptables rule missing: -t {} {}", r.table, r.render("-A"))));
                }
            }
        }
        Ok(())
    }

    fn backend(&self) -> crate::firewall::Backend {
        crate::firewall::Backend::Iptables
    }

    fn mark_bit(&self) -> u8 {
        self.mark_bit
    }

    fn cleanup(&self) -> Result<()> {
        let _lock = self.lock()?;
        for family in [Family::V4, Family::V6] {
            let mut batch = Batch::default();
            for table in ["raw", "nat", "filter"] {
                let cmd = tool(family, "-save");
                let out = Command::new(&cmd).args(["-t", table]).output().map_err(|e| Error::io("run", &cmd, e))?;
                for l in cleanup_lines(&String::from_utf8_lossy(&out.stdout)) {
                    batch.push(table, l);
                }
            }
            self.restore(family, &batch)?;
        }
        Ok(())
    }

    fn add_ports(&self, p: &PortRules) -> Result<()> {
        let _lock = self.lock()?;
        self.add_ports_unlocked(p)
    }

    fn remove_ports(&self, p: &PortRules) -> Result<()> {
        let _lock = self.lock()?;
        self.remove_ports_unlocked(p)
    }

    fn check_ports(&self, p: &PortRules) -> Result<()> {
        let _lock = self.lock()?;
        self.check_ports_unlocked(p)
    }

    fn rebuild_ports(&self, all: &[PortRules]) -> Result<()> {
        let _lock = self.lock()?;
        for family in [Family::V4, Family::V6] {
            let mut batch = Batch::default();
            batch.push("nat", format!(":{} - [0:0]", rules::DNAT_CHAIN));
            let mut any = false;
            for p in all {
                let Some((chain, rules, jump)) = rules::ports(p, family) else { continue };
                any = true;
                batch.push("nat", format!(":{chain} - [0:0]"));
                for r in &rules {
                    batch.push("nat", r.render("-A"));
                }
                batch.push("nat", jump.render("-A"));
            }
            if any {
                self.apply_with_base(family, &batch)?;
            }
        }
        Ok(())
    }

    fn base_intact(&self) -> Result<bool> {
        let _lock = self.lock()?;
        for family in [Family::V4, Family::V6] {
            let (_, rules) = rules::base(family, self.mark_bit);
            // The jumps from built-in chains: a flush of any table takes its jump first.
            for r in rules.iter().filter(|r| r.chain.chars().all(|c| c.is_ascii_uppercase())) {
                if !self.rule_exists(family, r)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    fn ensure_base(&self) -> Result<bool> {
        let _lock = self.lock()?;
        let mut repaired = false;
        for family in [Family::V4, Family::V6] {
            repaired |= self.repair_base(family)?;
        }
        Ok(repaired)
    }

    fn ensure_network(&self, m: &NetworkRules) -> Result<()> {
        let _lock = self.lock()?;
        self.ensure_network_unlocked(m)
    }

    fn remove_network(&self, m: &NetworkRules) -> Result<()> {
        let _lock = self.lock()?;
        self.remove_network_unlocked(m)
    }

    fn check_network(&self, m: &NetworkRules) -> Result<()> {
        let _lock = self.lock()?;
        self.check_network_unlocked(m)
    }

    fn repair_network(&self, m: &NetworkRules) -> Result<bool> {
        let _lock = self.lock()?;
        if self.check_network_unlocked(m).is_ok() {
            return Ok(false);
        }
        self.remove_network_unlocked(m)?;
        self.ensure_network_unlocked(m)?;
        Ok(true)
    }
}
