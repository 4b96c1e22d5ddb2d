#!/usr/bin/env bash
# nemesis_name ALPHA NT NP CW BETA NCTX CSC CTP -> run-folder name (as the Nemesis scripts name it; _cw/_pn only when BETA != 1)
nemesis_name() {
  local alpha=$1 nt=$2 np=$3 cw=$4 beta=$5 nctx=$6 csc=$7 ctp=$8
  if [ "$beta" = "1.0" ] || [ "$beta" = "1" ]; then
    echo "alpha${alpha}_nctx${nctx}_csc${csc}_ctp${ctp}_nt${nt}"
  else
    echo "alpha${alpha}_cw${cw}_pn${np}_nctx${nctx}_csc${csc}_ctp${ctp}_nt${nt}"
  fi
}
