//! The `sbr` CNI plugin.

fn main() {
    berth_cni::skel::run(&berth_cni::plugin::sbr::Sbr)
}
