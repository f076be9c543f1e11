//! nftables backend: berth's table `inet berth` (see [`layout`]) driven over one
//! nf_tables netlink socket per operation, each operation one batch (one kernel
//! transaction). Per-container work is set elements, so its cost does not grow with the
//! number of containers, and a host port mapped twice is refused by the kernel.

pub mod expr;
pub mod layout;
pub mod msg;
pub mod spoof;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use self::layout::{Elem, TABLE};
use self::msg::{Conn, Failed, Msg};
use super::rules::{Backend, FilterRules, MasqRules, NetworkRules, PortRules};
use super::Firewall;
use crate::error::{Error, Result};
use crate::portmap::PortMapping;

/// The nftables backend.
#[derive(Debug, Clone)]
pub struct Nftables {
    lock_path: PathBuf,
    mark_bit: u8,
}

/// One message of a batch with what it does, for errors.
struct Op {
    msg: Msg,
    what: String,
    mapping: Option<PortMapping>,
}

impl Op {
    fn new(msg: Msg, what: impl Into<String>) -> Self {
        Self { msg, what: what.into(), mapping: None }
    }
}

/// An engine error carried through [`msg::with_conn`], which also returns socket errors.
struct Wrapped(Error);

impl From<io::Error> for Wrapped {
    fn from(e: io::Error) -> Self {
        Wrapped(nft_err("open a netlink socket", e))
    }
}

fn nft_err(what: impl Into<String>, source: io::Error) -> Error {
    Error::Nftables { what: what.into(), source }
}

