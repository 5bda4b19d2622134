#!/usr/bin/env bash
# Data-parallel training on several machines with Open MPI's mpirun and a hostfile.
#   scripts/multi-node/mpirun.sh HOSTFILE NUM_PROCESSES [llmc train flags...]
# Needs on every machine: the same llmc4j checkout at the same path (built once: ./mvnw -DskipTests package),
# JDK 25 at the same JAVA_HOME, Open MPI 4 or 5 (apt-get install openmpi-bin), the data shards at the paths given
# with -i/-j (a shared file system, or copies), and password-less ssh from this machine to the others.
# Rank 0 (the first slot of the first host) writes the log, the samples and model_*.bin into -o; every rank writes
# its own state_*_<rank>.bin there, so -o should be on a shared file system for resuming with -y 1.
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 HOSTFILE NUM_PROCESSES [llmc train flags...]" >&2; exit 2; fi
hostfile="$1"; np="$2"; shift 2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
: "${JAVA_HOME:=/usr/lib/jvm/temurin-25-jdk-amd64}"
: "${OMP_NUM_THREADS:=$(nproc)}"   # the Java worker threads per process; one process per machine gets all cores
export JAVA_HOME OMP_NUM_THREADS
(cd "$root" && ./llmc --version >/dev/null)   # build here once, before the ranks start
# --bind-to none: our process runs its own thread pool over all cores; -x passes the environment to remote ranks.
# Add --allow-run-as-root inside containers that run as root, and "--mca btl_tcp_if_include eth0" to pick the network.
exec mpirun --hostfile "$hostfile" -np "$np" --map-by node --bind-to none \
  -x JAVA_HOME -x OMP_NUM_THREADS -x LLMC_JAVA_OPTS \
  "$root/llmc" train "$@"
