//! The nf_tables ruleset generation: a counter the kernel bumps on every ruleset change
//! (iptables-nft and nft alike). Reading it is one netlink round trip, so a watcher can
//! notice that something changed the firewall without listing any table.

use std::io;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETGEN: u16 = 16;
const NFT_MSG_NEWGEN: u16 = 15;
const NFTA_GEN_ID: u16 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;

/// The current generation; an error where nf_tables is missing.
pub fn current() -> io::Result<u32> {
    let mut s = Socket::new(NETLINK_NETFILTER)?;
    s.bind_auto()?;
    s.connect(&SocketAddr::new(0, 0))?;
    let ty = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
    let mut msg = Vec::with_capacity(20);
    msg.extend_from_slice(&20u32.to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // struct nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id 0.
    msg.extend_from_slice(&[0, 0, 0, 0]);
    s.send(&msg, 0)?;
    let mut buf = vec![0u8; 4096];
    let n = s.recv(&mut &mut buf[..], 0)?;
    parse(&buf[..n])
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

fn parse(b: &[u8]) -> io::Result<u32> {
    let u16_at = |i: usize| b.get(i..i + 2).map(|x| u16::from_ne_bytes([x[0], x[1]]));
    let ty = u16_at(4).ok_or_else(|| bad("short netlink answer"))?;
    if ty == NLMSG_ERROR {
        let errno = b.get(16..20).map(|x| i32::from_ne_bytes([x[0], x[1], x[2], x[3]])).unwrap_or(-libc::EIO);
        return Err(io::Error::from_raw_os_error(-errno));
    }
    if ty != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN {
        return Err(bad("unexpected netlink answer"));
    }
    // Attributes follow the 16-byte header and the 4-byte nfgenmsg.
    let mut i = 20;
    while let (Some(len), Some(kind)) = (u16_at(i), u16_at(i + 2)) {
        let len = len as usize;
        if len < 4 {
            break;
        }
        if kind & 0x3fff == NFTA_GEN_ID {
            let v = b.get(i + 4..i + 8).ok_or_else(|| bad("short generation attribute"))?;
            return Ok(u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
        }
        i += (len + 3) & !3;
    }
    Err(bad("no generation in the answer"))
}
