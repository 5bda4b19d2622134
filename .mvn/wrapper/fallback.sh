#!/bin/sh
# Called by ./mvnw when the Maven distribution cannot be downloaded from Apache's release archive (CI machines reach
# only the Maven repository). The distribution is itself an artifact, org.apache.maven:apache-maven:VERSION:zip:bin,
# so a system `mvn` fetches it from the repository it is configured for, and we unpack it where the wrapper looks.
#   fallback.sh apache-maven-VERSION MAVEN_HOME
set -eu
main="$1"           # apache-maven-3.9.9
home="$2"           # ~/.m2/wrapper/dists/apache-maven-3.9.9/<hash of the distribution URL>
version="${main#apache-maven-}"
command -v mvn >/dev/null || { echo "fallback.sh: no system mvn to fetch Maven $version with" >&2; exit 1; }
command -v unzip >/dev/null || { echo "fallback.sh: unzip is needed to unpack Maven $version" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
echo "fallback.sh: fetching Maven $version as the artifact org.apache.maven:apache-maven:$version:zip:bin" >&2
(cd "$tmp" && mvn -q -B dependency:copy -Dartifact="org.apache.maven:apache-maven:$version:zip:bin" \
  -DoutputDirectory="$tmp" >&2)
(cd "$tmp" && unzip -q "apache-maven-$version-bin.zip")
[ -x "$tmp/apache-maven-$version/bin/mvn" ] || { echo "fallback.sh: the archive holds no bin/mvn" >&2; exit 1; }
mkdir -p -- "${home%/*}"
rm -rf -- "$home"
mv -- "$tmp/apache-maven-$version" "$home"
echo "fallback.sh: installed Maven $version for ./mvnw at $home" >&2
