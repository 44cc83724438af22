#!/usr/bin/env bash
# One catalogue task per element of a cluster job array (SLURM shown; other schedulers have an
# equivalent index variable). Every element writes its own task folder into one results folder
# on a shared file system; files are written atomically, so elements never corrupt each other.
# When the array has finished, rebuild the overviews once:
#     python main.py --report --results "$RESULTS"
#
#   sbatch --array=0-$(( $(python main.py --ids | wc -l) - 1 )) scripts/slurm_array.sh
#
#SBATCH --job-name=dl-course
#SBATCH --cpus-per-task=4
#SBATCH --gres=gpu:1
#SBATCH --time=02:00:00
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${MODE:-full}"
RESULTS="${RESULTS:-results}"
INDEX="${SLURM_ARRAY_TASK_ID:?set by the scheduler: which task of the catalogue this element runs}"
TASK_ID="$(python main.py --ids | sed -n "$((INDEX + 1))p")"
[ -n "$TASK_ID" ] || { echo "no task at index $INDEX" >&2; exit 2; }
exec python main.py "$TASK_ID" --mode "$MODE" --seed "${SEED:-42}" --results "$RESULTS"
