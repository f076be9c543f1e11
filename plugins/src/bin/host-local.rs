//! The `host-local` CNI plugin.

fn main() {
    berth_cni::skel::run(&berth_cni::plugin::host_local::HostLocal)
}
