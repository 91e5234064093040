#!/bin/bash
# install.sh - install what doppel needs on Debian bookworm, build it, and
# optionally run the demo or every test. Idempotent: a second run only checks.
#
#   deploy/install.sh            install packages, CRIU >= 4.2, build build/cli/doppel and
#                                install it (/usr/local: doppel, doppel.1, bash completion)
#   deploy/install.sh --demo     ... then run the guided demo (`doppel demo`: a real bug
#                                found on a live clone; `doppel demo --redis`: deploy/demo.sh)
#   deploy/install.sh --test     ... then build with ASan+UBSan and run every test (ctest)
#
# Run as root. Needs Debian's package mirrors (apt) and nothing else.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-install}
CACHE=${DOPPEL_CACHE:-/var/cache/doppel}
CRIU_MIN=4.2

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

case $MODE in
install | --demo | --test | --build-only) ;;
-h | --help)
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown option '$MODE' (use --demo, --test or nothing)" ;;
esac
[ "$(id -u)" -eq 0 ] || die "run as root: doppel installs packages, makes namespaces and runs CRIU"
command -v apt-get >/dev/null || die "this script is for Debian (apt-get not found)"

PACKAGES=(
	# build
	gcc make cmake pkg-config libevent-dev libxxhash-dev libcmocka-dev clang libelf-dev
	libjansson-dev clang-format
	# divergence masks (PCRE2), doppel record/replay and window --arrivals (libpcap)
	libpcre2-dev libpcap-dev
	# TLS termination (--tls-cert) and re-encryption (--tls-backend); the openssl
	# command makes the tests' certificates and drives s_client/s_time
	libssl-dev openssl
	# fuzzing the trace parsers (clang's libFuzzer runtime)
	libclang-rt-14-dev
	# tracers and viewers the `doppel trace` tests and benchmarks run
	uftrace babeltrace2 librsvg2-bin bc
	# services and clients the demo and the tests drive
	redis-server redis-tools nginx-light haproxy wrk curl python3 python3-redis
	mariadb-server mariadb-client
	iproute2 procps psmisc util-linux strace gdb
	# deployment checks: systemd-analyze verify on the units, the Kubernetes
	# manifests parsed for validation, the status page driven in headless Chromium
	systemd python3-yaml chromium chromium-driver
	# debug-window validation: captures of real arrivals, charts rendered in the tests;
	# tshark reads back every capture doppel records
	tcpdump librsvg2-bin tshark
	# CRIU build dependencies (recipe in docs/criu.md) and its runtime tools
	libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler libnl-3-dev
	libnet1-dev libcap-dev libbsd-dev uuid-dev libaio-dev python3-protobuf iptables
	xz-utils dpkg-dev patch
)