fn describe(e: &Elem) -> String {
    match &e.mapping {
        Some(m) => format!("element of {} for {m}", e.set),
        None => format!("element of {} ({})", e.set, e.key.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    }
}

fn elem_ops(elems: &[Elem], add: bool) -> Vec<Op> {
    elems
        .iter()
        .map(|e| {
            let msg = if add { layout::add_elems(e.set, &[e], e.mapping.is_some()) } else { layout::del_elems(e.set, &[e]) };
            Op { msg, what: format!("{} {}", if add { "add" } else { "delete" }, describe(e)), mapping: e.mapping }
        })
        .collect()
}

fn port_elems(p: &PortRules) -> Vec<Elem> {
    let mut e = layout::port_elems(p, false);
    e.extend(layout::port_elems(p, true));
    e
}

fn chain_ops(chains: &[(String, Vec<Vec<expr::Expr>>)]) -> Vec<Op> {
    let mut ops = Vec::new();
    for (name, rules) in chains {
        ops.push(Op::new(layout::new_chain(name, None), format!("create chain {name}")));
        ops.push(Op::new(layout::flush_chain(name), format!("flush chain {name}")));
        for r in rules {
            ops.push(Op::new(layout::new_rule(name, r), format!("add a rule to chain {name}")));
        }
    }
    ops
}

impl Nftables {
    /// A backend serialising repairs of its base chains with a flock at `lock_path`.
    /// `mark_bit` is recorded with each attachment; this backend needs no mark.
    pub fn new(lock_path: impl Into<PathBuf>, mark_bit: u8) -> Self {
        Self { lock_path: lock_path.into(), mark_bit }
    }

    /// Whether the kernel has nf_tables (berth's `auto` picks this backend then). Asked
    /// over the process's shared socket, which the operations then reuse.
    pub fn available() -> bool {
        msg::with_conn(|c| c.generation()).is_ok()
    }

    /// Runs `f` with the process's nf_tables socket.
    fn with<T>(f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        msg::with_conn(|c| f(c).map_err(Wrapped)).map_err(|w| w.0)
    }

    fn commit(conn: &mut Conn, ops: &[Op]) -> Result<std::result::Result<(), Vec<Failed>>> {
        let msgs: Vec<&Msg> = ops.iter().map(|o| &o.msg).collect();
        conn.commit(&msgs).map_err(|e| nft_err("send a batch", e))
    }

    fn error(ops: &[Op], failed: &[Failed]) -> Error {
        // The first failure that is not only "missing" explains most.
        let f = failed.iter().find(|f| f.errno != libc::ENOENT).or(failed.first()).copied();
        let Some(f) = f else { return Error::Internal("nftables batch failed without an error") };
        let op = ops.get(f.index);
        match op.and_then(|o| o.mapping) {
            Some(m) if f.errno == libc::EEXIST => Error::PortInUse {
                port: m.host_port,
                proto: m.proto.to_string(),
                host_ip: m.host_ip_display(),
                by: ": the nftables map already has it".into(),
            },
            _ => nft_err(op.map(|o| o.what.clone()).unwrap_or_else(|| "batch".into()), io::Error::from_raw_os_error(f.errno)),
        }
    }

    /// Applies `ops`; where something they rely on is missing (the table, a set), puts
    /// the base back and tries once more.
    fn apply_with_base(&self, ops: &[Op]) -> Result<()> {
        Self::with(|c| self.apply_with_base_on(c, ops))
    }

    fn apply_with_base_on(&self, c: &mut Conn, ops: &[Op]) -> Result<()> {
        match Self::commit(c, ops)? {
            Ok(()) => Ok(()),
            Err(failed) if failed.iter().any(|f| f.errno == libc::ENOENT) => {
                tracing::debug!("nftables batch failed, repairing the base table");
                self.repair_base(c)?;
                Self::commit(c, ops)?.map_err(|f| Self::error(ops, &f))
            }
            Err(failed) => Err(Self::error(ops, &failed)),
        }
    }

    /// Applies removals in one batch; if some target is already gone, applies each on
    /// its own and ignores what is missing (and chains another subnet still uses).
    fn remove(c: &mut Conn, ops: &[Op]) -> Result<()> {
        if Self::commit(c, ops)?.is_ok() {
            return Ok(());
        }
        for op in ops {
            if let Err(f) = Self::commit(c, std::slice::from_ref(op))? {
                let tolerated = f.iter().all(|f| f.errno == libc::ENOENT || (f.errno == libc::EBUSY && op.msg.kind() == msg::ty::DELCHAIN));
                if !tolerated {
                    return Err(Self::error(std::slice::from_ref(op), &f));
                }
            }
        }
        Ok(())
    }

    fn base_ops() -> Vec<Op> {
        let mut ops = vec![Op::new(layout::new_table(), format!("create table inet {TABLE}"))];
        for (i, s) in layout::SETS.iter().enumerate() {
            ops.push(Op::new(layout::new_set(s, i as u32 + 1), format!("create set {}", s.name)));
        }
        for c in &layout::CHAINS {
            ops.push(Op::new(layout::new_chain(c.name, c.hook), format!("create chain {}", c.name)));
        }
        for (chain, rules) in layout::base_rules() {
            ops.push(Op::new(layout::flush_chain(chain), format!("flush chain {chain}")));
            for r in rules {
                ops.push(Op::new(layout::new_rule(chain, &r), format!("add a rule to chain {chain}")));
            }
        }
        ops
    }

    /// Rule counts per chain of the table; `None` without the table.
    fn rule_counts(c: &mut Conn) -> Result<Option<BTreeMap<String, usize>>> {
        if c.query(&layout::get_table()).map_err(|e| nft_err("look the table up", e))?.is_empty() {
            return Ok(None);
        }
        let mut counts = BTreeMap::new();
        for answer in c.query(&layout::dump_rules()).map_err(|e| nft_err("list the table's rules", e))? {
            if let Some((_, name)) = msg::attrs(&answer).into_iter().find(|(t, _)| *t == 2) {
                let name = String::from_utf8_lossy(name).trim_end_matches('\0').to_string();
                *counts.entry(name).or_insert(0) += 1;
            }
        }
        Ok(Some(counts))
    }

    /// Whether the table has every set and each fixed chain its number of rules. A table
    /// of an older layout lacks a set that its replacement brings: repaired, its fixed
    /// chains are refilled with rules that use the new one.
    fn base_ok(c: &mut Conn) -> Result<bool> {
        let Some(counts) = Self::rule_counts(c)? else { return Ok(false) };
        if !layout::base_rules().iter().all(|(chain, rules)| counts.get(*chain) == Some(&rules.len())) {
            return Ok(false);
        }
        let sets = Self::set_names(c)?;
        Ok(layout::SETS.iter().all(|s| sets.iter().any(|n| n == s.name)))
    }

    /// The names of the table's sets.
    fn set_names(c: &mut Conn) -> Result<Vec<String>> {
        Ok(c.query(&layout::dump_sets())
            .map_err(|e| nft_err("list the table's sets", e))?
            .iter()
            .filter_map(|answer| msg::attrs(answer).into_iter().find(|(t, _)| *t == 2).map(|(_, n)| n.to_vec()))
            .map(|n| String::from_utf8_lossy(&n).trim_end_matches('\0').to_string())
            .collect())
    }

    /// Puts back the table, its sets and the fixed chains' rules if anything of them is
    /// missing (one batch, under the lock, so two repairers cannot add rules twice).
    fn repair_base(&self, c: &mut Conn) -> Result<bool> {
        let _lock = crate::state::lock_file(&self.lock_path)?;
        if Self::base_ok(c)? {
            return Ok(false);
        }
        let ops = Self::base_ops();
        Self::commit(c, &ops)?.map_err(|f| Self::error(&ops, &f))?;
        // An older layout's sets, now that no fixed rule uses them. Only those present:
        // the kernel takes 10-20 ms to abort a batch that fails.
        let retired: Vec<Op> = Self::set_names(c)?
            .iter()
            .filter(|n| layout::RETIRED_SETS.contains(&n.as_str()))
            .map(|n| Op::new(layout::del_set(n), format!("delete set {n}")))
            .collect();
        if let Err(f) = Self::commit(c, &retired)? {
            tracing::warn!(error = %Self::error(&retired, &f), "an older layout's set is left");
        }
        Ok(true)
    }

    fn network_ops(m: &NetworkRules) -> (Vec<Op>, Vec<Elem>) {
        let chains = layout::network_chains(m);
        let elems = layout::network_elems(m);
        let mut ops = chain_ops(&chains);
        ops.extend(elems.iter().map(|e| Op::new(layout::add_elems(e.set, &[e], false), format!("add {}", describe(e)))));
        (ops, elems)
    }

    /// Whether the kernel holds `e` as it is: its key, mapped to its data. A port map
    /// element with the same key and other data is another attachment's.
    fn holds(c: &mut Conn, e: &Elem) -> Result<bool> {
        let answers = c.query(&layout::get_elem(e)).map_err(|err| nft_err(format!("look up {}", describe(e)), err))?;
        Ok(match (answers.first(), &e.data) {
            (None, _) => false,
            (Some(a), Some(layout::Data::Value(v))) => msg::elem_value(a).as_ref() == Some(v),
            (Some(_), _) => true,
        })
    }

    fn check_elems(c: &mut Conn, elems: &[Elem]) -> Result<()> {
        for e in elems {
            if !Self::holds(c, e)? {
                return Err(Error::Check(format!("nftables table inet {TABLE} lacks the {}", describe(e))));
            }
        }
        Ok(())
    }

    fn check_network_with(c: &mut Conn, m: &NetworkRules) -> Result<()> {
        let counts = Self::rule_counts(c)?.ok_or_else(|| Error::Check(format!("nftables table inet {TABLE} is missing")))?;
        for (chain, rules) in layout::network_chains(m)
            .iter()
            .map(|(c, r)| (c.clone(), r.len()))
            .chain(layout::base_rules().iter().map(|(c, r)| (c.to_string(), r.len())))
        {
            if counts.get(&chain) != Some(&rules) {
                return Err(Error::Check(format!("nftables chain {chain} of table inet {TABLE} is missing or altered")));
            }
        }
        // Interval ends are found through their start.
        let starts: Vec<Elem> = layout::network_elems(m).into_iter().filter(|e| !e.interval_end).collect();
        Self::check_elems(c, &starts)
    }
}

impl Firewall for Nftables {
    fn backend(&self) -> Backend {
        Backend::Nftables
    }

    fn mark_bit(&self) -> u8 {
        self.mark_bit
    }

    fn add_ports(&self, p: &PortRules) -> Result<()> {
        if let Some(c) = p.conditions_v4.iter().chain(&p.conditions_v6).next() {
            return Err(Error::BadOption {
                key: "conditionsV4/conditionsV6".into(),
                value: c.clone(),
                why: "iptables match arguments; use the iptables backend for them",
            });
        }
        self.apply_with_base(&elem_ops(&port_elems(p), true))
    }

    fn remove_ports(&self, p: &PortRules) -> Result<()> {
        // Deletion goes by key, and a port map's key is the host port: only what maps to
        // this attachment is its own (a DEL after a refused ADD must not unpublish the
        // port's owner). Hairpin keys hold the container's address.
        Self::with(|c| {
            let mut own = Vec::new();
            for e in port_elems(p) {
                if e.mapping.is_none() || Self::holds(c, &e)? {
                    own.push(e);
                }
            }
            Self::remove(c, &elem_ops(&own, false))
        })
    }

    fn check_ports(&self, p: &PortRules) -> Result<()> {
        Self::with(|c| {
            if !Self::base_ok(c)? {
                return Err(Error::Check(format!("nftables table inet {TABLE} is missing or its chains altered")));
            }
            Self::check_elems(c, &port_elems(p))
        })
    }

    fn ensure_base(&self) -> Result<bool> {
        Self::with(|c| self.repair_base(c))
    }

    fn rebuild_ports(&self, all: &[PortRules]) -> Result<()> {
        let mut ops: Vec<Op> = layout::PORT_SETS.iter().map(|s| Op::new(layout::flush_set(s), format!("flush set {s}"))).collect();
        let elems: Vec<Elem> = all.iter().flat_map(port_elems).collect();
        for set in layout::PORT_SETS {
            let of_set: Vec<&Elem> = elems.iter().filter(|e| e.set == set).collect();
            for chunk in of_set.chunks(256) {
                ops.push(Op::new(layout::add_elems(set, chunk, false), format!("add {} elements to {set}", chunk.len())));
            }
        }
        self.apply_with_base(&ops)
    }

    fn base_intact(&self) -> Result<bool> {
        Self::with(Self::base_ok)
    }

    fn ensure_network(&self, m: &NetworkRules) -> Result<()> {
        self.apply_with_base(&Self::network_ops(m).0)
    }

    fn remove_network(&self, m: &NetworkRules) -> Result<()> {
        let mut ops = elem_ops(&layout::network_elems(m), false);
        for (name, _) in layout::network_chains(m) {
            ops.push(Op::new(layout::flush_chain(&name), format!("flush chain {name}")));
            ops.push(Op::new(layout::del_chain(&name), format!("delete chain {name}")));
        }
        Self::with(|c| Self::remove(c, &ops))
    }

    fn check_network(&self, m: &NetworkRules) -> Result<()> {
        Self::with(|c| Self::check_network_with(c, m))
    }

    fn repair_network(&self, m: &NetworkRules) -> Result<bool> {
        Self::with(|c| {
            if Self::check_network_with(c, m).is_ok() {
                return Ok(false);
            }
            self.repair_base(c)?;
            let ops = Self::network_ops(m).0;
            Self::commit(c, &ops)?.map_err(|f| Self::error(&ops, &f))?;
            Ok(true)
        })
    }

    fn add_filter(&self, f: &FilterRules) -> Result<()> {
        self.apply_with_base(&elem_ops(&layout::filter_elems(f, true), true))
    }

    fn remove_filter(&self, f: &FilterRules, last_on_bridge: bool) -> Result<()> {
        Self::with(|c| Self::remove(c, &elem_ops(&layout::filter_elems(f, last_on_bridge), false)))
    }

    fn check_filter(&self, f: &FilterRules) -> Result<()> {
        Self::with(|c| {
            if !Self::base_ok(c)? {
                return Err(Error::Check(format!("nftables table inet {TABLE} is missing or its chains altered")));
            }
            Self::check_elems(c, &layout::filter_elems(f, true))
        })
    }

    fn cleanup(&self) -> Result<()> {
        Self::with(|c| Self::remove(c, &[Op::new(layout::del_table(), format!("delete table inet {TABLE}"))]))
    }

    fn add_masq(&self, m: &MasqRules) -> Result<()> {
        self.apply_with_base(&elem_ops(&layout::masq_elems(m), true))
    }

    fn remove_masq(&self, m: &MasqRules) -> Result<()> {
        Self::with(|c| Self::remove(c, &elem_ops(&layout::masq_elems(m), false)))
    }

    fn check_masq(&self, m: &MasqRules) -> Result<()> {
        Self::with(|c| {
            if !Self::base_ok(c)? {
                return Err(Error::Check(format!("nftables table inet {TABLE} is missing or its chains altered")));
            }
            Self::check_elems(c, &layout::masq_elems(m))
        })
    }
}
