# shellcheck shell=bash
# A throwaway SoftHSM2 token for the HSM tests, in a temporary folder.
#
# Sourced by .ci/run: installs SoftHSM2 if missing, initialises a token,
# exports SOFTHSM2_CONF and KEYMGMT_TEST_PKCS11_{MODULE,TOKEN,PIN,SO_PIN},
# adds "hsm" to KEYMGMT_CI_EXTRAS and registers the clean-up in cleanup_hooks.
#
# Locally: `eval "$(bash .ci/services/softhsm.sh)"` prints the export lines
# (KEYMGMT_TEST_PKCS11_STOP removes the token folder).

_km_hsm_start() {
    if ! command -v softhsm2-util >/dev/null 2>&1; then
        echo "softhsm.sh: installing SoftHSM2" >&2
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >&2
    fi
    local module="" candidate
    for candidate in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so \
        /usr/local/lib/softhsm/libsofthsm2.so; do
        if [ -e "$candidate" ]; then
            module=$candidate
            break
        fi
    done
    [ -n "$module" ] || { echo "softhsm.sh: libsofthsm2.so not found" >&2; return 1; }
    local dir
    dir=$(mktemp -d /tmp/keymgmt-hsm.XXXXXX)
    mkdir "$dir/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
        "$dir/tokens" >"$dir/softhsm2.conf"
    KM_HSM_CONF="$dir/softhsm2.conf"
    KM_HSM_MODULE=$module
    KM_HSM_TOKEN=keymgmt-test
    KM_HSM_PIN=$(python3 -c 'import secrets; print(secrets.token_hex(8))')
    KM_HSM_SO_PIN=$(python3 -c 'import secrets; print(secrets.token_hex(8))')
    SOFTHSM2_CONF=$KM_HSM_CONF softhsm2-util --init-token --free --label "$KM_HSM_TOKEN" \
        --pin "$KM_HSM_PIN" --so-pin "$KM_HSM_SO_PIN" >/dev/null ||
        { echo "softhsm.sh: cannot initialise the token" >&2; return 1; }
    KM_HSM_STOP="rm -rf $dir"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    _km_hsm_start
    printf 'export SOFTHSM2_CONF=%q\n' "$KM_HSM_CONF"
    printf 'export KEYMGMT_TEST_PKCS11_MODULE=%q\n' "$KM_HSM_MODULE"
    printf 'export KEYMGMT_TEST_PKCS11_TOKEN=%q\n' "$KM_HSM_TOKEN"
    printf 'export KEYMGMT_TEST_PKCS11_PIN=%q\n' "$KM_HSM_PIN"
    printf 'export KEYMGMT_TEST_PKCS11_SO_PIN=%q\n' "$KM_HSM_SO_PIN"
    printf 'export KEYMGMT_TEST_PKCS11_STOP=%q\n' "$KM_HSM_STOP"
else
    _km_hsm_start
    export SOFTHSM2_CONF=$KM_HSM_CONF
    export KEYMGMT_TEST_PKCS11_MODULE=$KM_HSM_MODULE
    export KEYMGMT_TEST_PKCS11_TOKEN=$KM_HSM_TOKEN
    export KEYMGMT_TEST_PKCS11_PIN=$KM_HSM_PIN
    export KEYMGMT_TEST_PKCS11_SO_PIN=$KM_HSM_SO_PIN
    cleanup_hooks+=("$KM_HSM_STOP")
    export KEYMGMT_CI_EXTRAS="${KEYMGMT_CI_EXTRAS:+$KEYMGMT_CI_EXTRAS,}hsm"
    echo "== SoftHSM2 token $KEYMGMT_TEST_PKCS11_TOKEN ($KEYMGMT_TEST_PKCS11_MODULE)"
fi
unset -f _km_hsm_start
unset KM_HSM_CONF KM_HSM_MODULE KM_HSM_TOKEN KM_HSM_PIN KM_HSM_SO_PIN KM_HSM_STOP
