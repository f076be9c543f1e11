//! The `host-device` CNI plugin.

fn main() {
    berth_cni::skel::run(&berth_cni::plugin::host_device::HostDevice)
}
