//! Asking a DNS server as a client in some netns would: a small python client run with
//! `nsenter` into a container's netns (or another test netns), so the query carries that
//! host's source address and arrives on its interface.

use std::process::{Command, Stdio};

use super::netns::{sh, try_sh, Proc};
use super::peer::{OtherHost, PEER_IP};

/// The client: `dig.py SERVER NAME udp|tcp [TRIES]` (UDP tries 1 s apart, as a stub
/// resolver retries) prints `rcode=N tc=N answers=N` and
/// the addresses, or `no answer` (timeout, connection refused or reset).
const DIG: &str = r#"
import socket, struct, sys
server, name, proto = sys.argv[1], sys.argv[2], sys.argv[3]
tries = int(sys.argv[4]) if len(sys.argv) > 4 else 1
q = struct.pack('>HHHHHH', 0x4242, 0x0100, 1, 0, 0, 0)
for l in name.split('.'):
    q += bytes([len(l)]) + l.encode()
q += b'\x00' + struct.pack('>HH', 1, 1)
try:
    if proto == 'udp':
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5 if tries == 1 else 1.0)
        for t in range(tries):
            s.sendto(q, (server, 53))
            try:
                r = s.recv(65535); break
            except socket.timeout:
                if t == tries - 1: raise
    else:
        s = socket.create_connection((server, 53), timeout=1.5)
        s.sendall(struct.pack('>H', len(q)) + q)
        def rd(n):
            b = b''
            while len(b) < n:
                c = s.recv(n - len(b))
                if not c: raise OSError('closed')
                b += c
            return b
        r = rd(struct.unpack('>H', rd(2))[0])
except OSError:
    print('no answer'); sys.exit(0)
flags, an = struct.unpack('>H', r[2:4])[0], struct.unpack('>H', r[6:8])[0]
ips = [socket.inet_ntoa(r[i:i+4]) for i in range(len(r) - 4, 11, -16)][:an] if an else []
print(f'rcode={flags & 15} tc={(flags >> 9) & 1} answers={an}', ' '.join(sorted(ips)))
"#;

/// Asks `server` for `name` over `proto` from the netns of `who`: a PID (a container's
/// PID 1), `host` (the test host itself), or a netns name under /run/netns.
pub fn dig(who: &str, server: &str, name: &str, proto: &str) -> String {
    dig_tries(who, server, name, proto, 1)
}

/// [`dig`] with up to `tries` UDP attempts.
pub fn dig_tries(who: &str, server: &str, name: &str, proto: &str, tries: u32) -> String {
    std::fs::write("/run/berth/dig.py", DIG).expect("write dig.py");
    let enter = match who {
        "host" => String::new(),
        w if w.bytes().all(|b| b.is_ascii_digit()) => format!("nsenter -t {w} -n "),
        w => format!("ip netns exec {w} "),
    };
    let (_, out) = try_sh(&format!("{enter}python3 /run/berth/dig.py {server} {name} {proto} {tries}"));
    out.trim().to_string()
}

/// A resolver for the "internet" in the other host: logs every question to
/// /run/berth/upstream.log; answers `*.test` with 198.51.100.7, except that with `slow`
/// it answers nothing (an upstream that hangs).
const UPSTREAM: &str = r#"
import socket, sys
slow = len(sys.argv) > 1
log = open("/run/berth/upstream.log", "a", buffering=1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 53))
while True:
    q, a = s.recvfrom(512)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i+1:i+1+q[i]].decode()); i += 1 + q[i]
    log.write(".".join(labels) + "\n")
    if slow:
        continue
    question = q[12:i+5]
    ok = labels[-1:] == ["test"]
    ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([198, 51, 100, 7]) if ok else b""
    s.sendto(q[:2] + (b"\x81\x80" if ok else b"\x81\x83") + b"\x00\x01" + (b"\x00\x01" if ok else b"\x00\x00") + b"\x00\x00\x00\x00" + question + ans, a)
"#;

/// Starts the upstream in `other` (the test's [`OtherHost`]); this host's resolv.conf
/// names it from then on.
pub fn upstream(other: &OtherHost, slow: bool) -> Proc {
    let _ = &other.ns;
    std::fs::write("/run/berth/upstream.py", UPSTREAM).unwrap();
    std::fs::write("/run/berth/resolv.conf", format!("nameserver {PEER_IP}\n")).unwrap();
    sh("mount --bind /run/berth/resolv.conf /etc/resolv.conf && : > /run/berth/upstream.log");
    let mut args = vec!["netns", "exec", "other", "python3", "/run/berth/upstream.py"];
    if slow {
        args.push("slow");
    }
    Proc(Command::new("ip").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
}

pub fn upstream_saw(name: &str) -> bool {
    std::fs::read_to_string("/run/berth/upstream.log").unwrap_or_default().lines().any(|l| l == name)
}
