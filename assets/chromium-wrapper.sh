#!/bin/sh
# `chromium` inside a sandbox-deck sandbox. It runs the host's browser with this sandbox's
# own profile (bound at ~/.config/chromium), without a D-Bus session, in a window that fills
# the sandbox's display (Xvfb has no window manager to maximize it). Chromium's own sandbox
# stays on. This text is constant: the caller's arguments pass through "$@" untouched.
browser=${SANDBOX_DECK_BROWSER:?this sandbox has no browser: install chromium on the host}
unset DBUS_SESSION_BUS_ADDRESS
case ${SANDBOX_DECK_SCREEN:-} in
*x*)
    set -- --window-position=0,0 \
        "--window-size=${SANDBOX_DECK_SCREEN%x*},${SANDBOX_DECK_SCREEN#*x}" "$@"
    ;;
esac
# A --network proxy sandbox's browser asks the sandbox's proxy by name, as everything inside
# does (there is no other route): the same allowlist, and a held host waits for an answer.
case ${SANDBOX_DECK_PROXY:-} in
http://*) set -- "--proxy-server=$SANDBOX_DECK_PROXY" "$@" ;;
esac
exec "$browser" --no-first-run --no-default-browser-check --start-maximized "$@"
