//! The device allowlist: a container may create any device node (CAP_MKNOD) but open
//! only the standard ones, as with Docker. cgroup v1 writes `devices.deny`/`allow`;
//! cgroup v2 has no file for it, so a BPF_PROG_TYPE_CGROUP_DEVICE program is attached.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::error::{Error, Result};

/// One allowed device class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// 'c' (char), 'b' (block) or 'a' (both).
    pub kind: char,
    /// Major number, `None` for any.
    pub major: Option<u32>,
    /// Minor number, `None` for any.
    pub minor: Option<u32>,
    /// Any of "rwm".
    pub access: &'static str,
}

const fn c(major: u32, minor: Option<u32>) -> Rule {
    Rule { kind: 'c', major: Some(major), minor, access: "rwm" }
}

/// Docker's default allowlist: mknod of anything; null, zero, full, random, urandom,
/// tty, console, ptmx, pseudo-terminals and tun.
pub const DEFAULT: &[Rule] = &[
    Rule { kind: 'c', major: None, minor: None, access: "m" },
    Rule { kind: 'b', major: None, minor: None, access: "m" },
    c(1, Some(3)),
    c(1, Some(5)),
    c(1, Some(7)),
    c(1, Some(8)),
    c(1, Some(9)),
    c(5, Some(0)),
    c(5, Some(1)),
    c(5, Some(2)),
    c(136, None),
    c(10, Some(200)),
];

/// Which devices a container may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Devices {
    /// [`DEFAULT`].
    Default,
    /// Every device (`--privileged`).
    All,
}

impl Rule {
    /// The rule in cgroup v1 syntax, "c 1:3 rwm".
    pub fn v1(&self) -> String {
        let n = |x: Option<u32>| x.map(|v| v.to_string()).unwrap_or_else(|| "*".into());
        format!("{} {}:{} {}", self.kind, n(self.major), n(self.minor), self.access)
    }

    fn access_bits(&self) -> i32 {
        self.access
            .chars()
            .map(|a| match a {
                'm' => 1,
                'r' => 2,
                'w' => 4,
                _ => 0,
            })
            .sum()
    }
}

/// cgroup v1: deny everything, then allow the list.
pub fn apply_v1(dir: &Path, devices: Devices) -> Result<()> {
    if devices == Devices::All {
        return super::write(&dir.join("devices.allow"), "a");
    }
    super::write(&dir.join("devices.deny"), "a")?;
    DEFAULT.iter().try_for_each(|r| super::write(&dir.join("devices.allow"), &r.v1()))
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | dst, off, imm }
}

// Opcodes (linux/bpf.h): class | op | source.
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// The v2 program for `rules`: r2 = type, r3 = access, r4 = major, r5 = minor (from
/// `struct bpf_cgroup_dev_ctx`); each rule is a block that jumps to the next on any
/// mismatch and returns 1 (allow) at its end; falling off the last returns 0 (deny).
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules {
        let mut checks: Vec<Insn> = Vec::new();
        match r.kind {
            'c' => checks.push(insn(JNE_K, 2, 0, 0, 2)), // BPF_DEVCG_DEV_CHAR
            'b' => checks.push(insn(JNE_K, 2, 0, 0, 1)), // BPF_DEVCG_DEV_BLOCK
            _ => {}
        }
        // Any access bit outside the rule's is a mismatch.
        checks.push(insn(MOV32_X, 1, 3, 0, 0));
        checks.push(insn(AND32_K, 1, 0, 0, !r.access_bits() & 7));
        checks.push(insn(JNE_K, 1, 0, 0, 0));
        if let Some(major) = r.major {
            checks.push(insn(JNE_K, 4, 0, 0, major as i32));
        }
        if let Some(minor) = r.minor {
            checks.push(insn(JNE_K, 5, 0, 0, minor as i32));
        }
        let block_len = checks.len() + 2;
        for (i, mut ins) in checks.into_iter().enumerate() {
            if ins.code == JNE_K {
                ins.off = (block_len - i - 1) as i16;
            }
            p.push(ins);
        }
        p.push(insn(MOV64_K, 0, 0, 0, 1));
        p.push(insn(EXIT, 0, 0, 0, 0));
    }
    p.push(insn(MOV64_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// `union bpf_attr` for BPF_PROG_LOAD (the leading fields).
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    _pad: [u64; 12],
}

/// `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    _pad: [u64; 12],
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;

fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<i64> {
    // SAFETY: attr is a properly laid out bpf_attr prefix of the size passed.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *const T, std::mem::size_of::<T>()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

/// cgroup v2: loads the program and attaches it to the container's group (the
/// attachment lives as long as the group).
pub fn apply_v2(dir: &Path, devices: Devices) -> Result<()> {
    if devices == Devices::All {
        return Ok(());
    }
    let prog = program(DEFAULT);
    let license = c"Apache-2.0";
    let load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    let what = "load the cgroup device program";
    // SAFETY: a new descriptor returned by the kernel.
    let pfd = unsafe { OwnedFd::from_raw_fd(bpf(BPF_PROG_LOAD, &load).map_err(|e| Error::io(what, dir, e))? as i32) };
    let cg = std::fs::File::open(dir).map_err(|e| Error::io("open cgroup", dir, e))?;
    let attach = ProgAttach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: pfd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &attach).map_err(|e| Error::io("attach the device program to", dir, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_syntax() {
        let lines: Vec<String> = DEFAULT.iter().map(Rule::v1).collect();
        assert_eq!(lines[0], "c *:* m");
        assert!(lines.contains(&"c 1:3 rwm".to_string()) && lines.contains(&"c 136:* rwm".to_string()));
    }

    #[test]
    fn program_jumps_stay_inside() {
        let p = program(DEFAULT);
        for (i, ins) in p.iter().enumerate() {
            if ins.code == JNE_K {
                let target = i as i64 + 1 + ins.off as i64;
                assert!(target > i as i64 && (target as usize) < p.len());
                // Every jump lands on the first instruction after an exit: the next block.
                assert_eq!(p[target as usize - 1].code, EXIT, "jump at {i}");
            }
        }
        assert_eq!(p.last().unwrap().code, EXIT);
    }
}