install_packages() {
	local missing=()
	for p in "${PACKAGES[@]}"; do
		[ "${p:0:1}" = "#" ] && continue
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "packages: all present"
		return
	fi
	say "packages: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# tshark: do not ask whether non-root users may capture (they may not)
	echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

criu_ok() {
	local c=$1 v
	[ -x "$c" ] || return 1
	v=$("$c" --version 2>/dev/null | awk '/^Version:/{print $2}')
	[ -n "$v" ] || return 1
	[ "$(printf '%s\n%s\n' "$CRIU_MIN" "$v" | sort -V | head -1)" = "$CRIU_MIN" ] || return 1
	"$c" check >/dev/null 2>&1
}

# Can CRIU tell which pages changed since a pre-dump? Soft-dirty where the
# kernel has it, else the written bit (deploy/criu/track-written.patch).
criu_tracks() {
	"$1" check --feature mem_dirty_track >/dev/null 2>&1 || "$1" --help 2>&1 | grep -q -- --track-written
}

# The patches doppel applies to the CRIU it builds, as one checksum.
criu_patches_sum() { cat "$ROOT"/deploy/criu/*.patch | sha256sum | cut -c1-16; }

# CRIU >= 4.2 built from Debian sid's source package (bookworm's 3.17 fails
# `criu check` on recent kernels, and 4.1 cannot dump sockets on >= 6.16),
# with deploy/criu/*.patch applied (--track-written: pre-dump on kernels
# without soft-dirty). The build is cached in $CACHE, keyed by the patches.
install_criu() {
	local have
	have=$(command -v criu || true)
	# A CRIU of the system's own that does the job is kept; ours is kept up to
	# date with deploy/criu/*.patch.
	if [ -n "$have" ] && [ "$have" != /usr/local/sbin/criu ] && criu_ok "$have" && criu_tracks "$have"; then
		say "criu: $("$have" --version | awk '/^Version:/{print $2}') at $have passes 'criu check' and tracks dirty pages"
		return
	fi
	mkdir -p "$CACHE"
	local cached sum
	sum=$(criu_patches_sum)
	cached=$(ls -d "$CACHE"/criu-*/criu/criu 2>/dev/null | sort -V | tail -1 || true)
	if [ -n "$cached" ] && [ "$(cat "${cached%/criu/criu}/.doppel-patches" 2>/dev/null)" != "$sum" ]; then
		cached= # built before the current patches
	fi
	if [ -n "$cached" ] && cmp -s "$cached" /usr/local/sbin/criu && criu_ok /usr/local/sbin/criu; then
		say "criu: $(/usr/local/sbin/criu --version | awk '/^Version:/{print $2}') at /usr/local/sbin/criu is the cached build with the current patches"
		return
	fi
	if [ -z "$cached" ] || ! criu_ok "$cached"; then
		say "criu: building >= $CRIU_MIN from Debian sid's source package with doppel's patches (about a minute)"
		local tarball
		tarball=$(ls "$CACHE"/criu_*.orig.tar.xz 2>/dev/null | sort -V | tail -1 || true)
		if [ -z "$tarball" ]; then
			local src=/etc/apt/sources.list.d/doppel-sid-src.sources uri
			uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
			[ -n "$uri" ] || uri=http://deb.debian.org/debian
			trap 'rm -f "$src"; apt-get update -qq || true' EXIT
			cat >"$src" <<EOF
Types: deb-src
URIs: $uri
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
			apt-get update -qq
			(cd "$CACHE" && rm -f criu_*.orig.tar.xz criu_*.dsc &&
				apt-get source --download-only criu/sid >/dev/null 2>&1 || true)
			rm -f "$src"
			trap - EXIT
			apt-get update -qq
			tarball=$(ls "$CACHE"/criu_*.orig.tar.xz 2>/dev/null | sort -V | tail -1 || true)
			[ -n "$tarball" ] || die "could not download CRIU's source from Debian sid ($uri); check the mirror"
		fi
		local dir
		dir="$CACHE/$(tar -tf "$tarball" | sed -n 1p | cut -d/ -f1)"
		rm -rf "$dir"
		tar -C "$CACHE" -xf "$tarball"
		: >"$CACHE/criu-build.log"
		for p in "$ROOT"/deploy/criu/*.patch; do
			patch -d "$dir" -p1 -s <"$p" >>"$CACHE/criu-build.log" 2>&1 ||
				die "$(basename "$p") does not apply to $(basename "$dir"); see $CACHE/criu-build.log"
		done
		make -C "$dir" -j"$(nproc)" criu >>"$CACHE/criu-build.log" 2>&1 ||
			die "building CRIU failed; see $CACHE/criu-build.log"
		cached="$dir/criu/criu"
		criu_ok "$cached" || die "the CRIU just built fails 'criu check': $("$cached" check 2>&1 | tail -3)"
		echo "$sum" >"$dir/.doppel-patches"
	else
		say "criu: using the cached build $cached"
	fi
	install -m 0755 "$cached" /usr/local/sbin/criu
	hash -r
	criu_ok /usr/local/sbin/criu || die "/usr/local/sbin/criu fails 'criu check'"
	command -v criu | grep -qx /usr/local/sbin/criu ||
		say "criu: warning: $(command -v criu) comes before /usr/local/sbin/criu in PATH; doppel runs the first one it finds unless told --criu /usr/local/sbin/criu"
	say "criu: $(/usr/local/sbin/criu --version | awk '/^Version:/{print $2}') installed at /usr/local/sbin/criu$(/usr/local/sbin/criu check --feature mem_written_track >/dev/null 2>&1 && echo '; it tracks written pages where soft-dirty is missing')"
}

build() {
	local dir=$1; shift
	say "building doppel in $dir"
	cmake -S "$ROOT" -B "$ROOT/$dir" -DDOPPEL_WERROR=ON "$@" >/dev/null
	cmake --build "$ROOT/$dir" -j"$(nproc)" >/dev/null
}

# The tree must match .clang-format; CI fails on the first file that does not.
check_format() {
	say "checking the C sources against .clang-format"
	local bad
	bad=$(cd "$ROOT" && git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror 2>&1 |
		grep -o '^[^:]*\.[ch]:' | sort -u | tr -d ':' || true)
	[ -z "$bad" ] || die "these files differ from .clang-format (run clang-format -i on them): $bad"
}

install_packages
install_criu
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
say "doppel: $ROOT/build/cli/doppel ($("$ROOT/build/cli/doppel" version))"
# bin/doppel, the man page doppel.1, bash completion, the systemd units, the
# Kubernetes manifests and the demo, under /usr/local.
cmake --install "$ROOT/build" >/dev/null
command -v mandb >/dev/null && mandb -q 2>/dev/null || true
say "installed /usr/local/bin/doppel, man doppel, bash completion, /usr/local/share/doppel/{systemd,k8s}"

case $MODE in
--demo)
	exec "$ROOT/build/cli/doppel" demo
	;;
--test)
	check_format
	build build-ci -DCMAKE_BUILD_TYPE=Debug -DDOPPEL_SANITIZE=ON
	say "running every test (ctest, ASan+UBSan build)"
	cd "$ROOT/build-ci"
	exec ctest --output-on-failure --timeout 600
	;;
esac
