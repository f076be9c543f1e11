//! A kubelet stand-in: containerd with its CRI plugin, started for one test "node" (in
//! the test's netns or a netns of its own) with berth's plugins as its CNI `bin_dir` and
//! a node conflist, and driven over its CRI socket with the Kubernetes protobufs
//! (k8s-cri's tonic bindings) as kubelet drives it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, CreateContainerRequest, ExecSyncRequest, ImageSpec, ListPodSandboxRequest, PodSandboxConfig,
    PodSandboxMetadata, PodSandboxStatusRequest, PortMapping, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopPodSandboxRequest,
};
use serde_json::{json, Value};
use tonic::transport::{Channel, Endpoint, Uri};

use super::image::busybox_rootfs;
use super::netns::{sh, Netns};

/// The sandbox ("pause") image every node imports: busybox sleeping.
pub const PAUSE: &str = "berth.test/pause:1";

/// The name of the node network in the conflists the CRI tests write.
pub const NETWORK: &str = "k8s-pod-network";

/// The node conflist kubeadm-style clusters use with berth: bridge + host-local on the
/// node's podCIDR, portmap (hostPort) and bandwidth (annotations), `ipMasq` sparing
/// `cluster` (the cluster CIDR: pod-to-pod traffic between nodes keeps its source) and
/// pods reachable from the other nodes that route the podCIDR here (`nat-unprotected`).
pub fn node_conflist(pod_cidr: &str, cluster: &str) -> Value {
    json!({
        "cniVersion": "1.0.0", "name": NETWORK,
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "ipMasqExclude": [cluster], "hairpinMode": true,
             "gatewayMode": "nat-unprotected",
             "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    })
}

/// Where a node in a netns keeps its own state: (mount point, directory of the node's).
const NODE_STATE: [(&str, &str); 3] = [("/var/lib/cni", "cni"), ("/run/cni", "run-cni"), ("/run/berth", "run-berth")];

/// A containerd serving the CRI for one node.
pub struct Node {
    /// Its working directory (config, root, state, sockets, CNI config).
    pub dir: PathBuf,
    netns: Option<Netns>,
    daemon: Option<Child>,
    rt: tokio::runtime::Runtime,
    client: Option<RuntimeServiceClient<Channel>>,
    pods: HashMap<String, PodSandboxConfig>,
}

fn config(dir: &Path, bin_dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.opt"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "{PAUSE}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{}"
    conf_dir = "{d}/net.d"
"#,
        bin_dir.display()
    )
}

/// A docker-archive of the pause image: one busybox layer, entrypoint `sleep`.
fn pause_archive(dir: &Path) -> PathBuf {
    let work = dir.join("image");
    let rootfs = work.join("rootfs");
    busybox_rootfs(&rootfs, "pod page");
    let out = work.join("out");
    fs::create_dir_all(&out).expect("mkdir");
    sh(&format!("tar -C {} -cf {}/layer.tar .", rootfs.display(), out.display()));
    let diff = sh(&format!("sha256sum {}/layer.tar", out.display())).split_whitespace().next().unwrap_or_default().to_string();
    let cfg = json!({"architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Entrypoint": ["/bin/busybox", "sleep", "2147483647"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff}")]}});
    fs::write(out.join("config.json"), cfg.to_string()).expect("config");
    fs::write(out.join("manifest.json"), json!([{"Config": "config.json", "RepoTags": [PAUSE], "Layers": ["layer.tar"]}]).to_string())
        .expect("manifest");
    let tar = work.join("pause.tar");
    sh(&format!("tar -C {} -cf {} manifest.json config.json layer.tar", out.display(), tar.display()));
    tar
}

impl Node {
    /// Starts containerd for node `name` (in `netns`, else the calling netns) with
    /// `conflist` in its CNI conf_dir and the plugins of `bin_dir`, and imports the pause
    /// image.
    pub fn start(name: &str, netns: Option<&Netns>, bin_dir: &Path, conflist: &Value) -> Self {
        // The pid keeps the path unique across parallel tests, which share the pid
        // namespace: the shims are found by it at the end. (Under the test's private
        // /var/lib/berth: a node in a netns gets its own /run/berth and CNI state.)
        let dir = PathBuf::from(format!("/var/lib/berth/cri-{name}-{}", std::process::id()));
        fs::create_dir_all(dir.join("net.d")).expect("mkdir");
        for d in NODE_STATE {
            fs::create_dir_all(dir.join(d.1)).expect("mkdir");
        }
        fs::write(dir.join("config.toml"), config(&dir, bin_dir)).expect("config");
        fs::write(dir.join("net.d/10-berth.conflist"), serde_json::to_string_pretty(conflist).expect("json")).expect("conflist");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
        let mut node = Node { dir, netns: netns.cloned(), daemon: None, rt, client: None, pods: HashMap::new() };
        node.restart();
        let tar = pause_archive(&node.dir);
        node.ctr(&format!("images import {}", tar.display()));
        node
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// Runs `ctr` against this node's containerd, in the k8s.io namespace.
    pub fn ctr(&self, args: &str) -> String {
        sh(&format!("ctr -a {} -n k8s.io {args}", self.sock().display()))
    }

    /// (Re)starts containerd and connects to its CRI.
    pub fn restart(&mut self) {
        let log = fs::OpenOptions::new().create(true).append(true).open(self.dir.join("containerd.log")).expect("log");
        let config = self.dir.join("config.toml");
        let mut cmd = match &self.netns {
            Some(ns) => {
                // A mount namespace of its own, where the node's CNI and berth state are
                // bound from the node's directory. (Not `ip netns exec`: its fresh /sys
                // lacks the cgroup mounts runc needs.)
                let binds: String =
                    NODE_STATE.iter().map(|(at, sub)| format!("mount --bind {}/{sub} {at} && ", self.dir.display())).collect();
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.path().display()));
                c.args(["unshare", "-m", "--propagation", "private", "sh", "-c"]);
                c.arg(format!("{binds}exec containerd --config {}", config.display()));
                c
            }
            None => {
                let mut c = Command::new("containerd");
                c.arg("--config").arg(&config);
                c
            }
        };
        let child = cmd.stdout(Stdio::null()).stderr(log).spawn().expect("containerd is installed (apt-get install containerd runc)");
        self.daemon = Some(child);
        let path = self.sock();
        let start = Instant::now();
        loop {
            let p = path.clone();
            let connected = self.rt.block_on(async move {
                Endpoint::try_from("http://[::]:50051")
                    .expect("endpoint")
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let p = p.clone();
                        async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?)) }
                    }))
                    .await
            });
            if let Ok(ch) = connected {
                let mut client = RuntimeServiceClient::new(ch);
                let ready = self.rt.block_on(client.status(k8s_cri::v1::StatusRequest { verbose: false })).is_ok();
                if ready {
                    self.client = Some(client);
                    return;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(30), "containerd did not answer: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// containerd's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// SIGKILLs containerd (its shims and plugins it started live on).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            // Every wrapper execs the next, so the child is containerd itself.
            let _ = c.kill();
            let _ = c.wait();
        }
        self.client = None;
    }

    /// containerd's pid.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Child::id)
    }

    /// Runs `cmd` on the node as its plugins see it: in containerd's network and mount
    /// namespaces (the test's own for a node without a netns).
    pub fn sh(&self, cmd: &str) -> String {
        match (&self.netns, self.pid()) {
            (Some(_), Some(pid)) => sh(&format!("nsenter -t {pid} -n -m sh -c '{}'", cmd.replace('\'', "'\\''"))),
            _ => sh(cmd),
        }
    }

    fn client(&mut self) -> RuntimeServiceClient<Channel> {
        self.client.clone().expect("containerd is running")
    }

    /// RunPodSandbox for pod `name` with (hostPort, containerPort) TCP mappings and
    /// annotations, as kubelet sends it; the sandbox ID or the CRI's error.
    pub fn run_pod(&mut self, name: &str, ports: &[(u16, u16)], annotations: &[(&str, &str)]) -> Result<String, tonic::Status> {
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata { name: name.into(), uid: format!("uid-{name}"), namespace: "default".into(), attempt: 0 }),
            hostname: name.into(),
            port_mappings: ports
                .iter()
                .map(|(h, c)| PortMapping { protocol: 0, container_port: i32::from(*c), host_port: i32::from(*h), host_ip: String::new() })
                .collect(),
            annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        };
        let mut c = self.client();
        let id = self
            .rt
            .block_on(c.run_pod_sandbox(RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() }))?
            .into_inner()
            .pod_sandbox_id;
        self.pods.insert(id.clone(), config);
        Ok(id)
    }

    /// The pod's IP as the CRI reports it.
    pub fn pod_ip(&mut self, id: &str) -> String {
        let mut c = self.client();
        let s = self.rt.block_on(c.pod_sandbox_status(PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: false }));
        s.expect("PodSandboxStatus").into_inner().status.and_then(|s| s.network).map(|n| n.ip).unwrap_or_default()
    }

    /// Creates and starts a container of the pause image running `cmd` in pod `pod`.
    pub fn start_container(&mut self, pod: &str, name: &str, cmd: &[&str]) -> String {
        let sandbox_config = self.pods.get(pod).cloned();
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata { name: name.into(), attempt: 0 }),
            image: Some(ImageSpec { image: PAUSE.into(), ..Default::default() }),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let mut c = self.client();
        let id = self
            .rt
            .block_on(c.create_container(CreateContainerRequest { pod_sandbox_id: pod.into(), config: Some(config), sandbox_config }))
            .unwrap_or_else(|e| panic!("CreateContainer: {e}"))
            .into_inner()
            .container_id;
        self.rt
            .block_on(c.start_container(StartContainerRequest { container_id: id.clone() }))
            .unwrap_or_else(|e| panic!("StartContainer: {e}"));
        id
    }

    /// ExecSync in a container: (exit code, stdout + stderr).
    pub fn exec(&mut self, container: &str, cmd: &[&str]) -> (i32, String) {
        let mut c = self.client();
        let r = self
            .rt
            .block_on(c.exec_sync(ExecSyncRequest {
                container_id: container.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 10,
            }))
            .unwrap_or_else(|e| panic!("ExecSync: {e}"))
            .into_inner();
        (r.exit_code, format!("{}{}", String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr)))
    }

    /// StopPodSandbox then RemovePodSandbox, as kubelet does when a pod goes.
    pub fn remove_pod(&mut self, id: &str) -> Result<(), tonic::Status> {
        let mut c = self.client();
        self.rt.block_on(c.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id.into() }))?;
        self.rt.block_on(c.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id.into() }))?;
        self.pods.remove(id);
        Ok(())
    }

    /// The IDs of the sandboxes containerd knows.
    pub fn pods(&mut self) -> Vec<String> {
        let mut c = self.client();
        let r = self.rt.block_on(c.list_pod_sandbox(ListPodSandboxRequest { filter: None })).expect("ListPodSandbox");
        r.into_inner().items.into_iter().map(|p| p.id).collect()
    }
}

impl Drop for Node {
    /// Pods go as kubelet would remove them, then containerd and any shim it left.
    fn drop(&mut self) {
        if self.client.is_some() {
            for id in self.pods() {
                let _ = self.remove_pod(&id);
            }
        }
        self.kill();
        let _ = Command::new("pkill").args(["-9", "-f", &self.dir.display().to_string()]).status();
    }
}
