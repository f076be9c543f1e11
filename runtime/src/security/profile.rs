//! seccomp profiles in Docker's JSON format (`--security-opt seccomp=FILE.json` takes the
//! same files as `docker run`), and berth's default profile, which follows the policy of
//! Docker's default: deny with EPERM, allow an explicit list of syscalls, open more of
//! them only to containers holding the capability that makes them safe, and restrict
//! `clone`, `personality` and `socket` by argument.

use serde::{Deserialize, Serialize};

/// A profile as Docker's JSON writes it (the fields berth honours).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Action for syscalls no rule matches, e.g. "SCMP_ACT_ERRNO".
    pub default_action: String,
    /// errno for an `SCMP_ACT_ERRNO` default action (EPERM if absent).
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// Architectures besides the native one, e.g. "SCMP_ARCH_X86".
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Per-native-architecture sub-architectures (Docker's `archMap`).
    #[serde(default)]
    pub arch_map: Vec<ArchMap>,
    /// The rules, in order.
    #[serde(default)]
    pub syscalls: Vec<SyscallRule>,
}

/// Docker's `archMap` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    /// The native architecture this entry applies to.
    pub architecture: String,
    /// Architectures added when running on it.
    #[serde(default)]
    pub sub_architectures: Vec<String>,
}

/// One rule: these syscalls get this action (when the conditions hold).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    /// Syscall names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Old single-name form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", ...
    pub action: String,
    /// errno for `SCMP_ACT_ERRNO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Argument comparisons, all of which must hold.
    #[serde(default)]
    pub args: Vec<ArgCmp>,
    /// The rule applies only if these hold.
    #[serde(default)]
    pub includes: Filter,
    /// The rule does not apply if any of these holds.
    #[serde(default)]
    pub excludes: Filter,
}

/// A comparison of one syscall argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgCmp {
    /// Argument index (0-5).
    pub index: u32,
    /// Value compared with (the mask for `SCMP_CMP_MASKED_EQ`).
    pub value: u64,
    /// Second value (the expected masked value for `SCMP_CMP_MASKED_EQ`).
    #[serde(default)]
    pub value_two: u64,
    /// "SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_MASKED_EQ", ...
    pub op: String,
}

/// Conditions on the container (capabilities held, architecture, kernel version).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capabilities, e.g. "CAP_SYS_ADMIN".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    /// Architectures, e.g. "amd64".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    /// Minimum kernel version, "4.8".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

/// Syscalls every container may make.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "modify_ldt",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Syscalls opened only to a container holding the capability that guards them.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd", "process_madvise"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Namespace flags `clone` may not carry without CAP_SYS_ADMIN (NEWNS, NEWCGROUP,
/// NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET).
const CLONE_NS_MASK: u64 = 0x7E02_0000;

/// `personality` personas a container may switch to (Linux, PER_LINUX32, UNAME26
/// variants, and the query value).
const PERSONAS: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// `socket` domain refused to every container: AF_VSOCK reaches the hypervisor.
const AF_VSOCK: u64 = 40;

fn allow(names: &[&str]) -> SyscallRule {
    SyscallRule { names: names.iter().map(|s| s.to_string()).collect(), action: "SCMP_ACT_ALLOW".into(), ..Default::default() }
}

fn cmp(index: u32, value: u64, value_two: u64, op: &str) -> ArgCmp {
    ArgCmp { index, value, value_two, op: op.into() }
}

fn caps(c: &[&str]) -> Filter {
    Filter { caps: c.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

/// Identifies [`default_profile`] in the compiled-filter cache: change it with the lists.
pub const DEFAULT_ID: &str = "berth-default-1";

/// berth's default profile.
pub fn default_profile() -> Profile {
    let mut syscalls = vec![allow(ALLOWED)];
    // Debugging one's own processes is allowed where the kernel no longer lets ptrace
    // bypass seccomp (4.8 and later), as in Docker.
    syscalls.push(SyscallRule {
        includes: Filter { min_kernel: Some("4.8".into()), ..Default::default() },
        ..allow(&["ptrace", "process_vm_readv", "process_vm_writev"])
    });
    for p in PERSONAS {
        syscalls.push(SyscallRule { args: vec![cmp(0, *p, 0, "SCMP_CMP_EQ")], ..allow(&["personality"]) });
    }
    syscalls.push(SyscallRule { args: vec![cmp(0, AF_VSOCK, 0, "SCMP_CMP_NE")], ..allow(&["socket"]) });
    // Without CAP_SYS_ADMIN: clone without namespace flags; clone3 (whose flags live in
    // memory seccomp cannot read) reports ENOSYS so libcs fall back to clone.
    let no_admin = caps(&["CAP_SYS_ADMIN"]);
    syscalls.push(SyscallRule {
        args: vec![cmp(0, CLONE_NS_MASK, 0, "SCMP_CMP_MASKED_EQ")],
        excludes: no_admin.clone(),
        ..allow(&["clone"])
    });
    syscalls.push(SyscallRule {
        names: vec!["clone3".into()],
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(libc::ENOSYS as u32),
        excludes: no_admin,
        ..Default::default()
    });
    for (cap, names) in BY_CAPABILITY {
        syscalls.push(SyscallRule { includes: caps(&[cap]), ..allow(names) });
    }
    Profile {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(libc::EPERM as u32),
        architectures: Vec::new(),
        arch_map: vec![
            ArchMap { architecture: "SCMP_ARCH_X86_64".into(), sub_architectures: vec!["SCMP_ARCH_X86".into(), "SCMP_ARCH_X32".into()] },
            ArchMap { architecture: "SCMP_ARCH_AARCH64".into(), sub_architectures: vec!["SCMP_ARCH_ARM".into()] },
        ],
        syscalls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_round_trips_through_docker_json() {
        let p = default_profile();
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"defaultAction\":\"SCMP_ACT_ERRNO\""));
        assert_eq!(serde_json::from_str::<Profile>(&json).unwrap(), p);
    }

    #[test]
    fn dangerous_syscalls_are_not_in_the_base_list() {
        for s in ["mount", "unshare", "setns", "keyctl", "add_key", "kexec_load", "reboot", "init_module", "bpf", "clone"] {
            assert!(!ALLOWED.contains(&s), "{s} must not be allowed unconditionally");
        }
    }
}
