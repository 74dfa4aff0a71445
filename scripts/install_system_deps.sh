#!/usr/bin/env bash
# System packages the compendium needs: ffmpeg + mediainfo (audio tracks of FLV/MP4/webm), chromium + its driver
# (the browser test of the live demo), PortAudio (microphone), libGL + GLib (OpenCV windows).
# On Debian and Ubuntu (and systems like them) this installs the missing ones with apt-get, as root or through
# sudo. Anywhere else it prints what to install and with which tool, and exits 0 so `make setup` goes on.
# EMOTION_OS_RELEASE names the os-release file to read (default /etc/os-release).
set -euo pipefail
os_release="${EMOTION_OS_RELEASE:-/etc/os-release}"
packages=(ffmpeg mediainfo chromium chromium-driver libportaudio2 libgl1 libglib2.0-0)

is_debian_like() {
    command -v apt-get >/dev/null 2>&1 || return 1
    [ -r "$os_release" ] || return 1
    local word
    # shellcheck disable=SC1090  # os-release is shell variable assignments by specification
    for word in $(. "$os_release" && echo "${ID:-} ${ID_LIKE:-}"); do
        case "$word" in debian | ubuntu) return 0 ;; esac
    done
    return 1
}

is_installed() {  # Debian's 64-bit time_t transition renamed some libraries (libglib2.0-0 -> libglib2.0-0t64)
    local name
    for name in "$1" "$1t64"; do
        [ "$(dpkg-query -W -f='${Status}' "$name" 2>/dev/null)" = "install ok installed" ] && return 0
    done
    return 1
}

print_instructions() {
    local system
    system="$(uname -s 2>/dev/null || echo unknown)"
    echo "Not a Debian or Ubuntu system with apt-get ($system): install these yourself, then re-run make."
    echo "  needed: ffmpeg, mediainfo, PortAudio"
    echo "  browser test only: chromium and chromedriver (the test drives /usr/bin/chromium and skips without it)"
    case "$system" in
        Darwin) echo "  macOS (Homebrew): brew install ffmpeg media-info portaudio" ;;
        MINGW* | MSYS* | CYGWIN*) echo "  Windows: use WSL with Ubuntu and run this script there" ;;
        *) echo "  Linux: your distribution's package manager (e.g. ffmpeg, mediainfo, portaudio)" ;;
    esac
    echo "  Any system with conda: environment.yml installs ffmpeg, mediainfo and portaudio from conda-forge."
}

if ! is_debian_like; then
    print_instructions
    exit 0
fi
missing=()
for package in "${packages[@]}"; do
    is_installed "$package" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
else
    echo "Not root and no sudo: as root, run  apt-get install --no-install-recommends ${missing[*]}"
    exit 0
fi
echo "Installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
