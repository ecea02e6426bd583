#!/usr/bin/env bash
# Builds the sample product mirror-agent's real packages (a .tar.gz archive and .deb packages for
# linux/amd64 and linux/arm64, an .rpm for linux/amd64) with tar, dpkg-deb and rpmbuild, and adds
# each release with `mirror release add`, the path a release job takes. Reproducible: every date
# is the release's, every owner root. scripts/make-sample.ts runs it last, after clearing
# .mirror/blobs/releases/.
#   bash scripts/make-packages.sh
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
product=mirror-agent
releases="$repo/releases"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for tool in dpkg-deb rpmbuild tar gzip; do
  command -v "$tool" >/dev/null || { echo "make-packages: needs $tool (apt-get install dpkg-dev rpm tar gzip)" >&2; exit 1; }
done

# version  published_at  debian/rpm version (a prerelease sorts before its release with ~)
RELEASES=(
  "1.0.0 2024-03-01T09:00:00Z 1.0.0"
  "1.1.0 2024-05-10T14:30:00Z 1.1.0"
  "1.2.0-rc.1 2024-06-20T08:15:00Z 1.2.0~rc.1"
)

# Release files and blobs of this product only; the other sample products stay as they are.
for file in "$releases/$product"/*.json; do
  [ "$(basename "$file")" = product.json ] && continue
  node -e 'for (const a of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).artifacts) console.log(a.blob)' "$file" |
    while read -r blob; do rm -f "$repo/.mirror/blobs/$blob"; done
  rm "$file"
done

program() { # version platform arch
  printf '#!/bin/sh\necho "mirror-agent %s (%s/%s)"\n' "$1" "$2" "$3"
}

for line in "${RELEASES[@]}"; do
  read -r version published pkgversion <<<"$line"
  epoch="$(date -d "$published" +%s)"
  out="$work/out/$version"
  mkdir -p "$out"

  for arch in amd64 arm64; do
    # Archive: the program alone, as GoReleaser would ship it.
    dir="$work/archive-$version-$arch"
    mkdir -p "$dir"
    program "$version" linux "$arch" >"$dir/mirror-agent"
    chmod 0755 "$dir/mirror-agent"
    tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -C "$dir" -cf - mirror-agent |
      gzip -9 -n >"$out/mirror_agent_${version}_linux_${arch}.tar.gz"

    # Debian package: the program in /usr/bin, xz-compressed members (dpkg-deb's default).
    root="$work/deb-$version-$arch"
    mkdir -p "$root/DEBIAN" "$root/usr/bin"
    program "$version" linux "$arch" >"$root/usr/bin/mirror-agent"
    chmod 0755 "$root/usr/bin/mirror-agent"
    cat >"$root/DEBIAN/control" <<CONTROL
Package: mirror-agent
Version: $pkgversion
Architecture: $arch
Maintainer: Example Releases <releases@example.com>
Installed-Size: 1
Section: utils
Priority: optional
Homepage: https://github.com/example/mirror-agent
Description: sample agent of the release mirror
 A tiny shell program that prints its version, packaged to show the
 mirror's apt and yum repositories.
 .
 It does nothing else.
CONTROL
    find "$root" -exec touch -h -d "@$epoch" {} +
    SOURCE_DATE_EPOCH="$epoch" dpkg-deb --root-owner-group -Zxz -b "$root" "$out/mirror_agent_${version}_linux_${arch}.deb" >/dev/null
  done

  # RPM package for x86_64.
  top="$work/rpm-$version"
  mkdir -p "$top/SPECS" "$top/SOURCES"
  program "$version" linux amd64 >"$top/SOURCES/mirror-agent"
  cat >"$top/SPECS/mirror-agent.spec" <<SPEC
Name:           mirror-agent
Version:        $pkgversion
Release:        1
Summary:        sample agent of the release mirror
License:        Apache-2.0
URL:            https://github.com/example/mirror-agent
Source0:        mirror-agent
BuildArch:      x86_64

%description
A tiny shell program that prints its version, packaged to show the
mirror's apt and yum repositories.

%install
mkdir -p %{buildroot}/usr/bin
install -m 0755 %{SOURCE0} %{buildroot}/usr/bin/mirror-agent

%files
/usr/bin/mirror-agent
SPEC
  SOURCE_DATE_EPOCH="$epoch" rpmbuild --quiet -bb \
    --define "_topdir $top" \
    --define "_buildhost reproducible" \
    --define "use_source_date_epoch_as_buildtime 1" \
    --define "clamp_mtime_to_source_date_epoch 1" \
    --define "debug_package %{nil}" \
    --define "__os_install_post %{nil}" \
    --define "_binary_payloadio w9.gzdio" \
    "$top/SPECS/mirror-agent.spec"
  cp "$top"/RPMS/x86_64/*.rpm "$out/mirror_agent_${version}_linux_amd64.rpm"

  node "$repo/scripts/mirror.js" release add --releases "$releases" --product "$product" --version "$version" \
    --published-at "$published" --notes-url "https://github.com/example/mirror-agent/releases/tag/v$version" \
    "$out"/*
done
