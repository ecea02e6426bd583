#!/bin/sh
# Installs Agent as Code (agent_as_code) from http://127.0.0.1:8080.
#
#   curl -fsSL http://127.0.0.1:8080/binary/releases/agent-as-code/install.sh | sh
#   curl -fsSL http://127.0.0.1:8080/binary/releases/agent-as-code/install.sh | sh -s -- --version VERSION --prefix "$HOME/.local"
#
# Downloads the archive for this machine, checks its SHA-256 against the release's SHA256SUMS and,
# when gpgv is installed, that file's OpenPGP signature, then moves the binary into PREFIX/bin.
# Rendered by the release mirror from its manifests: every release changes it.

set -u

PRODUCT='agent-as-code'
FILE_PREFIX='agent_as_code'
BINARY='agent_as_code'
RELEASES_PATH='binary/releases/agent-as-code'
KEYRING_PATH='.well-known/pgp-keys.gpg'
DEFAULT_BASE_URL='http://127.0.0.1:8080'

# The newest release of each channel when this script was rendered.
channel_version() {
  case $1 in
    stable) echo '1.12.2' ;;
    latest) echo '1.13.0-beta.1' ;;
    *) return 1 ;;
  esac
}

# Each channel's archive per <os>_<arch>, as <major>/<minor>/<file name>.
channel_archive() {
  case $1/$2 in
    stable/darwin_amd64) echo '1/12/agent_as_code_1.12.2_darwin_amd64.zip' ;;
    stable/darwin_arm64) echo '1/12/agent_as_code_1.12.2_darwin_arm64.zip' ;;
    stable/linux_amd64) echo '1/12/agent_as_code_1.12.2_linux_amd64.zip' ;;
    stable/linux_arm64) echo '1/12/agent_as_code_1.12.2_linux_arm64.zip' ;;
    latest/darwin_arm64) echo '1/13/agent_as_code_1.13.0-beta.1_darwin_arm64.zip' ;;
    latest/linux_amd64) echo '1/13/agent_as_code_1.13.0-beta.1_linux_amd64.zip' ;;
    latest/linux_arm64) echo '1/13/agent_as_code_1.13.0-beta.1_linux_arm64.zip' ;;
    *) return 1 ;;
  esac
}

usage() {
  cat <<EOF
Usage: install.sh [options]

Installs $PRODUCT: puts $BINARY into PREFIX/bin.

Options:
  --version VERSION  install this version (default: the newest of the channel)
  --channel CHANNEL  stable (the default) or latest, which includes pre-releases
  --prefix DIR       install into DIR/bin (default: /usr/local as root, else \$HOME/.local)
  --base-url URL     the mirror to download from (default: $DEFAULT_BASE_URL)
  --keyring FILE     check the SHA256SUMS signature against this binary OpenPGP keyring and
                     require one; without it the mirror's own /$KEYRING_PATH is used
                     (the signature is checked only when gpgv is installed)
  -h, --help         show this help
EOF
}

say() {
  printf '%s\n' "$*"
}

# Every failure is one line on stderr; the EXIT trap removes whatever was downloaded.
die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

set_option() {
  case $2 in
    '' | -*) die "$1 needs a value, got '$2'" ;;
  esac
  case $1 in
    --version) version=$2 ;;
    --channel) channel=$2 ;;
    --prefix) prefix=$2 ;;
    --base-url) base_url=$2 ;;
    --keyring) keyring=$2 ;;
  esac
}

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --version | --channel | --prefix | --base-url | --keyring)
        [ $# -ge 2 ] || die "$1 needs a value"
        set_option "$1" "$2"
        shift 2
        ;;
      --version=* | --channel=* | --prefix=* | --base-url=* | --keyring=*)
        set_option "${1%%=*}" "${1#*=}"
        shift
        ;;
      -h | --help)
        usage
        exit 0
        ;;
      *) die "unknown option '$1' (see --help)" ;;
    esac
  done
}

# The same vocabulary as the release manifests: linux or darwin, amd64, arm64 or 386.
detect_platform() {
  os_name=$(uname -s 2>/dev/null) || die "cannot run uname to find the operating system"
  case $os_name in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    MINGW* | MSYS* | CYGWIN* | Windows_NT) die "unsupported operating system: $os_name; on Windows download the .zip from $base_url/$RELEASES_PATH/" ;;
    *) die "unsupported operating system: $os_name (this installer supports Linux and macOS)" ;;
  esac
  machine=$(uname -m 2>/dev/null) || die "cannot run uname to find the architecture"
  case $machine in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64 | armv8*) arch=arm64 ;;
    i386 | i486 | i586 | i686 | x86) arch=386 ;;
    *) die "unsupported architecture: $machine (supported: amd64, arm64, 386)" ;;
  esac
  # Under Rosetta 2 an Apple silicon Mac reports x86_64; install the native build.
  if [ "$os" = darwin ] && [ "$arch" = amd64 ] && [ "$(sysctl -n hw.optional.arm64 2>/dev/null)" = 1 ]; then
    arch=arm64
  fi
}

