#!/usr/bin/env bash
# Checks the Android demo on a machine without the Android SDK (CI, a laptop):
#   1. links the app's manifest and res/ with aapt (v1) against the Android platform's
#      framework-res.apk, which resolves every @android: and ?android: reference and every
#      attribute, and generates R.java;
#   2. compiles the Java stand-ins in stubs/ (the Android and LiteRT classes and methods
#      the app calls, with their real signatures) together with R.java;
#   3. compiles every Kotlin source of the app, plus jvmcheck/Harness.kt, against them,
#      warnings as errors, in a single kotlinc run.
# What it cannot check: the Gradle build itself, the stubs' faithfulness beyond what they
# declare, and anything at run time on a phone. See README.md.
#
# Usage: android_demo/check.sh [--resources-only] [OUT_DIR]   (default android_demo/build/check)
#   --resources-only: step 1 only (needs aapt and framework-res.apk, not kotlinc).
# Leaves OUT_DIR/classes (app + harness), OUT_DIR/stubs, OUT_DIR/resources.ap_ and
# OUT_DIR/harness-classpath.txt (the classpath that runs the harness: no Android classes).
# Tools: .ci/android_deps.sh installs them on Debian.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
resources_only=0
if [ "${1:-}" = "--resources-only" ]; then
  resources_only=1
  shift
fi
out="$(mkdir -p "${1:-$here/build/check}" && cd "${1:-$here/build/check}" && pwd)"
framework_res=/usr/share/android-framework-res/framework-res.apk
json_jar=/usr/share/java/com.android.json.jar
kotlin_stdlib=/usr/share/java/kotlin-stdlib.jar
namespace=org.mobileenhance.demo
min_sdk=24

missing=()
if [ "$resources_only" = 1 ]; then tools=(aapt); files=("$framework_res"); else
  tools=(aapt javac kotlinc); files=("$framework_res" "$json_jar" "$kotlin_stdlib"); fi
for tool in "${tools[@]}"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
for file in "${files[@]}"; do [ -f "$file" ] || missing+=("$file"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "check.sh: missing ${missing[*]}; run .ci/android_deps.sh (Debian: kotlin aapt android-framework-res libandroid-json-java)" >&2
  exit 3
fi

rm -rf "$out/gen" "$out/stubs" "$out/classes" "$out/AndroidManifest.xml" "$out/resources.ap_"
mkdir -p "$out/gen" "$out/stubs" "$out/classes"

echo "check.sh: aapt2 is not packaged for Debian and android.jar is not available; resources are linked with aapt (v1) against framework-res.apk instead"
# AGP writes the namespace into the merged manifest as its package; do the same here.
sed "s|<manifest xmlns:android=\"http://schemas.android.com/apk/res/android\">|<manifest xmlns:android=\"http://schemas.android.com/apk/res/android\" package=\"$namespace\">|" \
  "$here/app/src/main/AndroidManifest.xml" >"$out/AndroidManifest.xml"
grep -q "package=\"$namespace\"" "$out/AndroidManifest.xml" || {
  echo "check.sh: $here/app/src/main/AndroidManifest.xml: expected a plain <manifest xmlns:android=...> opening tag to add the package to" >&2
  exit 1
}
aapt package -f -m --min-sdk-version "$min_sdk" \
  -M "$out/AndroidManifest.xml" -S "$here/app/src/main/res" -I "$framework_res" \
  -J "$out/gen" -F "$out/resources.ap_"
echo "check.sh: resources linked: $out/resources.ap_"
if [ "$resources_only" = 1 ]; then
  echo "check.sh: OK (resources only)"
  exit 0
fi

mapfile -t stubs < <(find "$here/stubs" -name '*.java' | sort)
javac --release 8 -nowarn -d "$out/stubs" "${stubs[@]}" "$out/gen/${namespace//.//}/R.java"
echo "check.sh: ${#stubs[@]} stub classes and R.java compiled"

mapfile -t sources < <(find "$here/app/src/main/java" "$here/jvmcheck" -name '*.kt' | sort)
start=$(date +%s)
set +e
kotlinc -Werror -cp "$out/stubs:$json_jar" -d "$out/classes" "${sources[@]}" 2>&1 | { grep -v 'Options -Xverify:none and -noverify were deprecated' || true; }
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "check.sh: kotlinc failed (status $status)" >&2
  exit "$status"
fi
echo "check.sh: ${#sources[@]} Kotlin files compiled in $(( $(date +%s) - start )) s"
echo "$out/classes:$kotlin_stdlib:$json_jar" >"$out/harness-classpath.txt"
echo "check.sh: OK"
