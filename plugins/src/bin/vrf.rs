//! The `vrf` CNI plugin.

fn main() {
    berth_cni::skel::run(&berth_cni::plugin::vrf::Vrf)
}