find_tools() {
  if command -v curl >/dev/null 2>&1; then
    fetcher=curl
  elif command -v wget >/dev/null 2>&1; then
    fetcher=wget
  else
    die "neither curl nor wget is installed; install one of them and run again"
  fi
  if command -v sha256sum >/dev/null 2>&1; then
    hasher=sha256sum
  elif command -v shasum >/dev/null 2>&1; then
    hasher=shasum
  elif command -v openssl >/dev/null 2>&1; then
    hasher=openssl
  else
    die "no sha256sum, shasum or openssl to check the download with"
  fi
}

# download URL FILE: 0 when saved, 2 when the server has no such file, else 1 with $fetch_error.
download() {
  fetch_error=
  if [ "$fetcher" = curl ]; then
    if ! status=$(curl -sSL -o "$2" -w '%{http_code}' "$1" 2>"$work/fetch.log" </dev/null); then
      fetch_error=$(tail -n 1 "$work/fetch.log")
      return 1
    fi
  else
    if wget -nv -S -O "$2" "$1" 2>"$work/fetch.log" </dev/null; then
      return 0
    fi
    status=$(awk '$1 ~ /^HTTP\// { code = $2 } END { print code }' "$work/fetch.log")
    [ -n "$status" ] || status=$(tail -n 1 "$work/fetch.log")
  fi
  case $status in
    2??) return 0 ;;
    404 | 410) return 2 ;;
    [0-9][0-9][0-9]) fetch_error="HTTP $status" ;;
    *) fetch_error=$status ;;
  esac
  return 1
}

# fetch URL FILE WHAT: download or die, WHAT naming the file for a 404.
fetch() {
  download "$1" "$2"
  case $? in
    0) ;;
    2) die "$3 not found at $1" ;;
    *) die "could not download $1: $fetch_error" ;;
  esac
}

sha256_of() {
  case $hasher in
    sha256sum) sha256sum "$1" ;;
    shasum) shasum -a 256 "$1" ;;
    openssl) openssl dgst -sha256 -r "$1" ;;
  esac | awk '{ print tolower($1) }'
}

# Sets version, dir (<major>/<minor>) and file (empty for a pinned version: found in SHA256SUMS).
resolve_release() {
  if [ -n "$version" ]; then
    [ -z "$channel" ] || die "give --version or --channel, not both"
    version=${version#v}
    case $version in
      *[!0-9A-Za-z.+-]* | .* | *..*) die "invalid version '$version'" ;;
    esac
    fetch "$base_url/$RELEASES_PATH/versions" "$work/versions.json" "the list of versions"
    grep -F "\"$version\"" "$work/versions.json" >/dev/null 2>&1 ||
      die "unknown version $version of $PRODUCT (see $base_url/$RELEASES_PATH/)"
    major=${version%%.*}
    rest=${version#*.}
    dir=$major/${rest%%.*}
    file=
    say "installing $PRODUCT $version for $os/$arch"
  else
    channel=${channel:-stable}
    case $channel in
      stable | latest) ;;
      *) die "unknown channel '$channel' (stable or latest)" ;;
    esac
    version=$(channel_version "$channel") || die "the $channel channel of $PRODUCT has no release"
    archive=$(channel_archive "$channel" "${os}_$arch") ||
      die "$PRODUCT $version (the $channel channel) has no build for $os/$arch"
    dir=${archive%/*}
    file=${archive##*/}
    say "installing $PRODUCT $version (the $channel channel) for $os/$arch"
  fi
}

# The archive for this platform among the files SHA256SUMS lists, in order of preference.
archive_in_sums() {
  for extension in tar.gz tgz zip; do
    name=${FILE_PREFIX}_${version}_${os}_$arch.$extension
    if awk -v name="$name" '$2 == name { found = 1 } END { exit !found }' "$sums"; then
      echo "$name"
      return 0
    fi
  done
  return 1
}

