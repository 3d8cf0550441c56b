#!/usr/bin/env bash
# Installs what android_demo/check.sh needs on Debian, when it is missing:
#   kotlin                 kotlinc (Debian ships 1.3.31) and kotlin-stdlib.jar
#   aapt                   the v1 Android Asset Packaging Tool (Debian has no aapt2)
#   android-framework-res  framework-res.apk, the platform resources aapt links against
#   libandroid-json-java   Android's own org.json, for the harness on the JVM
# A JDK (javac) is already there for the Python toolchain's CI image; it is installed too
# when absent. Needs root (CI runs as root) and the Debian archive.
set -euo pipefail

wanted=()
command -v kotlinc >/dev/null && [ -f /usr/share/java/kotlin-stdlib.jar ] || wanted+=(kotlin)
command -v aapt >/dev/null || wanted+=(aapt)
[ -f /usr/share/android-framework-res/framework-res.apk ] || wanted+=(android-framework-res)
[ -f /usr/share/java/com.android.json.jar ] || wanted+=(libandroid-json-java)
command -v javac >/dev/null || wanted+=(default-jdk-headless)

if [ ${#wanted[@]} -eq 0 ]; then
  echo "android_deps.sh: kotlinc, aapt, framework-res.apk, org.json and javac are installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "android_deps.sh: need root to install ${wanted[*]} (apt-get)" >&2
  exit 1
fi
echo "android_deps.sh: installing ${wanted[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
command -v kotlinc >/dev/null && command -v aapt >/dev/null && command -v javac >/dev/null
