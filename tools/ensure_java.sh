#!/usr/bin/env bash
# Make sure a Java runtime is there for Splink's Spark backend (linkage.backend: spark, and
# tests/test_linkage_spark.py): when `java` is missing, install Debian's default-jre-headless
# (Java 17 on Debian 12) with apt-get, as root or through sudo. Says what it did.
# Always exits 0: without Java the Spark test is skipped with the reason, and the config checks
# refuse backend: spark; nothing else needs Java.
set -uo pipefail

have_java() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then return 0; fi
  command -v java >/dev/null 2>&1
}

if have_java; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_java: no java and no apt-get; install a Java runtime (17 or newer) for the Spark backend" >&2
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "ensure_java: no java, and apt-get needs root (no password-less sudo); the Spark test will be skipped" >&2
  exit 0
fi

echo "ensure_java: no java found; installing default-jre-headless with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if "${as_root[@]}" apt-get update -qq >/dev/null &&
   "${as_root[@]}" apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null; then
  if have_java; then
    echo "ensure_java: installed $(java -version 2>&1 | head -n 1)" >&2
  else
    echo "ensure_java: default-jre-headless installed but java is still not on PATH" >&2
  fi
else
  echo "ensure_java: apt-get could not install default-jre-headless; the Spark test will be skipped" >&2
fi
exit 0
