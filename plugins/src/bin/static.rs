//! The `static` CNI IPAM plugin.

fn main() {
    berth_cni::skel::run(&berth_cni::plugin::static_ipam::Static)
}
