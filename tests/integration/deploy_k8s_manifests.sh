#!/bin/bash
# Promise: deploy/k8s's manifests are valid Kubernetes objects (checked
# offline against the API's OpenAPI schema, release 1.36, strict about
# unknown fields) and consistent with each other: the sidecar's --replica is
# the debug replica's Service, the Services select pods and ports that exist,
# the checkpoint Job's account may create nodes/checkpoint, the debug pod runs
# the image the Job builds. The validator proves it catches nine kinds of
# breakage. The Containerfile's runtime stage installs every library doppel
# links. No cluster is involved (deploy/k8s/README.md says what was not run).
. "$(dirname "$0")/lib.sh"
K8S=$(cd "$HERE/../../deploy/k8s" && pwd)
$PY -c 'import yaml' 2>/dev/null || fail "python3-yaml is missing (Debian package python3-yaml, in deploy/install.sh)"
$PY "$HERE/../k8s/validate_manifests.py" "$HERE/../k8s/k8s-openapi-subset.json" "$K8S"/*.yaml --self-test \
	>"$T/validate.log" 2>&1
rc=$?
cat "$T/validate.log"
[ "$rc" = 0 ] || fail "the manifests do not validate"
grep -q '^self-test: 9 deliberate breaks, 9 reported$' "$T/validate.log" || fail "the validator missed a deliberate break"

# The runtime image must hold every library the binary needs.
runtime=$(sed -n '/^FROM .*bookworm-slim/,$p' "$K8S/Containerfile")
for lib in $(readelf -d "$DOPPEL" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
	case $lib in libc.so.* | libm.so.* | libasan.so.* | libubsan.so.*) continue ;; esac
	pkg=$(dpkg -S "*/$lib" 2>/dev/null | head -1 | cut -d: -f1)
	[ -n "$pkg" ] || fail "no Debian package provides $lib"
	grep -qw -- "$pkg" <<<"$runtime" || fail "Containerfile's runtime stage lacks $pkg (for $lib)"
	log "Containerfile installs $pkg for $lib"
done
log "PASS"
