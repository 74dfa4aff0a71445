#!/usr/bin/env bash
# Debian packages the compendium needs: ffmpeg + mediainfo (audio tracks of FLV/MP4/webm), chromium (the
# browser test of the live demo), libportaudio2 (microphone), libgl1 + libglib2.0-0 (OpenCV windows).
set -euo pipefail
packages=(ffmpeg mediainfo chromium chromium-driver libportaudio2 libgl1 libglib2.0-0)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "Installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
