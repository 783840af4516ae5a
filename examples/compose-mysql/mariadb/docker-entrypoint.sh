#!/bin/sh
# Entrypoint of berth-examples/mariadb: on the first start (empty datadir) it
# does what the official mysql/mariadb images do with MYSQL_ROOT_PASSWORD,
# MYSQL_ALLOW_EMPTY_PASSWORD, MYSQL_RANDOM_ROOT_PASSWORD, MYSQL_ROOT_HOST,
# MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD and /docker-entrypoint-initdb.d,
# then execs the server as PID 1. Any other command is exec'd unchanged.
# Each variable may instead name a file as VAR_FILE (compose secrets:
# MYSQL_PASSWORD_FILE=/run/secrets/db_password), as the official image allows.
# It never prints a password (except a generated root one, as they do).
set -eu

log() { echo "$(date -u '+%Y-%m-%d %H:%M:%S') 0 [Note] [Entrypoint]: $*"; }
die() { echo "$(date -u '+%Y-%m-%d %H:%M:%S') 0 [ERROR] [Entrypoint]: $*" >&2; exit 1; }
# A value as an SQL string literal: backslashes and quotes escaped.
sql_str() { printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")"; }
# A name as an SQL identifier: backticks doubled.
sql_ident() { printf '`%s`' "$(printf '%s' "$1" | sed -e 's/`/``/g')"; }

# VAR from VAR_FILE when that is set (never both).
file_env() {
	var=$1
	eval "val=\${$var:-}; file=\${${var}_FILE:-}"
	if [ -n "$val" ] && [ -n "$file" ]; then
		die "both $var and ${var}_FILE are set (but are exclusive)"
	fi
	if [ -n "$file" ]; then
		val=$(cat "$file") || die "cannot read ${var}_FILE $file"
		export "$var=$val"
	fi
}
for v in MYSQL_ROOT_PASSWORD MYSQL_DATABASE MYSQL_USER MYSQL_PASSWORD MYSQL_ROOT_HOST \
	MARIADB_ROOT_PASSWORD MARIADB_DATABASE MARIADB_USER MARIADB_PASSWORD; do
	file_env "$v"
done

# `docker run IMAGE --some-flag` passes flags to the server.
if [ "${1#-}" != "${1:-}" ]; then
	set -- mariadbd "$@"
fi
case "${1:-}" in
mariadbd | mysqld) ;;
*) exec "$@" ;;
esac

datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
mkdir -p /run/mysqld "$datadir"
if [ "$(id -u)" = 0 ]; then
	chown mysql:mysql /run/mysqld "$datadir"
fi

if [ ! -d "$datadir/mysql" ]; then
	root_pw=${MYSQL_ROOT_PASSWORD:-${MARIADB_ROOT_PASSWORD:-}}
	allow_empty=${MYSQL_ALLOW_EMPTY_PASSWORD:-${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-}}
	random_root=${MYSQL_RANDOM_ROOT_PASSWORD:-${MARIADB_RANDOM_ROOT_PASSWORD:-}}
	if [ -z "$root_pw" ] && [ -z "$allow_empty" ] && [ -z "$random_root" ]; then
		die "Database is uninitialized and password option is not specified
	You need to specify one of MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD and MYSQL_RANDOM_ROOT_PASSWORD"
	fi
	if [ -n "$random_root" ]; then
		root_pw=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)
		log "GENERATED ROOT PASSWORD: $root_pw"
	fi
	root_host=${MYSQL_ROOT_HOST:-%}
	database=${MYSQL_DATABASE:-${MARIADB_DATABASE:-}}
	user=${MYSQL_USER:-${MARIADB_USER:-}}
	password=${MYSQL_PASSWORD:-${MARIADB_PASSWORD:-}}

	log "Initializing database files"
	mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
		--auth-root-authentication-method=normal --skip-name-resolve >/dev/null
	log "Starting temporary server"
	"$@" --user=mysql --datadir="$datadir" --skip-networking --socket="$socket" &
	pid=$!
	i=0
	until mariadb-admin --socket="$socket" --user=root ping >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -lt 60 ] || die "Unable to start the temporary server"
		kill -0 "$pid" 2>/dev/null || die "The temporary server exited"
		sleep 1
	done

	{
		echo "SET @@SESSION.SQL_LOG_BIN=0;"
		echo "DELETE FROM mysql.user WHERE user='' OR (user='root' AND host NOT IN ('localhost'));"
		echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_str "$root_pw");"
		if [ "$root_host" != localhost ]; then
			echo "CREATE USER 'root'@$(sql_str "$root_host") IDENTIFIED BY $(sql_str "$root_pw");"
			echo "GRANT ALL ON *.* TO 'root'@$(sql_str "$root_host") WITH GRANT OPTION;"
		fi
		if [ -n "$database" ]; then
			log "Creating database $database" >&2
			echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$database");"
		fi
		if [ -n "$user" ] && [ -n "$password" ]; then
			log "Creating user $user" >&2
			echo "CREATE USER $(sql_str "$user")@'%' IDENTIFIED BY $(sql_str "$password");"
			if [ -n "$database" ]; then
				echo "GRANT ALL ON $(sql_ident "$database").* TO $(sql_str "$user")@'%';"
			fi
		fi
		echo "FLUSH PRIVILEGES;"
	} | mariadb --socket="$socket" --user=root --protocol=socket

	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh) log "running $f"; . "$f" ;;
		*.sql) log "running $f"; mariadb --socket="$socket" --user=root --password="$root_pw" ${database:+"$database"} <"$f" ;;
		*.sql.gz) log "running $f"; gunzip -c "$f" | mariadb --socket="$socket" --user=root --password="$root_pw" ${database:+"$database"} ;;
		*) log "ignoring $f" ;;
		esac
	done

	log "Stopping temporary server"
	kill "$pid"
	wait "$pid" || true
	log "Init process done. Ready for start up."
fi

exec "$@" --user=mysql --datadir="$datadir" --socket="$socket" --bind-address=0.0.0.0 --port=3306
