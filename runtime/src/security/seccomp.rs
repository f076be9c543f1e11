//! Compiling a seccomp profile into a BPF program with libseccomp (before the container
//! process exists, so nothing is allocated or parsed after fork) and loading it in the
//! container's process just before exec.

use std::io::{Read, Seek};
use std::os::fd::AsFd;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use sha2::Digest;

use super::profile::{ArgCmp, Filter, Profile, SyscallRule};
use super::Error;

/// A compiled filter: an array of `struct sock_filter`, ready for `seccomp(2)`.
#[derive(Debug, Clone)]
pub struct Bpf(Vec<u8>);

fn bad(why: impl std::fmt::Display) -> Error {
    Error::Seccomp(why.to_string())
}

/// Docker's name for this machine's architecture, as profiles write it in `arches`.
fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// The running kernel's (major, minor).
fn kernel_version() -> (u32, u32) {
    let rel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().to_string()).unwrap_or_default();
    let mut it = rel.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok());
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next().flatten().unwrap_or(0)))
}

/// Whether a rule applies to a container holding `caps` on this machine.
fn applies(inc: &Filter, exc: &Filter, caps: &[String]) -> bool {
    let has = |c: &String| caps.iter().any(|h| h.eq_ignore_ascii_case(c));
    let arch = docker_arch();
    if !inc.caps.iter().all(has) || (!inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch)) {
        return false;
    }
    if let Some(min) = &inc.min_kernel {
        match parse_version(min) {
            Some(v) if kernel_version() >= v => {}
            _ => return false,
        }
    }
    !(exc.caps.iter().any(has) || exc.arches.iter().any(|a| a == arch))
}

fn action(name: &str, errno: Option<u32>) -> Result<ScmpAction, Error> {
    let val = match name {
        "SCMP_ACT_ERRNO" => Some(errno.unwrap_or(libc::EPERM as u32) as i32),
        "SCMP_ACT_TRACE" => Some(errno.unwrap_or(0) as i32),
        _ => None,
    };
    ScmpAction::from_str(name, val).map_err(|_| bad(format!("unknown action {name:?}")))
}

fn compare(a: &ArgCmp) -> Result<ScmpArgCompare, Error> {
    let op = match a.op.as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        "SCMP_CMP_MASKED_EQ" => ScmpCompareOp::MaskedEqual(a.value),
        other => return Err(bad(format!("unknown comparison {other:?}"))),
    };
    if a.index > 5 {
        return Err(bad(format!("argument index {} out of range", a.index)));
    }
    let datum = if a.op == "SCMP_CMP_MASKED_EQ" { a.value_two } else { a.value };
    Ok(ScmpArgCompare::new(a.index, op, datum))
}

fn add_rule(ctx: &mut ScmpFilterContext, r: &SyscallRule, default: ScmpAction) -> Result<(), Error> {
    let act = action(&r.action, r.errno_ret)?;
    if act == default {
        return Ok(());
    }
    let cmps: Vec<ScmpArgCompare> = r.args.iter().map(compare).collect::<Result<_, _>>()?;
    for name in r.names.iter().chain(r.name.iter()) {
        // Names this libseccomp or architecture does not know are skipped, as Docker does.
        let Ok(sc) = ScmpSyscall::from_name(name) else { continue };
        let res = if cmps.is_empty() { ctx.add_rule(act, sc) } else { ctx.add_rule_conditional(act, sc, &cmps) };
        if let Err(e) = res {
            tracing::debug!(syscall = %name, error = %e, "seccomp rule skipped");
        }
    }
    Ok(())
}

