//! The `vlan` CNI plugin.

fn main() {
    berth_cni::skel::run(&berth_cni::plugin::vlan::Vlan)
}
