//! The `dummy` CNI plugin.

fn main() {
    berth_cni::skel::run(&berth_cni::plugin::dummy::Dummy)
}
