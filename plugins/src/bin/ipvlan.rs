//! The `ipvlan` CNI plugin.
#![cfg_attr(not(test), no_main)]

berth_cni::plugin_main!(berth_cni::plugin::ipvlan::Ipvlan);
