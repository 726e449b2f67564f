#!/bin/bash
# usage: ab.sh ROUNDS out.csv BIN... ; scenarios 1thread hold8 512pools; pools recycle (and lockfree from first bin)
R=$1; OUT=$2; shift 2
echo "round,bin,scenario,ns" > $OUT
for r in $(seq $R); do
 for sc in ${SCEN:-1thread hold8 512pools}; do
  case $sc in hold8) it=500000;; 512pools) it=7812;; *) it=4000000;; esac
  for b in "$@"; do
   pool=recycle; name=$b
   if [ $b = lf ]; then pool=lockfree-object-pool; b=main; fi
   ns=$(./pool-$b count $sc $pool $it | sed -n 's/^ns per object: //p')
   echo "$r,$name,$sc,$ns" >> $OUT
  done
 done
done
python3 - $OUT <<'P'
import csv,sys,statistics as st
rows=list(csv.DictReader(open(sys.argv[1])))
d={}
for r in rows: d.setdefault((r['scenario'],r['bin']),{})[r['round']]=float(r['ns'])
scs=[];bins=[]
for r in rows:
  if r['scenario'] not in scs: scs.append(r['scenario'])
  if r['bin'] not in bins: bins.append(r['bin'])
for sc in scs:
  print(sc, ' '.join(f"{b}={st.median(d[(sc,b)].values()):.2f}({min(d[(sc,b)].values()):.1f}-{max(d[(sc,b)].values()):.1f})" for b in bins))
  base=bins[0]
  for b in bins[1:]:
    rat=[d[(sc,b)][k]/d[(sc,base)][k] for k in d[(sc,base)]]
    print(f"   {b}/{base} paired median {st.median(rat):.3f}, {b} faster in {sum(x<1 for x in rat)}/{len(rat)}")
P
