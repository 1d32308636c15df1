#!/usr/bin/env bash
# Installs the backup CronJob. Runs on master0 in application/apps/backup/.
set -euo pipefail
schedule="0 3 * * *"
while [ $# -gt 0 ]; do
  case "$1" in
    --schedule) schedule="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
sed -e "s|@SCHEDULE@|${schedule}|" -e "s|@BUCKET@|${BACKUP_BUCKET:?}|" \
    -e "s|@RETENTION@|${RETENTION_DAYS:-7}|" cronjob.yaml.in | kubectl apply -f -
