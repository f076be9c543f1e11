//! loopback: brings `lo` up inside the container's netns.

use netd::netlink::Socket;
use netd::netns::NetNs;

use crate::skel::{Args, Plugin};
use crate::types::{code, CniError, CniResult, Interface, IpConfig, NetConf};

/// The loopback plugin.
pub struct Loopback;

fn netns(args: &Args) -> Result<NetNs, CniError> {
    let path = args.netns.as_ref().ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_NETNS is required"))?;
    Ok(NetNs::open(path)?)
}

impl Plugin for Loopback {
    fn add(&self, args: &Args, conf: &NetConf) -> Result<CniResult, CniError> {
        let ns = netns(args)?;
        ns.run(|| {
            let mut s = Socket::open()?;
            let lo = s.link_by_name("lo")?.ok_or_else(|| netd::Error::Check("no lo interface".into()))?;
            s.set_up(lo.index)?;
            Ok(())
        })?;
        let sandbox = ns.path().display().to_string();
        Ok(CniResult {
            cni_version: conf.cni_version.clone(),
            interfaces: vec![Interface { name: "lo".into(), mac: "00:00:00:00:00:00".into(), mtu: None, sandbox }],
            ips: vec![
                IpConfig { address: "127.0.0.1/8".parse().expect("literal"), gateway: None, interface: Some(0) },
                IpConfig { address: "::1/128".parse().expect("literal"), gateway: None, interface: Some(0) },
            ],
            ..Default::default()
        })
    }

    /// Leaves `lo` up: the netns is about to go away, and other attachments may share it.
    fn del(&self, _args: &Args, _conf: &NetConf) -> Result<(), CniError> {
        Ok(())
    }

    fn check(&self, args: &Args, _conf: &NetConf) -> Result<(), CniError> {
        let ns = netns(args)?;
        let up = ns.run(|| Ok(Socket::open()?.link_by_name("lo")?.is_some_and(|l| l.up)))?;
        if up {
            Ok(())
        } else {
            Err(CniError::new(code::INTERNAL, "loopback interface is down"))
        }
    }

    fn gc(&self, _args: &Args, _conf: &NetConf) -> Result<(), CniError> {
        Ok(())
    }
}
