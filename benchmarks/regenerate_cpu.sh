#!/usr/bin/env bash
# Regenerates every CPU result in benchmarks/results/ with the command that produced it, in the
# record format (benchmarks/record.py). Run from the repository root, on an otherwise idle
# machine (the figures are timings); about 15 minutes on 2 cores. label_issues needs cleanlab
# (`pip install -e ".[cleanlab]"`); the pipelines on files need the dali and ffcv extras.
# GPU results: `python -m benchmarks.gpu` on the GPU machine.
set -euo pipefail
R=benchmarks/results
python -m benchmarks.demo --repeat 3 --json $R/demo_cpu.json
python -m benchmarks.demo --repeat 1 --json $R/demo_reference_cpu.json pipeline.name=reference
python -m benchmarks.step --model sevencnn --classes 100 --batch 128 --device cpu --steps 30 --json $R/step_cpu.json
python -m benchmarks.pipelines --pipelines reference,tensor --device cpu --batches 160 --json $R/pipelines_cpu.json
python -m benchmarks.pipelines --synthetic-files 240 --pipelines reference,dali,ffcv --device cpu --batch-size 16 \
  --batches 12 --warmup-batches 2 --json $R/pipelines_files_cpu.json
python -m benchmarks.gpu_proxy --json $R/gpu_proxy_cpu.json
# epoch_time.jsonl is appended to: start it afresh, one process, then the torchrun scaling pair.
rm -f $R/epoch_time.jsonl
python -m benchmarks.epoch_time --config configs/cifar100n/sym20.yaml --warmup-epochs 1 --robust-epochs 1 \
  model.name=tinycnn data.train_limit=10000 data.test_limit=2000 pipeline.name=reference pipeline.workers=2 run.device=cpu
SCALING=(--config configs/cifar100n/sym20.yaml --warmup-epochs 1 --robust-epochs 2 model.name=tinycnn
         data.train_limit=4000 data.test_limit=1000 run.device=cpu run.threads=1)
python -m benchmarks.epoch_time "${SCALING[@]}"
torchrun --nproc_per_node 2 -m benchmarks.epoch_time "${SCALING[@]}"
python -m benchmarks.compare --change run.amp=bf16 --seeds 0,1,2 --json $R/compare_amp_bf16_demo_cpu.json
python -m benchmarks.compare --change optim.ntm_lr_plan=shared --seeds 0,1,2 --json $R/compare_ntm_lr_plan_demo_cpu.json
python -m benchmarks.compare --change method.fuse_views=true --seeds 0,1,2 --json $R/fuse_views_digits_cpu.json
python -m benchmarks.pack_spread --seeds 0,1,2,3 --epochs 12 --json $R/pack_spread_demo_cpu.json
python -m benchmarks.label_issues --folds 4 --json $R/label_issues_digits_cpu.json