verify_signature() {
  if ! command -v gpgv >/dev/null 2>&1; then
    [ -z "$keyring" ] || die "--keyring needs gpgv, which is not installed"
    say "signature not checked: gpgv is not installed (the checksum still is)"
    return 0
  fi
  download "$release_url/$sums_name.sig" "$sums.sig"
  case $? in
    0) ;;
    2)
      [ -z "$keyring" ] || die "no signature at $release_url/$sums_name.sig, and --keyring requires one"
      say "signature not checked: the mirror publishes no signature for $sums_name"
      return 0
      ;;
    *) die "could not download $release_url/$sums_name.sig: $fetch_error" ;;
  esac
  if [ -n "$keyring" ]; then
    [ -r "$keyring" ] || die "cannot read the keyring $keyring"
    case $keyring in
      /*) trusted=$keyring ;;
      *) trusted=$PWD/$keyring ;;
    esac
    trusted_name="the keyring $keyring"
  else
    trusted=$work/pgp-keys.gpg
    fetch "$base_url/$KEYRING_PATH" "$trusted" "the mirror signs its releases, but its keyring was"
    trusted_name="the mirror's own keys ($base_url/$KEYRING_PATH; pass --keyring FILE to pin keys you trust)"
  fi
  mkdir -m 700 "$work/gnupg" || die "cannot create $work/gnupg"
  if gpgv --homedir "$work/gnupg" --keyring "$trusted" "$sums.sig" "$sums" >"$work/gpgv.log" 2>&1 </dev/null; then
    say "signature verified: $sums_name, $(grep 'Good signature' "$work/gpgv.log" | head -n 1 | sed 's/^gpgv: //'), checked against $trusted_name"
  else
    die "signature check of $sums_name failed against $trusted_name: $(tail -n 1 "$work/gpgv.log" | sed 's/^gpgv: //')"
  fi
}

# Unpacks the archive and sets found to the binary inside it.
extract() {
  mkdir "$work/unpacked" || die "cannot create $work/unpacked"
  case $file in
    *.zip)
      command -v unzip >/dev/null 2>&1 || die "unzip is needed to unpack $file; install it and run again"
      unzip -q -o "$work/$file" -d "$work/unpacked" >"$work/extract.log" 2>&1 </dev/null ||
        die "could not unpack $file: $(tail -n 1 "$work/extract.log")"
      ;;
    *.tar.gz | *.tgz)
      command -v tar >/dev/null 2>&1 || die "tar is needed to unpack $file; install it and run again"
      tar -xzf "$work/$file" -C "$work/unpacked" >"$work/extract.log" 2>&1 </dev/null ||
        die "could not unpack $file: $(tail -n 1 "$work/extract.log")"
      ;;
    *) die "cannot unpack $file: not a .zip or .tar.gz archive" ;;
  esac
  if [ -f "$work/unpacked/$BINARY" ]; then
    found=$work/unpacked/$BINARY
  else
    found=$(find "$work/unpacked" -type f -name "$BINARY" | head -n 1)
  fi
  [ -n "$found" ] || die "$file does not contain $BINARY"
}

# Copies next to the target, then renames: the old binary stays whole until the new one replaces it.
install_binary() {
  bin=$prefix/bin
  if [ ! -d "$bin" ]; then
    mkdir -p "$bin" 2>/dev/null || die "cannot create $bin; choose another --prefix or run as a user who may write there"
    created_bin=$bin
  fi
  staged=$bin/.$BINARY.install.$$
  if ! { cp "$found" "$staged" && chmod 755 "$staged"; } 2>/dev/null; then
    die "cannot write to $bin; choose another --prefix or run as a user who may write there"
  fi
  mv -f "$staged" "$bin/$BINARY" 2>/dev/null || die "cannot move $BINARY into $bin"
  staged=
  created_bin=
  say "installed $bin/$BINARY ($PRODUCT $version, $os/$arch)"
  case ":${PATH:-}:" in
    *":$bin:"*) ;;
    *) say "note: $bin is not on your PATH" ;;
  esac
}

cleanup() {
  [ -z "$staged" ] || rm -f "$staged"
  [ -z "$created_bin" ] || rmdir "$created_bin" 2>/dev/null
  [ -z "$work" ] || rm -rf "$work"
}

main() {
  version='' channel='' prefix='' keyring='' base_url=$DEFAULT_BASE_URL
  work='' staged='' created_bin=''
  parse_args "$@"
  base_url=${base_url%/}
  detect_platform
  find_tools
  if [ -z "$prefix" ]; then
    if [ "$(id -u 2>/dev/null)" = 0 ]; then
      prefix=/usr/local
    elif [ -n "${HOME:-}" ]; then
      prefix=$HOME/.local
    else
      die "HOME is not set; give --prefix DIR"
    fi
  fi
  case $prefix in
    /*) ;;
    *) prefix=$PWD/$prefix ;;
  esac

  trap cleanup EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  work=$(mktemp -d 2>/dev/null || mktemp -d -t install) || die "cannot create a temporary directory"

  resolve_release
  release_url=$base_url/$RELEASES_PATH/$dir
  sums_name=${FILE_PREFIX}_${version}_SHA256SUMS
  sums=$work/$sums_name
  fetch "$release_url/$sums_name" "$sums" "$sums_name"
  verify_signature
  if [ -z "$file" ]; then
    file=$(archive_in_sums) || die "$PRODUCT $version has no build for $os/$arch"
  fi
  expected=$(awk -v name="$file" '$2 == name { print tolower($1); exit }' "$sums")
  [ -n "$expected" ] || die "$sums_name does not list $file"

  say "downloading $release_url/$file"
  fetch "$release_url/$file" "$work/$file" "$file"
  actual=$(sha256_of "$work/$file")
  [ "$actual" = "$expected" ] || die "checksum mismatch for $file: $sums_name says sha256 $expected, the download has $actual; nothing was installed"
  say "checksum verified: sha256 $actual"

  extract
  install_binary
}

# Called last, so a truncated download of this script runs nothing.
main "$@"
