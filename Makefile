# Build and install berth: `make && sudo make install`, `sudo make uninstall`.
# DESTDIR stages the install (packaging); PREFIX, CNIBINDIR, ... move its parts.
# PROFILE=debug installs the debug build (what the tests do).

PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man/man1
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
UNITDIR     ?= $(PREFIX)/lib/systemd/system
CNIBINDIR   ?= /opt/cni/bin
CNICONFDIR  ?= /etc/cni/net.d
PROFILE     ?= release
CARGO       ?= cargo

OUT      ?= target/$(PROFILE)
# Release plugins are linked statically: a runtime execs one per plugin per operation,
# and a static one starts ~0.3 ms sooner (no loader, no libgcc_s). Against musl where
# rustup has its target (`rustup target add x86_64-unknown-linux-musl`): a static musl
# plugin starts another ~0.25 ms sooner, as glibc's start-up asks the CPU about itself
# with ~40 CPUID instructions, each a VM exit under virtualisation (3.6 µs here); else
# against glibc (crt-static). Proc-macros cannot be built static, so this takes a
# --target build with its own output directory. STATIC_PLUGINS=0 installs the
# dynamically linked ones from $(OUT).
# rustc's host triple; under sudo without cargo on PATH, the usual glibc one.
HOST     := $(or $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p'),$(shell uname -m)-unknown-linux-gnu)
MUSL     := $(subst -linux-gnu,-linux-musl,$(HOST))
# The musl target installed, or (`sudo make install` without rustc) a musl build made.
HAVE_MUSL := $(or $(shell [ -d "$$(rustc --print sysroot 2>/dev/null)/lib/rustlib/$(MUSL)/lib" ] && echo 1),$(wildcard target/$(MUSL)/release/bridge))
PLUGTARGET := $(if $(HAVE_MUSL),$(MUSL),$(HOST))
STATIC_PLUGINS ?= $(if $(and $(filter release,$(PROFILE)),$(findstring -linux-gnu,$(HOST))),1,0)
PLUGOUT  := $(if $(filter 1,$(STATIC_PLUGINS)),target/$(PLUGTARGET)/release,$(OUT))
BINS     := berth netd
PLUGINS  := bridge host-local portmap firewall tuning loopback static macvlan host-device tap dummy ipvlan vlan ptp dhcp bandwidth sbr vrf
CONFLIST := 87-berth.conflist
# What `install` put in the CNI config directory, so `uninstall` removes only that.
MARKER   := $(DESTDIR)$(PREFIX)/share/berth/installed-conflist

.PHONY: all build plugins plugin-dir man completions install uninstall check

all: build

build: plugins
	$(CARGO) build --workspace $(if $(filter release,$(PROFILE)),--release)

plugins:
ifeq ($(STATIC_PLUGINS),1)
	RUSTFLAGS="$$RUSTFLAGS -C target-feature=+crt-static" $(CARGO) build --release -p berth-cni --bins --target $(PLUGTARGET)
else
	$(CARGO) build -p berth-cni --bins $(if $(filter release,$(PROFILE)),--release)
endif

# Where `install` takes the plugins from (the benchmarks run those).
plugin-dir:
	@echo $(PLUGOUT)

man: build
	$(OUT)/berth __man $(OUT)/man

check:
	@for b in $(addprefix $(OUT)/,$(BINS)) $(addprefix $(PLUGOUT)/,$(PLUGINS)); do \
	  [ -x $$b ] || { echo "$$b is missing: run make (or make PROFILE=$(PROFILE) build) first" >&2; exit 1; }; \
	done

install: check
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(CNIBINDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR) $(DESTDIR)$(PREFIX)/share/berth
	install -m 755 $(addprefix $(OUT)/,$(BINS)) $(DESTDIR)$(BINDIR)/
	install -m 755 $(addprefix $(PLUGOUT)/,$(PLUGINS)) $(DESTDIR)$(CNIBINDIR)/
	$(OUT)/berth __man $(DESTDIR)$(MANDIR)
	$(OUT)/berth completion bash > $(DESTDIR)$(BASHCOMPDIR)/berth
	$(OUT)/berth completion zsh > $(DESTDIR)$(ZSHCOMPDIR)/_berth
	$(OUT)/berth completion fish > $(DESTDIR)$(FISHCOMPDIR)/berth.fish
	sed 's|/usr/local/bin/netd|$(BINDIR)/netd|' daemon/server/netd.service > $(DESTDIR)$(UNITDIR)/netd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/netd.service
	@# A default network for CNI runtimes, only where none is configured.
	@if [ -n "$$(find $(DESTDIR)$(CNICONFDIR) -maxdepth 1 \( -name '*.conf' -o -name '*.conflist' -o -name '*.json' \) 2>/dev/null)" ]; then \
	  echo "$(CNICONFDIR) already has a network configuration: left as it is"; \
	else \
	  install -d $(DESTDIR)$(CNICONFDIR) && install -m 644 plugins/$(CONFLIST) $(DESTDIR)$(CNICONFDIR)/ && \
	  echo $(CNICONFDIR)/$(CONFLIST) > $(MARKER); \
	fi

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(BINS)) $(addprefix $(DESTDIR)$(CNIBINDIR)/,$(PLUGINS))
	rm -f $(DESTDIR)$(MANDIR)/berth.1 $(DESTDIR)$(MANDIR)/berth-*.1
	rm -f $(DESTDIR)$(BASHCOMPDIR)/berth $(DESTDIR)$(ZSHCOMPDIR)/_berth $(DESTDIR)$(FISHCOMPDIR)/berth.fish
	rm -f $(DESTDIR)$(UNITDIR)/netd.service
	@if [ -f $(MARKER) ]; then rm -f $(DESTDIR)$$(cat $(MARKER)) $(MARKER); fi
	-rmdir $(DESTDIR)$(PREFIX)/share/berth 2>/dev/null
	@# A staged tree is left empty; a real one keeps its shared directories.
	@if [ -n "$(DESTDIR)" ]; then find $(DESTDIR) -mindepth 1 -depth -type d -empty -delete; fi
