#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, user postgres, trust auth) and Redis (127.0.0.1:6379)
# answer. Whatever is not answering is installed from Debian's packages (when missing) and started.
set -euo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
apt_ready=""
apt_install() {
  if [ -z "$apt_ready" ]; then apt-get update -qq >/dev/null; apt_ready=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
wait_for() { # port name
  for _ in $(seq 1 100); do answers "$1" && return 0; sleep 0.2; done
  echo "services: $2 did not start on port $1" >&2
  return 1
}

# the end-to-end tests make EC key pairs with the openssl command
command -v openssl >/dev/null || apt_install openssl

if ! answers 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/pacer.log
  wait_for 6379 Redis
  echo "services: started Redis on 127.0.0.1:6379"
fi

if ! answers 5432; then
  if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then apt_install postgresql postgresql-client; fi
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  if ! ls /etc/postgresql/"$version"/main >/dev/null 2>&1; then
    pg_createcluster "$version" main >/dev/null
  fi
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q "pacer: trust loopback" "$hba"; then
    # local development and CI only: trust connections from this machine
    { echo "# pacer: trust loopback"; echo "host all all 127.0.0.1/32 trust"; echo "host all all ::1/128 trust"; echo "local all all trust"; cat "$hba"; } >"$hba.new"
    mv "$hba.new" "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for 5432 PostgreSQL
  echo "services: started PostgreSQL $version on 127.0.0.1:5432"
fi
