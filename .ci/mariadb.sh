#!/usr/bin/env bash
# Installs (Debian's mariadb-server), starts MariaDB on loopback and creates Beamline's ML Metadata
# database and user. Idempotent: safe to run again while the server is up.
#
# Settings (environment):
#   BEAMLINE_MYSQL_PORT           TCP port on 127.0.0.1 (default 3306)
#   BEAMLINE_MYSQL_DB             database to create (default beamline)
#   BEAMLINE_MYSQL_USER           user to create (default beamline); it may also create databases
#                                 named "<user>_*" (tests use fresh ones)
#   BEAMLINE_MYSQL_PASSWORD_FILE  where the user's password is kept (default
#                                 /var/lib/beamline-ci/mysql-password, mode 0600). Created with a
#                                 random password if missing; never printed.
# Prints the --metadata URI to use on its last line.
set -euo pipefail

PORT="${BEAMLINE_MYSQL_PORT:-3306}"
DB="${BEAMLINE_MYSQL_DB:-beamline}"
DBUSER="${BEAMLINE_MYSQL_USER:-beamline}"
PASSWORD_FILE="${BEAMLINE_MYSQL_PASSWORD_FILE:-/var/lib/beamline-ci/mysql-password}"
SOCKET=/run/mysqld/mysqld.sock
LOG=/var/log/mysql/beamline-mariadb.log

say() { echo "mariadb.sh: $*" >&2; }

if [[ ! "$DB" =~ ^[A-Za-z0-9_]+$ || ! "$DBUSER" =~ ^[A-Za-z0-9_]+$ ]]; then
  say "BEAMLINE_MYSQL_DB and BEAMLINE_MYSQL_USER must be letters, digits and underscores."
  exit 2
fi

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

if ! command -v mariadbd >/dev/null 2>&1; then
  say "installing mariadb-server from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
fi

ping_server() { as_root mariadb-admin --socket="$SOCKET" --connect-timeout=2 ping >/dev/null 2>&1; }

if ! ping_server; then
  say "starting MariaDB on 127.0.0.1:$PORT"
  as_root mkdir -p /run/mysqld /var/log/mysql
  as_root chown mysql:mysql /run/mysqld /var/log/mysql
  if [[ ! -d /var/lib/mysql/mysql ]]; then
    as_root mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  # setsid + nohup: the server outlives this script (CI ends it with the machine).
  as_root setsid nohup mariadbd --user=mysql --datadir=/var/lib/mysql --socket="$SOCKET" \
    --bind-address=127.0.0.1 --port="$PORT" --max-connections=500 \
    --log-error="$LOG" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 60); do
    ping_server && break
    sleep 0.5
  done
  if ! ping_server; then
    say "MariaDB did not start within 30 s; see $LOG"
    exit 1
  fi
fi

if [[ ! -s "$PASSWORD_FILE" ]]; then
  as_root mkdir -p "$(dirname "$PASSWORD_FILE")"
  (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"$PASSWORD_FILE")
fi
as_root chmod 600 "$PASSWORD_FILE"
PASSWORD="$(cat "$PASSWORD_FILE")"

# SQL goes through stdin (never argv, so the password does not show in `ps`).
as_root mariadb --socket="$SOCKET" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB\`;
CREATE USER IF NOT EXISTS '$DBUSER'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
CREATE USER IF NOT EXISTS '$DBUSER'@'localhost' IDENTIFIED BY '$PASSWORD';
ALTER USER '$DBUSER'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
ALTER USER '$DBUSER'@'localhost' IDENTIFIED BY '$PASSWORD';
GRANT ALL PRIVILEGES ON \`$DB\`.* TO '$DBUSER'@'127.0.0.1', '$DBUSER'@'localhost';
GRANT ALL PRIVILEGES ON \`${DBUSER}\\_%\`.* TO '$DBUSER'@'127.0.0.1', '$DBUSER'@'localhost';
FLUSH PRIVILEGES;
SQL

say "ready; password in $PASSWORD_FILE (export BEAMLINE_MYSQL_PASSWORD_FILE=$PASSWORD_FILE)"
echo "mysql://$DBUSER@127.0.0.1:$PORT/$DB"