/// Compiles `profile` for a container holding `caps` ("CAP_NET_ADMIN", ...).
pub fn compile(profile: &Profile, caps: &[String]) -> Result<Bpf, Error> {
    let default = action(&profile.default_action, profile.default_errno_ret)?;
    let mut ctx = ScmpFilterContext::new(default).map_err(bad)?;
    let native = ScmpArch::native();
    let mut arches: Vec<String> = profile.architectures.clone();
    for m in &profile.arch_map {
        if m.architecture.parse::<ScmpArch>().ok() == Some(native) {
            arches.extend(m.sub_architectures.iter().cloned());
        }
    }
    for a in arches {
        let arch: ScmpArch = a.parse().map_err(|_| bad(format!("unknown architecture {a:?}")))?;
        if arch != native {
            ctx.add_arch(arch).map_err(bad)?;
        }
    }
    for r in profile.syscalls.iter().filter(|r| applies(&r.includes, &r.excludes, caps)) {
        add_rule(&mut ctx, r, default)?;
    }
    let mem = nix::sys::memfd::memfd_create(c"berth-seccomp", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| bad(format!("memfd: {e}")))?;
    ctx.export_bpf(mem.as_fd()).map_err(bad)?;
    let mut f = std::fs::File::from(mem);
    f.rewind().map_err(bad)?;
    let mut prog = Vec::new();
    f.read_to_end(&mut prog).map_err(bad)?;
    Ok(Bpf(prog))
}

/// [`compile`], through a cache directory of compiled programs (files `<sha256>.bpf`,
/// written atomically, 0600) keyed by `id` (what identifies the profile), the
/// capabilities, the kernel and the libseccomp version. `profile` is only built on a
/// miss; a missing or unreadable cache only costs the compile.
pub fn compile_cached(id: &str, profile: impl FnOnce() -> Profile, caps: &[String], cache: Option<&std::path::Path>) -> Result<Bpf, Error> {
    let Some(dir) = cache else { return compile(&profile(), caps) };
    let ver = libseccomp::ScmpVersion::current().map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro)).unwrap_or_default();
    let release = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().to_string()).unwrap_or_default();
    let key = serde_json::to_vec(&(id, caps, std::env::consts::ARCH, release, ver)).map_err(bad)?;
    let digest: String = sha2::Sha256::digest(&key).iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("{digest}.bpf"));
    if let Ok(prog) = std::fs::read(&path) {
        if !prog.is_empty() && prog.len().is_multiple_of(8) {
            return Ok(Bpf(prog));
        }
    }
    let bpf = compile(&profile(), caps)?;
    if let Err(e) = netd::state::write_atomic(&path, &bpf.0) {
        tracing::debug!(error = %e, "seccomp cache not written");
    }
    Ok(bpf)
}

impl Bpf {
    /// Installs the filter on the calling thread. Without no_new_privs the caller needs
    /// CAP_SYS_ADMIN, so it runs before capabilities are dropped. Allocation-free.
    pub fn load(&self) -> std::io::Result<()> {
        let prog = libc::sock_fprog { len: (self.0.len() / 8) as u16, filter: self.0.as_ptr() as *mut libc::sock_filter };
        // SAFETY: prog points at a valid sock_filter array that outlives the call.
        let r = unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const libc::sock_fprog) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::profile::default_profile;

    #[test]
    fn default_profile_compiles_and_depends_on_capabilities() {
        let base = compile(&default_profile(), &[]).unwrap();
        let admin = compile(&default_profile(), &["CAP_SYS_ADMIN".into()]).unwrap();
        assert!(!base.0.is_empty() && base.0.len().is_multiple_of(8));
        assert_ne!(base.0, admin.0, "CAP_SYS_ADMIN opens more syscalls");
    }

    #[test]
    fn rule_conditions() {
        let inc = Filter { caps: vec!["CAP_SYS_ADMIN".into()], ..Default::default() };
        assert!(!applies(&inc, &Filter::default(), &[]));
        assert!(applies(&inc, &Filter::default(), &["CAP_SYS_ADMIN".into()]));
        assert!(!applies(&Filter::default(), &inc, &["CAP_SYS_ADMIN".into()]));
        let future = Filter { min_kernel: Some("99.0".into()), ..Default::default() };
        assert!(!applies(&future, &Filter::default(), &[]));
        assert!(action("SCMP_ACT_BOGUS", None).is_err());
        assert!(compare(&ArgCmp { index: 9, value: 0, value_two: 0, op: "SCMP_CMP_EQ".into() }).is_err());
    }
}
