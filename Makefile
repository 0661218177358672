# Installs cryptpilot under a prefix, and packs the same files into a Debian package.
#
#   make install [PREFIX=/usr/local] [DESTDIR=] [COMPAT_LINKS=1] [BIN=target/release/cryptpilot]
#   make uninstall [PREFIX=...] [DESTDIR=] 
#   make deb [BIN=...]          # target/deb/cryptpilot-rs_VERSION_ARCH.deb (PREFIX=/usr)
#
# Installed: the binary; the existing tool's names as links (cryptpilot-crypt,
# cryptpilot-fde-guest, cryptpilot-fde-host, cryptpilot-convert); man pages and bash, zsh and
# fish completions generated from the argument definitions by the binary itself; the systemd
# unit and the dracut module, their paths pointed at the installed binary. With
# COMPAT_LINKS=1, also the drop-in names cryptsetup, veritysetup and integritysetup in sbin,
# which replace cryptsetup's own: the Debian package leaves them out, so it does not conflict
# with Debian's cryptsetup-bin.
#
# BIN is built first when missing (cargo build --release); a static build
# (scripts/lib.sh build_static) suits initrds and minimal systems best.

PREFIX ?= /usr/local
DESTDIR ?=
BIN ?= target/release/cryptpilot
COMPAT_LINKS ?=

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' cli/Cargo.toml | head -n 1)
ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
CHANGELOG_DATE := $(shell LC_ALL=C date -u -R -d @$$(git log -1 --format=%ct 2>/dev/null || echo 0))

bindir := $(PREFIX)/bin
sbindir := $(PREFIX)/sbin
mandir := $(PREFIX)/share/man
bashdir := $(PREFIX)/share/bash-completion/completions
zshdir := $(PREFIX)/share/zsh/vendor-completions
fishdir := $(PREFIX)/share/fish/vendor_completions.d
unitdir := $(PREFIX)/lib/systemd/system
dracutdir := $(PREFIX)/lib/dracut/modules.d/91cryptpilot

NAMES := cryptpilot-crypt cryptpilot-fde-guest cryptpilot-fde-host cryptpilot-convert
COMPAT := cryptsetup veritysetup integritysetup

.PHONY: install uninstall deb

$(BIN):
	cargo build --release --locked -p cryptpilot

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(bindir)/cryptpilot
	for n in $(NAMES); do ln -sf cryptpilot $(DESTDIR)$(bindir)/$$n; done
	if [ -n "$(COMPAT_LINKS)" ]; then \
		install -d $(DESTDIR)$(sbindir); \
		for n in $(COMPAT); do ln -sf $(bindir)/cryptpilot $(DESTDIR)$(sbindir)/$$n; done; \
	fi
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		$(BIN) manpages "$$tmp" >/dev/null && \
		install -d $(DESTDIR)$(mandir)/man1 $(DESTDIR)$(mandir)/man8 && \
		install -m 0644 "$$tmp"/*.1 $(DESTDIR)$(mandir)/man1/ && \
		install -m 0644 "$$tmp"/*.8 $(DESTDIR)$(mandir)/man8/
	install -d $(DESTDIR)$(bashdir) $(DESTDIR)$(zshdir) $(DESTDIR)$(fishdir)
	$(BIN) completions bash > $(DESTDIR)$(bashdir)/cryptpilot
	$(BIN) completions zsh > $(DESTDIR)$(zshdir)/_cryptpilot
	$(BIN) completions fish > $(DESTDIR)$(fishdir)/cryptpilot.fish
	install -d $(DESTDIR)$(unitdir) $(DESTDIR)$(dracutdir)
	sed 's|/usr/bin/|$(bindir)/|g' dist/cryptpilot.service > $(DESTDIR)$(unitdir)/cryptpilot.service
	for f in dist/dracut/91cryptpilot/*; do \
		sed 's|/usr/bin/cryptpilot|$(bindir)/cryptpilot|g' "$$f" > $(DESTDIR)$(dracutdir)/$$(basename "$$f"); \
	done
	chmod 0755 $(DESTDIR)$(dracutdir)/module-setup.sh

uninstall:
	rm -f $(DESTDIR)$(bindir)/cryptpilot $(addprefix $(DESTDIR)$(bindir)/,$(NAMES))
	for n in $(COMPAT); do \
		[ "$$(readlink $(DESTDIR)$(sbindir)/$$n 2>/dev/null)" = "$(bindir)/cryptpilot" ] && rm -f $(DESTDIR)$(sbindir)/$$n || true; \
	done
	rm -f $(DESTDIR)$(mandir)/man1/cryptpilot*.1 $(DESTDIR)$(mandir)/man8/cryptpilot*.8
	rm -f $(DESTDIR)$(bashdir)/cryptpilot $(DESTDIR)$(zshdir)/_cryptpilot $(DESTDIR)$(fishdir)/cryptpilot.fish
	rm -f $(DESTDIR)$(unitdir)/cryptpilot.service
	rm -rf $(DESTDIR)$(dracutdir)

deb: $(BIN)
	rm -rf target/deb/root && mkdir -p target/deb/root/DEBIAN
	$(MAKE) --no-print-directory install PREFIX=/usr DESTDIR=$(CURDIR)/target/deb/root COMPAT_LINKS= BIN=$(BIN)
	# Debian's policy: compressed man pages, a copyright file and a changelog (reproducible:
	# dated by the last commit), lintian's override for the static PIE.
	gzip -9n target/deb/root/usr/share/man/man*/*.[18]
	install -D -m 0644 dist/debian/copyright target/deb/root/usr/share/doc/cryptpilot-rs/copyright
	printf '%s\n' \
		'cryptpilot-rs ($(VERSION)) unstable; urgency=medium' '' \
		'  * Release $(VERSION).' '' \
		" -- cryptpilot-rs developers <cryptpilot-rs@example.invalid>  $(CHANGELOG_DATE)" \
		| gzip -9n > target/deb/root/usr/share/doc/cryptpilot-rs/changelog.gz
	chmod 0644 target/deb/root/usr/share/doc/cryptpilot-rs/changelog.gz
	install -D -m 0644 dist/debian/lintian-overrides target/deb/root/usr/share/lintian/overrides/cryptpilot-rs
	printf '%s\n' \
		'Package: cryptpilot-rs' \
		'Version: $(VERSION)' \
		'Architecture: $(ARCH)' \
		'Maintainer: cryptpilot-rs developers <cryptpilot-rs@example.invalid>' \
		'Section: admin' \
		'Priority: optional' \
		"Installed-Size: $$(du -sk target/deb/root/usr | cut -f1)" \
		'Homepage: https://example.invalid/cryptpilot-rs' \
		'Description: LUKS2 and device-mapper disk encryption without libcryptsetup' \
		' cryptpilot formats, opens and manages LUKS2 volumes, dm-verity and' \
		' dm-integrity devices, data volumes with keys from key providers (Trustee' \
		' KBS, cloud KMS) and full-disk protection for confidential VMs, in one' \
		' binary with no C crypto library. It also answers to cryptsetup,' \
		' veritysetup and integritysetup command lines (see' \
		' cryptpilot-cryptsetup(8)); this package does not install those names.' \
		> target/deb/root/DEBIAN/control
	cd target/deb/root && find usr -type f -exec md5sum {} + | LC_ALL=C sort -k2 > DEBIAN/md5sums
	dpkg-deb --root-owner-group --build target/deb/root target/deb/cryptpilot-rs_$(VERSION)_$(ARCH).deb
