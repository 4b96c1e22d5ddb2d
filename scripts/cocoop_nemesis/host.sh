#!/usr/bin/env bash
# Nemesis on a base-to-new host (sourced by scripts/{cocoop,kgcoop,maple}_nemesis/env.sh after the host's settings
# and scripts/cocoop/protocols.sh).
#   nemesis_host ALPHA NT NP CW BETA: adds REGULARISER.NEMESIS.{A,NT,NP,CW,BETA} (and .TARGET when TARGET is set
#   to something else than text) to METHOD_OPTS and names the run folders as the Nemesis few-shot scripts do:
#   <TRAINER>/Beta-<BETA>/<CFG>/alpha<ALPHA>[_cw<CW>_pn<NP>]_nt<NT>[_target<TARGET>]/seed<S> (_cw/_pn only when
#   BETA != 1; N_CTX, CSC and the class position come from the host's config).
nemesis_run_name() {  # nemesis_run_name ALPHA NT NP CW BETA TARGET
  local name
  if [ "$5" = "1.0" ] || [ "$5" = "1" ]; then name="alpha$1_nt$2"; else name="alpha$1_cw$4_pn$3_nt$2"; fi
  if [ "$6" != "text" ]; then name="${name}_target$6"; fi
  echo "$name"
}
nemesis_host() {
  local alpha=$1 nt=$2 np=$3 cw=$4 beta=$5 target="${TARGET:-text}"
  METHOD_OPTS+=(REGULARISER.NEMESIS.A "$alpha" REGULARISER.NEMESIS.NT "$nt" REGULARISER.NEMESIS.NP "$np"
                REGULARISER.NEMESIS.CW "$cw" REGULARISER.NEMESIS.BETA "$beta")
  if [ "$target" != "text" ]; then METHOD_OPTS+=(REGULARISER.NEMESIS.TARGET "$target"); fi
  RUN_PREFIX="Beta-$beta"
  RUN_NAME=$(nemesis_run_name "$alpha" "$nt" "$np" "$cw" "$beta" "$target")
}
