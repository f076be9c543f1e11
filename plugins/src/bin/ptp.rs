//! The `ptp` CNI plugin.

fn main() {
    berth_cni::skel::run(&berth_cni::plugin::ptp::Ptp)
}
