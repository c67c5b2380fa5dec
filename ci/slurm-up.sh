#!/usr/bin/env bash
# Bring up a throw-away single-node SLURM 22.05 cluster (Debian 12) without systemd.
# Everything except munge lives under $SLURM_CI_ROOT; clients need: export SLURM_CONF=$SLURM_CI_ROOT/etc/slurm.conf
# Usage (as root): SLURM_CI_ROOT=/tmp/slurm-ci ACCOUNTING=slurmdbd|none ci/slurm-up.sh
# Prereq (once): apt-get install -y --no-install-recommends slurm-wlm munge
#                (+ mariadb-server slurmdbd for ACCOUNTING=slurmdbd)
set -euo pipefail
ROOT=${SLURM_CI_ROOT:-/tmp/slurm-ci}
ACCOUNTING=${ACCOUNTING:-none}
NCPU=${NCPU:-$(nproc)}
# RealMemory must be <= what slurmd -C reports, otherwise the node goes DRAIN ("Low RealMemory")
MEM_MB=${MEM_MB:-$(( $(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p') * 9 / 10 ))}
mkdir -p "$ROOT"/{etc,state,spool,log,run,jobs}
export SLURM_CONF=$ROOT/etc/slurm.conf
ts() { date +%s.%N; }
T0=$(ts)

# ---- munge (auth) ----
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null || \
       dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  install -d -o munge -g munge -m 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged      # daemonizes, pid in /run/munge/munged.pid
  for i in $(seq 50); do munge -n | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  echo "$ROOT: started munged" >> "$ROOT/log/up.log"; touch "$ROOT/run/munged.started-by-us"
fi

# ---- optional accounting: private MariaDB on 127.0.0.1:3307 + slurmdbd on 6819 ----
ACCT_LINES="AccountingStorageType=accounting_storage/none"
if [ "$ACCOUNTING" = slurmdbd ]; then
  DB=$ROOT/mysql
  if [ ! -d "$DB/data/mysql" ]; then
    mkdir -p "$DB"; chown mysql:mysql "$DB"
    mariadb-install-db --user=mysql --datadir="$DB/data" --auth-root-authentication-method=socket \
      --skip-test-db > "$ROOT/log/mariadb-install.log" 2>&1
  fi
  setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DB/data" --socket="$DB/mysqld.sock" \
    --pid-file="$DB/mysqld.pid" --port=3307 --bind-address=127.0.0.1 \
    --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 --log-error="$ROOT/log/mariadb.err" \
    </dev/null >/dev/null 2>&1 &
  for i in $(seq 100); do mariadb-admin --socket="$DB/mysqld.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
  mariadb --socket="$DB/mysqld.sock" -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmdbpass';
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmdbpass';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
  cat > "$ROOT/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
DebugLevel=info
LogFile=$ROOT/log/slurmdbd.log
PidFile=$ROOT/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3307
StorageUser=slurm
StoragePass=slurmdbpass
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$ROOT/etc/slurmdbd.conf"   # slurmdbd refuses a world-readable conf with a password
  slurmdbd                              # reads $(dirname $SLURM_CONF)/slurmdbd.conf, daemonizes
  for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/6819) 2>/dev/null && break; sleep 0.1; done
  ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819"
fi

# ---- slurm.conf ----
cat > "$SLURM_CONF" <<EOF
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
# A requeued job waits cred_expire seconds (default 120) before it starts again.
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
ReturnToService=2
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldPidFile=$ROOT/run/slurmctld.pid
SlurmdPidFile=$ROOT/run/slurmd.pid
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobCompType=jobcomp/filetxt
JobCompLoc=$ROOT/log/jobcomp.txt
$ACCT_LINES
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$NCPU RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=1000
EOF

slurmctld            # daemonizes; -D would keep it in the foreground
slurmd -N localhost  # -N: node name independent of `hostname`
for i in $(seq 100); do
  st=$(sinfo -h -n localhost -o %t 2>/dev/null || true)
  [ "$st" = idle ] && break; sleep 0.2
done
echo "node state: $(sinfo -h -o '%P %t %N')  (up in $(echo "$(ts) - $T0" | bc) s)"
echo "export SLURM_CONF=$SLURM_CONF"
