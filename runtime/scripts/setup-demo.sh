#!/usr/bin/env bash
# Sets berth up on a fresh Debian 12 and runs the demo: a detached web server published
# with -p 4000:80, answered on 127.0.0.1:4000. Run as root from a checkout. Needs a Rust
# toolchain (rustup); everything else comes from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/../.."

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends iptables nftables iproute2 procps busybox-static curl libseccomp-dev pkg-config make >/dev/null

make build CARGO="cargo --quiet"
make install

# A busybox image made from busybox-static, serving /www.
root=$(mktemp -d)
mkdir -p "$root/bin" "$root/www" "$root/etc" "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list | grep -vx busybox); do ln -s busybox "$root/bin/$applet"; done
echo "hello from a berth container" > "$root/www/index.html"
tar -C "$root" -cf /tmp/busybox-rootfs.tar .
rm -rf "$root"
berth import /tmp/busybox-rootfs.tar busybox

# The demo.
berth rm -f web >/dev/null 2>&1 || true
berth run -d --name web -p 4000:80 busybox httpd -f -p 80 -h /www
for _ in $(seq 50); do curl -s --max-time 1 http://127.0.0.1:4000/ && exit 0; sleep 0.1; done
echo "no answer on 127.0.0.1:4000" >&2
exit 1
