#!/bin/bash
# Every `repro compare` docs/edge-cpu/README.md quotes, on the edge study's results folder.
#   bash docs/edge-cpu/compare.sh RESULTS > compare.txt
set -u
RESULTS=${1:?usage: compare.sh RESULTS}
C() { echo "\$ repro compare $*"; repro compare "$@" --results "$RESULTS" 2>&1; echo; }
# --where for every design key of the factor study's baseline (lr given), except the ones compared
base() {
  local lr=$1 out="" kv; shift
  for kv in stack=cpu clip=none clip_threshold=5 tf32=false align_corners=true perturb_init=false \
            cpu_isa=native perceptual_net=vgg16 lr=$lr; do
    case " $* " in *" ${kv%%=*} "*) ;; *) out="$out --where $kv";; esac
  done
  echo $out
}
# the positive control: remedies where 4 of 5 runs fail (lr 3e-3)
C lr=0.003 lr=0.001 --where clip=none
C lr=0.003 lr=0.0015 --where clip=none
C lr=0.0025 lr=0.001 --where clip=none
C clip=none clip=norm --where lr=0.003 --where clip_threshold=5
C clip_threshold=5 clip_threshold=1 --where lr=0.003 --where clip=norm
# factors at the edge (lr 2e-3), each with the chaos floor beside it
C clip=none clip=norm $(base 0.002 clip)
C clip_threshold=5 clip_threshold=1 $(base 0.002 clip clip_threshold) --where clip=norm
C tf32=false tf32=true $(base 0.002 tf32)
C align_corners=true align_corners=false $(base 0.002 align_corners)
C cpu_isa=native cpu_isa=avx2 $(base 0.002 cpu_isa)
C stack=cpu stack=cpu-torch1.8 $(base 0.002 stack)
C perceptual_net=vgg16 perceptual_net=standin $(base 0.002 perceptual_net)
C perceptual_net=vgg16 perceptual_net=standin $(base 0.0002 perceptual_net)
# the chaos floor itself, at the edge and at the preset's lr
C perturb_init=false perturb_init=true $(base 0.002 perturb_init)
C perturb_init=false perturb_init=true $(base 0.0002 perturb_init)
