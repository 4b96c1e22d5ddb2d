#!/usr/bin/env bash
# IVLP + Nemesis base-to-new, evaluation on the new classes of the matching train_base run:
#   scripts/ivlp_nemesis/base2new_test.sh DATASET ALPHA NT NP CW BETA [SEED]   (load epoch: LOAD_EPOCH or the config's MAX_EPOCH)
# Output: $OUTPUT_ROOT/base2new/test_new/<DATASET>/<shots>/IVLPNemesis/Beta-<BETA>/<CFG>/<name>/seed<S>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
usage_check 6 7 "$0 DATASET ALPHA NT NP CW BETA [SEED]" "$@"
nemesis_host "$2" "$3" "$4" "$5" "$6"
b2n_test "$1" "${7:-}"
