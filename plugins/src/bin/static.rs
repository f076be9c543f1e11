//! The `static` CNI IPAM plugin.
#![cfg_attr(not(test), no_main)]

berth_cni::plugin_main!(berth_cni::plugin::static_ipam::Static);
