#!/usr/bin/env bash
# Runs the test suite once per CPU kernel path and prints one summary line per setting, so a change can be checked
# against the arithmetic of other machines before CI runs on one of them. The settings switch the SIMD code path of
# each numeric library in this process tree: OpenBLAS (numpy's BLAS) by core type, ATen's vector kernels, MKL and
# oneDNN (torch's BLAS and convolutions), numpy's own ufunc dispatch; and the thread count of the reductions.
# "amd-like" is all of them at once at the AVX2 level of a 2-core AMD EPYC without AVX-512; "minimal" is the
# oldest paths at once (Sandy Bridge BLAS, scalar ATen kernels, one thread).
#   bash scripts/portability_sweep.sh            every setting (about 3.5 min each on 2 cores)
#   bash scripts/portability_sweep.sh omp1 amd-like   the named ones; extra pytest args after --
set -uo pipefail
cd "$(dirname "$0")/.."
declare -A SETTINGS=(
  [default]=""
  [openblas-haswell]="OPENBLAS_CORETYPE=Haswell"
  [openblas-sandybridge]="OPENBLAS_CORETYPE=Sandybridge"
  [omp1]="OMP_NUM_THREADS=1"
  [omp2]="OMP_NUM_THREADS=2"
  [aten-default]="ATEN_CPU_CAPABILITY=default"
  [aten-avx2]="ATEN_CPU_CAPABILITY=avx2"
  [amd-like]="OPENBLAS_CORETYPE=Zen ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
 NPY_DISABLE_CPU_FEATURES=X86_V4,AVX512_ICL,AVX512_SPR OMP_NUM_THREADS=2"
  [minimal]="OPENBLAS_CORETYPE=Sandybridge ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1"
)
ORDER=(default openblas-haswell openblas-sandybridge omp1 omp2 aten-default aten-avx2 amd-like minimal)
names=(); extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  [ -n "${SETTINGS[$1]+x}" ] || { echo "portability_sweep: unknown setting '$1' (known: ${ORDER[*]})" >&2; exit 2; }
  names+=("$1"); shift
done
[ ${#names[@]} -gt 0 ] || names=("${ORDER[@]}")
mkdir -p out/portability
status=0
for name in "${names[@]}"; do
  log="out/portability/$name.log"
  start=$(date +%s)
  env ${SETTINGS[$name]} bash scripts/run_tests.sh -p no:cacheprovider "${extra[@]}" >"$log" 2>&1
  rc=$?
  summary=$(grep -E "^(=+ )?[0-9]+ (passed|failed)|no tests were collected" "$log" | tail -1 | tr -d '=')
  printf '%-22s rc=%d %4ds %s   [%s]\n' "$name" "$rc" $(( $(date +%s) - start )) "$summary" "${SETTINGS[$name]//$'\n'/ }"
  [ "$rc" -eq 0 ] || status=1
done
exit $status
